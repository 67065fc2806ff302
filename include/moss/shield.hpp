/// @file
/// shield.hpp: work that an outer cancellation does not reach (asyncio.shield).
///
///   // The caller may be killed or timed out; the commit runs to its end.
///   auto id = moss::shield([&] { return db.commit(tx); });
///
/// shield(f) runs f() in a task of its own and waits for its result. An
/// interruption of the caller (a kill, a moss::timeout or with_timeout, a
/// gather or task_group cancelling it) is raised in the caller only: the
/// shielded task is not a child of anything that cancels and runs on to
/// completion, and its result is then dropped (a failure goes to the error
/// handler). moss::run's end and killall(all_tasks()) still kill it.
#pragma once

#include <moss/task.hpp>

#include <type_traits>
#include <utility>

namespace moss {

/// shield(f) runs f in a task of its own and waits for it; see the top of this file.
template <class F>
  requires std::is_invocable_v<std::decay_t<F>>
auto shield(F&& f) -> detail::spawn_result_t<F> {
  detail::check_may_block("moss::shield");
  auto t = spawn(std::forward<F>(f));
  t.join();  // an interruption leaves here; t goes on
  if constexpr (std::is_void_v<detail::spawn_result_t<F>>) {
    t.get();
  } else {
    return std::move(t.get());
  }
}

}  // namespace moss

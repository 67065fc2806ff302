/// @file
/// threadsafe.hpp: starting a task on another thread's hub and getting its
/// result back (asyncio's run_coroutine_threadsafe).
///
///   moss::hub& loop = ...;   // moss::hub::current(), taken on that thread
///   auto r = moss::spawn_threadsafe(loop, [] { moss::sleep(10ms); return 42; });
///   int v = r.get();         // a greenlet waits cooperatively, a plain thread blocks
///
/// For fire-and-forget work, hub::call_threadsafe(f) is the lighter call.
#pragma once

#include <moss/async_result.hpp>
#include <moss/error.hpp>
#include <moss/detail/stored_call.hpp>
#include <moss/hub.hpp>

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

namespace moss {

namespace detail {

/// posted_spawn: spawn_threadsafe's node. call() runs in a task on the target
/// hub and settles the result; a node destroyed without having run (its hub
/// stopped first, or the task was killed before it started) settles the
/// result with an error, so nobody waits for it forever.
template <class R, class F, class... Args>
class posted_spawn final : public posted_call {
 public:
  template <class G, class... A>
  explicit posted_spawn(async_result<R> r, G&& f, A&&... args)
      : r_(std::move(r)), call_(std::forward<G>(f), std::forward<A>(args)...) {}

  ~posted_spawn() override {
    if (started_) return;
    try {
      r_.set_exception(std::make_exception_ptr(
          moss::error("moss: spawn_threadsafe: the hub stopped before running the function")));
    } catch (...) {
    }
  }

  void call() override {
    started_ = true;
    try {
      if constexpr (std::is_void_v<R>) {
        call_.template invoke<void>();
        r_.set();
      } else {
        R v = call_.template invoke<R>();
        r_.set(std::move(v));
      }
    } catch (const greenlet_exit&) {
      r_.set_exception(std::current_exception());
      throw;  // the task ends killed
    } catch (...) {
      // The exception belongs to whoever holds the result, not to the log.
      r_.set_exception(std::current_exception());
    }
  }

 private:
  async_result<R> r_;
  stored_call<F, Args...> call_;
  bool started_ = false;
};

}  // namespace detail

/// spawn_threadsafe() starts f(args...) as a task on hub h, from any thread,
/// and returns a result that is set when the task finishes: its value, its
/// exception, moss::greenlet_exit if the task is killed (as when h's thread
/// ends first), or moss::error if h stops before the task starts. Arguments
/// are copied or moved, as by std::thread. Throws moss::error at once if h
/// has already stopped.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn_threadsafe(moss::hub& h, F&& f, Args&&... args) {
  using R = std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;
  async_result<R> r;
  detail::hub_access::post(h, std::make_unique<detail::posted_spawn<R, std::decay_t<F>, std::decay_t<Args>...>>(
             r, std::forward<F>(f), std::forward<Args>(args)...),
         "spawn_threadsafe");
  return r;
}

}  // namespace moss

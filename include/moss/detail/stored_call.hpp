// detail/stored_call.hpp: a callable and its arguments kept by value until
// the call runs elsewhere — in a task (spawn), on another hub
// (spawn_threadsafe), on a pool thread (run_in_thread).
#pragma once

#include <functional>
#include <optional>
#include <tuple>
#include <utility>

namespace moss::detail {

template <class F, class... Args>
class stored_call {
 public:
  template <class G, class... A>
  explicit stored_call(G&& f, A&&... args) : call_(std::in_place, std::forward<G>(f), std::forward<A>(args)...) {}

  // invoke() calls f(args...) with the kept values moved in and converts
  // the result to R. The callable and its arguments are destroyed as soon
  // as it returns or throws, so what they own (sockets, buffers) goes with
  // the call, on the thread that made it. Must be called at most once.
  template <class R>
  R invoke() {
    struct reset_on_exit {
      std::optional<std::tuple<F, Args...>>& c;
      ~reset_on_exit() { c.reset(); }
    } guard{call_};
    return std::apply([](auto&& f, auto&&... a) -> R { return std::invoke(std::move(f), std::move(a)...); },
                      std::move(*call_));
  }

 private:
  std::optional<std::tuple<F, Args...>> call_;
};

}  // namespace moss::detail

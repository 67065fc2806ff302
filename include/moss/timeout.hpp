/// @file
/// timeout.hpp: bounding how long a greenlet may stay blocked.
///
///   {
///     moss::timeout t(50ms);   // gevent.Timeout
///     q.get(); sock.read(...); // raise moss::timeout_error if still blocked at 50 ms
///   }                          // leaving the scope cancels it
///
///   int v = moss::with_timeout(50ms, [] { return slow(); });  // asyncio.wait_for
///
/// A timeout belongs to the greenlet that made it. When its deadline passes a
/// timer on the hub raises timeout_error in that greenlet: at once if it is
/// blocked, else at its next blocking call. A deadline already past when the
/// timeout is made fires at the first blocking call. Timeouts nest: each raises
/// its own timeout_error, whose source() says which one fired.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/timer.hpp>
#include <moss/error.hpp>
#include <moss/task.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace moss {

/// timeout: a deadline for the calling greenlet; see timeout.hpp.
class MOSS_API timeout {
 public:
  /// timeout(d) starts counting now. A zero or negative d has already expired.
  /// Both constructors are [[nodiscard]]: `moss::timeout(50ms);` would make a
  /// temporary that is cancelled at the end of the statement.
  template <class Rep, class Period>
  [[nodiscard("a temporary moss::timeout is cancelled at once; name it: moss::timeout t(...)")]]
  explicit timeout(std::chrono::duration<Rep, Period> d)
      : timeout(detail::deadline_after(d), std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
  /// timeout(deadline) expires at a steady_clock time point.
  [[nodiscard("a temporary moss::timeout is cancelled at once; name it: moss::timeout t(...)")]]
  explicit timeout(detail::time_point deadline);
  /// ~timeout() cancels it, and withdraws its timeout_error if that was
  /// raised but not yet delivered (the greenlet never blocked again).
  ~timeout();
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;

  /// cancel() disarms the timeout early; it will not fire.
  void cancel() noexcept;
  /// pending() is true while armed and not yet fired.
  bool pending() const noexcept { return timer_.armed(); }
  ///@{
  /// fired() is true once the deadline passed (whether or not the error was
  /// delivered).
  bool fired() const noexcept { return fired_; }
  /// deadline() is when the timeout fires.
  detail::time_point deadline() const noexcept { return timer_.deadline_; }
  ///@}

 private:
  timeout(detail::time_point deadline, std::chrono::nanoseconds length);
  void fire() noexcept;

  struct fire_timer final : detail::timer {
    timeout* owner = nullptr;
    void fire() noexcept override { owner->fire(); }
  };

  detail::greenlet_impl* g_;
  std::chrono::nanoseconds length_;
  fire_timer timer_;
  std::exception_ptr raised_;
  bool fired_ = false;
};

namespace detail {
[[noreturn]] MOSS_API void throw_with_timeout_expired(std::chrono::nanoseconds d);
}

/// with_timeout() runs f() in a task and waits at most d for it. On time it
/// returns f's value (or rethrows its exception); otherwise it kills the task,
/// waits for it to unwind and throws moss::timeout_error, even if f returned
/// a value after all (it caught the kill, or C code inside it got ECANCELED
/// from a hooked call and returned normally). If the caller is
/// interrupted while waiting (killed, an outer timeout), the task is killed
/// too before the exception goes on.
template <class Rep, class Period, class F>
  requires std::is_invocable_v<std::decay_t<F>>
auto with_timeout(std::chrono::duration<Rep, Period> d, F&& f) -> detail::spawn_result_t<F> {
  detail::check_may_block("moss::with_timeout");
  auto t = spawn(std::forward<F>(f));
  bool finished = false;
  try {
    finished = t.join(d);
  } catch (...) {
    try {
      t.kill();
    } catch (...) {
    }
    throw;
  }
  if (!finished) {
    t.kill();
    detail::throw_with_timeout_expired(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }
  if constexpr (std::is_void_v<detail::spawn_result_t<F>>) {
    t.get();
  } else {
    return std::move(t.get());
  }
}

}  // namespace moss

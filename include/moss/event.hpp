/// @file
/// event.hpp: a flag greenlets wait for (gevent's Event, asyncio's Event).
///
///   moss::event ready;
///   moss::spawn([&] { ready.wait(); use(); });
///   ready.set();   // wakes every waiter; stays set until clear()
///
/// An event belongs to one thread's hub, like the greenlets that wait on it;
/// to signal across threads use moss::async_result.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <chrono>

namespace moss {

/// event: a flag greenlets wait for; see event.hpp.
class MOSS_API event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// set() sets the flag and wakes every greenlet waiting. Waiters woken by
  /// set() return true even if clear() runs before they do.
  void set() noexcept;
  ///@{
  /// clear() resets the flag; later wait() calls block again.
  void clear() noexcept { set_ = false; }
  /// is_set() is the flag.
  bool is_set() const noexcept { return set_; }
  ///@}

  /// wait() returns at once if the flag is set, else waits until set().
  void wait() { wait_until(detail::no_deadline); }
  /// wait(timeout) is wait() giving up after timeout; true if the flag was
  /// set. A timeout <= 0 only checks the flag.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return set_ || wait_until(detail::deadline_after(timeout));
  }

  /// waiting() is the number of greenlets waiting.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  bool wait_until(detail::time_point deadline);

  bool set_ = false;
  detail::waiter_list waiters_;
};

}  // namespace moss

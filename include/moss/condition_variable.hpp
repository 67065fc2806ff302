/// @file
/// condition_variable.hpp: wait for a condition under a moss::mutex
/// (asyncio's Condition, std::condition_variable for greenlets).
///
///   moss::mutex m;  moss::condition_variable cv;  bool ready = false;
///   { std::unique_lock l(m); cv.wait(l, [&] { return ready; }); }
///   { std::lock_guard g(m); ready = true; }  cv.notify_one();
///
/// Waiters are notified in FIFO order. A notification given to a waiter that
/// is killed before it runs passes to the next waiter. Every wait returns
/// with the mutex locked again, also when it throws (a kill or a
/// moss::timeout is raised once the lock is back) — except moss::loop_exit
/// while relocking, which leaves the unique_lock released. A condition
/// variable belongs to one thread's hub.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/mutex.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>

namespace moss {

/// condition_variable: std::condition_variable for greenlets, used with moss::mutex; see condition_variable.hpp.
class MOSS_API condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  /// notify_one() wakes the longest-waiting greenlet, if any.
  void notify_one() noexcept;
  /// notify_all() wakes every waiting greenlet.
  void notify_all() noexcept;

  ///@{
  /// wait() unlocks lk's mutex, waits for a notification and locks it again.
  /// The mutex must be locked by the calling greenlet through lk, else
  /// moss::error. Like the standard's, a wait may also end without a
  /// notification that the caller expected, so test the condition in a loop
  /// or use the predicate form.
  void wait(std::unique_lock<mutex>& lk) { wait_steady(lk, detail::no_deadline); }
  template <class Pred>
  void wait(std::unique_lock<mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  ///@}

  /// wait_for() is wait() giving up after timeout. A timeout <= 0 returns
  /// at once without unlocking.
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex>& lk, std::chrono::duration<Rep, Period> timeout) {
    return wait_steady(lk, detail::deadline_after(timeout)) ? std::cv_status::no_timeout : std::cv_status::timeout;
  }
  ///@{
  /// wait_for(lk, timeout, pred) waits until pred() holds or timeout passes;
  /// returns pred().
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<mutex>& lk, std::chrono::duration<Rep, Period> timeout, Pred pred) {
    return wait_until_steady(lk, detail::deadline_after(timeout), std::move(pred));
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<mutex>& lk, std::chrono::time_point<Clock, Duration> deadline) {
    return wait_for(lk, deadline - Clock::now());
  }
  template <class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<mutex>& lk, std::chrono::time_point<Clock, Duration> deadline, Pred pred) {
    return wait_for(lk, deadline - Clock::now(), std::move(pred));
  }
  ///@}

  /// waiting() is the number of greenlets waiting.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  /// wait_steady() returns true if notified, false on timeout.
  bool wait_steady(std::unique_lock<mutex>& lk, detail::time_point deadline);
  template <class Pred>
  bool wait_until_steady(std::unique_lock<mutex>& lk, detail::time_point deadline, Pred pred) {
    while (!pred())
      if (!wait_steady(lk, deadline)) return pred();
    return true;
  }

  detail::waiter_list waiters_;
};

}  // namespace moss

/// @file
/// mutex.hpp: a lock for greenlets (gevent's Semaphore(1) used as a lock,
/// asyncio's Lock), usable with std::lock_guard, std::unique_lock and
/// std::scoped_lock (it meets the standard's TimedLockable requirements).
///
///   moss::mutex m;
///   { std::lock_guard g(m); ...critical section that may wait... }
///
/// The lock is owned by a greenlet: only the owner may unlock it. unlock()
/// hands it to the longest-waiting greenlet directly (FIFO, no barging). A
/// mutex belongs to one thread's hub.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <chrono>
#include <cstddef>

namespace moss {

/// mutex: a lock for greenlets of one hub (not a thread lock); see mutex.hpp.
class MOSS_API mutex {
 public:
  mutex() = default;
  ~mutex();
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// lock() takes the lock, waiting while another greenlet holds it. Throws
  /// moss::error if the calling greenlet holds it already.
  void lock() { lock_until(detail::no_deadline); }
  /// try_lock() takes the lock if it is free now.
  bool try_lock() noexcept;
  ///@{
  /// try_lock_for() is lock() giving up after timeout; true if taken. A
  /// timeout <= 0 is try_lock().
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_lock() || lock_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    return try_lock_for(deadline - Clock::now());
  }
  ///@}
  /// unlock() releases the lock, handing it to the first waiter if any.
  /// Throws moss::error if the mutex is not locked, or is locked by another
  /// greenlet.
  void unlock();

  /// locked() is true while some greenlet holds the lock.
  bool locked() const noexcept { return owner_ != nullptr; }
  /// owned_by_current() is true if the calling greenlet holds the lock.
  bool owned_by_current() const noexcept;
  /// waiting() is the number of greenlets waiting for the lock.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  bool lock_until(detail::time_point deadline);
  void hand_on() noexcept;

  /// The owner, referenced so that a greenlet that ends holding the lock is
  /// still there to be named in errors. Invariant: nobody waits while
  /// owner_ is null.
  detail::greenlet_impl* owner_ = nullptr;
  detail::waiter_list waiters_;
};

}  // namespace moss

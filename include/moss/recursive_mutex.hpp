/// @file
/// recursive_mutex.hpp: a moss::mutex its owner may lock again; it is free
/// once unlocked as many times as it was locked. Usable with the standard
/// lock guards, like moss::mutex; FIFO hand-off between greenlets.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/mutex.hpp>

#include <chrono>
#include <cstddef>

namespace moss {

/// recursive_mutex: a mutex its owner greenlet may lock again; see recursive_mutex.hpp.
class MOSS_API recursive_mutex {
 public:
  recursive_mutex() = default;
  recursive_mutex(const recursive_mutex&) = delete;
  recursive_mutex& operator=(const recursive_mutex&) = delete;

  ///@{
  /// lock() takes the lock or, for its owner, counts one more level.
  void lock();
  /// try_lock() is lock() that never waits; true if taken.
  bool try_lock() noexcept;
  /// try_lock_for() is lock() giving up after timeout; true if taken.
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    if (relock()) return true;
    if (!m_.try_lock_for(timeout)) return false;
    count_ = 1;
    return true;
  }
  /// try_lock_until() is lock() giving up at deadline; true if taken.
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    return try_lock_for(deadline - Clock::now());
  }
  ///@}
  /// unlock() undoes one lock(); the last one releases the lock to the
  /// first waiter. Throws moss::error if the calling greenlet does not hold
  /// it.
  void unlock();

  /// locked() is true while some greenlet holds the lock.
  bool locked() const noexcept { return m_.locked(); }
  /// owned_by_current() is true when the calling greenlet holds the lock.
  bool owned_by_current() const noexcept { return m_.owned_by_current(); }
  ///@{
  /// level() is how many times the owner has locked it (0 when free).
  std::size_t level() const noexcept { return count_; }
  /// waiting() is the number of greenlets waiting for the lock.
  std::size_t waiting() const noexcept { return m_.waiting(); }
  ///@}

 private:
  bool relock() noexcept;

  mutex m_;
  std::size_t count_ = 0;
};

}  // namespace moss

/// @file
/// semaphore.hpp: counting semaphores for greenlets (gevent's Semaphore and
/// BoundedSemaphore, asyncio's Semaphore).
///
///   moss::semaphore slots(3);          // at most three at a time
///   slots.acquire();  ...;  slots.release();
///
/// Permits are handed over in FIFO order: release() gives the permit to the
/// longest-waiting greenlet directly, so a greenlet that arrives later cannot
/// take it first. A semaphore belongs to one thread's hub.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <chrono>
#include <cstddef>
#include <limits>

namespace moss {

/// semaphore: a counter of permits greenlets acquire and release; see semaphore.hpp.
class MOSS_API semaphore {
 public:
  /// semaphore() starts with value permits.
  explicit semaphore(std::size_t value = 1) noexcept : value_(value) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  /// acquire() takes a permit, waiting while there is none.
  void acquire() { acquire_until(detail::no_deadline); }
  /// acquire(timeout) is acquire() giving up after timeout; true if a permit
  /// was taken. A timeout <= 0 is try_acquire().
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return try_acquire() || acquire_until(detail::deadline_after(timeout));
  }
  /// try_acquire() takes a permit if one is free now.
  bool try_acquire() noexcept {
    if (value_ == 0) return false;
    --value_;
    return true;
  }
  /// release() returns a permit: to the first waiter if any, else to the
  /// count. On a bounded_semaphore, releasing past the initial value throws
  /// moss::error.
  void release();

  /// value() is the number of free permits.
  std::size_t value() const noexcept { return value_; }
  /// locked() is true when acquire() would wait.
  bool locked() const noexcept { return value_ == 0; }
  /// waiting() is the number of greenlets waiting for a permit.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 protected:
  /// unbounded: the bound of a plain semaphore (none).
  static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();
  /// semaphore(value, bound) is for bounded_semaphore: release() may not take the value above bound.
  semaphore(std::size_t value, std::size_t bound) noexcept : value_(value), bound_(bound) {}

 private:
  bool acquire_until(detail::time_point deadline);
  void hand_on() noexcept;

  /// Invariant: value_ > 0 only while nobody waits.
  std::size_t value_;
  detail::waiter_list waiters_;

 protected:
  /// bound_: the highest value release() may reach.
  std::size_t bound_ = unbounded;
};

/// bounded_semaphore: a semaphore whose release() throws moss::error when it
/// would raise the value above the initial one (a release without acquire).
class MOSS_API bounded_semaphore : public semaphore {
 public:
  /// bounded_semaphore(value) starts with value permits, which is also its bound.
  explicit bounded_semaphore(std::size_t value = 1) noexcept : semaphore(value, value) {}
  /// bound() is the initial value, which release() may not exceed.
  std::size_t bound() const noexcept { return bound_; }
};

}  // namespace moss

// semaphore.cpp: permits handed over in FIFO order.
//
// release() with waiters wakes the first one and the permit is its own from
// that moment (value_ does not move); await_handoff() passes the permit on if
// that waiter is killed before it runs. So value_ > 0 implies nobody waits,
// and acquire() may take a free permit without looking at the queue.
#include <moss/semaphore.hpp>

#include <moss/detail/handoff.hpp>
#include <moss/error.hpp>

#include <string>

namespace moss {

void semaphore::hand_on() noexcept {
  if (detail::wake_front(waiters_) == nullptr) ++value_;
}

void semaphore::release() {
  if (value_ >= bound_)
    throw moss::error("moss: bounded_semaphore released more times than it was acquired (bound " + std::to_string(bound_) + ")");
  hand_on();
}

bool semaphore::acquire_until(detail::time_point deadline) {
  if (try_acquire()) return true;
  detail::waiter w;
  w.set_what("semaphore");
  waiters_.push_back(w);
  return detail::await_handoff(w, deadline, [this] { hand_on(); });
}

}  // namespace moss

// event.cpp: set/wait for moss::event. A set() wakes the whole list at once;
// nothing is handed over, so a waiter that is killed or times out just
// leaves the list.
#include <moss/event.hpp>

namespace moss {

void event::set() noexcept {
  set_ = true;
  waiters_.wake_all();
}

bool event::wait_until(detail::time_point deadline) {
  if (set_) return true;
  detail::waiter w;
  w.set_what("event");
  waiters_.push_back(w);
  return w.wait(deadline) || set_;
}

}  // namespace moss

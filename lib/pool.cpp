// pool.cpp: the slot accounting of moss::pool.
//
// used = members + reserved. A spawner that finds no free slot (or others
// already queued) parks in slot_waiters_. A member leaving hands its slot
// straight to the oldest waiter (reserved_ + 1) instead of freeing it, so a
// spawner arriving in between cannot take it. A woken waiter always gets to
// use its slot: waiter::wait returns true even if a kill arrived after the
// wake (the kill is raised at its next wait), so a reservation is never lost.
#include <moss/pool.hpp>

#include <moss/error.hpp>

namespace moss {

pool::pool(std::size_t size) : capacity_(size) {
  if (size == 0) throw moss::error("moss::pool: the size must be at least 1 (a pool of 0 could never run anything)");
}

pool::~pool() = default;

void pool::acquire_slot() {
  if (slot_waiters_.empty() && size() + reserved_ < capacity_) return;
  detail::check_may_block("moss::pool::spawn");
  detail::waiter w;
  w.set_what("pool slot");
  slot_waiters_.push_back(w);
  w.wait();  // no deadline: returns woken, or throws (kill, moss::timeout)
  --reserved_;
}

void pool::release_slot() noexcept {
  if (slot_waiters_.wake_one()) ++reserved_;
}

}  // namespace moss

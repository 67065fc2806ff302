// pool.cpp: a pool's slots are the permits of a semaphore. A member holds
// one from the moment it is added (group::acquire_slot) until it finishes or
// is discarded (group::release_slot); the semaphore's FIFO hand-off keeps a
// newcomer from taking a slot freed for a waiting spawner.
#include <moss/pool.hpp>

#include <moss/error.hpp>

namespace moss {

namespace {
std::size_t checked_size(std::size_t size) {
  if (size == 0) throw moss::error("moss::pool: the size must be at least 1 (a pool of 0 could never run anything)");
  return size;
}
}  // namespace

pool::pool(std::size_t size) : capacity_(checked_size(size)), slots_(size) {}

pool::~pool() = default;

void pool::acquire_slot() {
  if (slots_.try_acquire()) return;
  detail::check_may_block("moss::pool::spawn");
  slots_.acquire();
}

// wait_available_until() takes a permit and gives it straight back: to the
// next waiting spawner if there is one (FIFO), else to the free count.
bool pool::wait_available_until(detail::time_point deadline) {
  if (free_count() > 0) return true;
  detail::check_may_block("moss::pool::wait_available");
  if (deadline == detail::no_deadline) {
    slots_.acquire();
  } else if (!slots_.acquire(deadline - detail::clock::now())) {
    return false;
  }
  slots_.release();
  return true;
}

// Never throws: the semaphore is unbounded.
void pool::release_slot() noexcept { slots_.release(); }

}  // namespace moss

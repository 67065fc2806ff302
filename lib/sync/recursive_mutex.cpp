// recursive_mutex.cpp: a depth count over moss::mutex, whose owner check
// and FIFO hand-off do the rest. count_ belongs to the current owner.
#include <moss/recursive_mutex.hpp>

#include <moss/error.hpp>

#include <string>

namespace moss {

bool recursive_mutex::relock() noexcept {
  if (!m_.owned_by_current()) return false;
  ++count_;
  return true;
}

void recursive_mutex::lock() {
  if (relock()) return;
  m_.lock();
  count_ = 1;
}

bool recursive_mutex::try_lock() noexcept {
  if (relock()) return true;
  if (!m_.try_lock()) return false;
  count_ = 1;
  return true;
}

void recursive_mutex::unlock() {
  if (!m_.locked()) throw moss::error("moss: unlock of a moss::recursive_mutex that is not locked");
  if (!m_.owned_by_current())
    throw moss::error("moss: greenlet \"" + detail::current_impl()->name() +
                      "\" unlocked a moss::recursive_mutex held by another greenlet; only the owner may unlock it");
  if (--count_ == 0) m_.unlock();
}

}  // namespace moss

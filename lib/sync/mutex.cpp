// mutex.cpp: ownership and FIFO hand-off.
//
// unlock() with waiters makes the first waiter the owner before it runs;
// await_handoff() passes ownership on if that waiter is killed first.
#include <moss/mutex.hpp>

#include <moss/detail/handoff.hpp>
#include <moss/error.hpp>

#include <string>

namespace moss {

namespace {
std::string quoted(const detail::greenlet_impl* g) { return "\"" + g->name() + "\""; }
}  // namespace

mutex::~mutex() {
  if (owner_ != nullptr) owner_->unref();
}

bool mutex::owned_by_current() const noexcept { return owner_ != nullptr && owner_ == detail::current_impl(); }

bool mutex::try_lock() noexcept {
  if (owner_ != nullptr) return false;
  owner_ = detail::current_impl();
  owner_->ref();
  return true;
}

void mutex::hand_on() noexcept {
  detail::greenlet_impl* old = owner_;
  detail::waiter* next = detail::wake_front(waiters_);
  owner_ = next != nullptr ? next->greenlet() : nullptr;
  if (owner_ != nullptr) owner_->ref();
  old->unref();
}

bool mutex::lock_until(detail::time_point deadline) {
  if (try_lock()) return true;
  detail::greenlet_impl* self = detail::current_impl();
  if (owner_ == self)
    throw moss::error("moss: greenlet " + quoted(self) +
                      " locked a moss::mutex it already holds (it would wait for itself forever); use moss::recursive_mutex");
  detail::waiter w;
  w.set_what("mutex");
  waiters_.push_back(w);
  return detail::await_handoff(w, deadline, [this] { hand_on(); });
}

void mutex::unlock() {
  detail::greenlet_impl* self = detail::current_impl();
  if (owner_ == nullptr) throw moss::error("moss: unlock of a moss::mutex that is not locked (by greenlet " + quoted(self) + ")");
  if (owner_ != self)
    throw moss::error("moss: greenlet " + quoted(self) + " unlocked a moss::mutex held by greenlet " + quoted(owner_) +
                      "; only the owner may unlock it");
  hand_on();
}

}  // namespace moss

// condition_variable.cpp: unlock, park, relock.
//
// The waiter joins the list before the mutex is unlocked, so a notify from
// whoever takes the mutex next cannot be missed. Relocking must not be cut
// short by a kill: the caller's unique_lock believes it owns the mutex and
// would unlock it on unwinding, so an exception raised while relocking is
// held back until the mutex is ours again.
#include <moss/condition_variable.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/handoff.hpp>
#include <moss/error.hpp>

#include <exception>

namespace moss {

namespace {

// relock() locks m, deferring any exception (other than loop_exit, which
// says it can never be locked) into err.
void relock(std::unique_lock<mutex>& lk, std::exception_ptr& err) {
  for (;;) {
    try {
      lk.mutex()->lock();
      return;
    } catch (const moss::loop_exit&) {
      lk.release();  // not ours: the unique_lock must not unlock it
      throw;
    } catch (...) {
      if (!err) err = std::current_exception();
    }
  }
}

}  // namespace

void condition_variable::notify_one() noexcept { detail::wake_front(waiters_); }

void condition_variable::notify_all() noexcept { waiters_.wake_all(); }

bool condition_variable::wait_steady(std::unique_lock<mutex>& lk, detail::time_point deadline) {
  if (!lk.owns_lock() || !lk.mutex()->owned_by_current())
    throw moss::error("moss: condition_variable::wait() needs its mutex locked by the calling greenlet");
  if (detail::current_impl()->role_ == detail::greenlet_impl::role::hub)
    throw moss::error("moss: condition_variable::wait() was called on the hub greenlet; code run by the hub must not wait");
  if (deadline != detail::no_deadline && deadline <= detail::clock::now()) return false;
  detail::waiter w;
  w.set_what("condition_variable");
  waiters_.push_back(w);
  lk.mutex()->unlock();
  bool notified = false;
  std::exception_ptr err;
  try {
    notified = detail::await_handoff(w, deadline, [this] { notify_one(); });
  } catch (...) {
    err = std::current_exception();
  }
  relock(lk, err);
  if (err) std::rethrow_exception(err);
  return notified;
}

}  // namespace moss

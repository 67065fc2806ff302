// timeout.cpp: scoped timeouts, delivered with detail::interrupt from a timer
// on the hub.
//
// The timeout_error is built only when the timeout fires. If something else
// is already pending for the greenlet (a kill, an outer timeout) that one is
// kept: it unwinds the scope anyway, and a kill must never be replaced.
#include <moss/timeout.hpp>

#include "core/greenlet.hpp"
#include "core/hub.hpp"

#include <moss/detail/waiter.hpp>

#include <string>

namespace moss {

namespace {

std::string describe(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d >= seconds(10) || d % seconds(1) == nanoseconds(0)) return std::to_string(duration_cast<seconds>(d).count()) + " s";
  if (d >= milliseconds(1) && d % milliseconds(1) == nanoseconds(0)) return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
  if (d >= microseconds(1) && d % microseconds(1) == nanoseconds(0)) return std::to_string(duration_cast<microseconds>(d).count()) + " us";
  if (d >= milliseconds(1)) return std::to_string(duration_cast<duration<double, std::milli>>(d).count()) + " ms";
  return std::to_string(d.count()) + " ns";
}

}  // namespace

timeout::timeout(detail::time_point deadline)
    : timeout(deadline, std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - detail::clock::now())) {}

timeout::timeout(detail::time_point deadline, std::chrono::nanoseconds length)
    : g_(detail::current_impl()), length_(length) {
  if (g_->role_ == detail::greenlet_impl::role::hub)
    throw moss::error("moss::timeout: cannot be used on the hub greenlet; code run by the hub must not wait");
  timer_.owner = this;
  timer_.deadline_ = deadline;
  if (deadline == detail::no_deadline) return;
  if (deadline <= detail::clock::now()) {
    // Already expired: raised at the first blocking call.
    fire();
    return;
  }
  detail::hub_core::current().timers.add(timer_, deadline);
}

timeout::~timeout() { cancel(); }

void timeout::cancel() noexcept {
  if (timer_.armed()) g_->owner_->hub->timers.remove(timer_);
  if (raised_ && g_->pending_ == raised_) g_->pending_ = nullptr;  // fired, never delivered
  raised_ = nullptr;
}

void timeout::fire() noexcept {
  fired_ = true;
  if (g_->pending_) return;
  try {
    std::string what = length_ > std::chrono::nanoseconds(0) ? "moss: timeout of " + describe(length_) + " expired"
                                                             : std::string("moss: timeout expired");
    what += " in greenlet \"" + g_->name() + "\"";
    raised_ = std::make_exception_ptr(timeout_error(what, this));
  } catch (...) {
    raised_ = std::current_exception();  // bad_alloc: still interrupt the wait
  }
  detail::interrupt(g_, raised_);
}

namespace detail {

void throw_with_timeout_expired(std::chrono::nanoseconds d) {
  throw timeout_error("moss::with_timeout: the function did not finish within " + describe(d) + "; it was killed (in greenlet \"" +
                      current_impl()->name() + "\")");
}

}  // namespace detail
}  // namespace moss

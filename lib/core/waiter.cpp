// waiter.cpp: park/unpark on the hub.
//
// A waiter is scheduled at most once per wait: by wake(), by its deadline, or
// by interrupt(). Only a greenlet actually parked in wait() is ever put on the
// ready queue; waking a waiter before it parks just makes wait() return.
#include <moss/detail/waiter.hpp>

#include "core/hub.hpp"

#include <moss/error.hpp>

#include <utility>

namespace moss::detail {

namespace {
hub_core& hub_of(greenlet_impl* g) noexcept { return *g->owner_->hub; }
}  // namespace

waiter::waiter() : g_(this_thread().current) { timer_.w = this; }

waiter::~waiter() {
  unlink();
  if (timer_.armed()) hub_of(g_).timers.remove(timer_);
}

void waiter::unlink() noexcept {
  if (list_ != nullptr) list_->remove(*this);
}

bool waiter::wait(time_point deadline) {
  greenlet_impl* g = g_;
  if (g->role_ == greenlet_impl::role::hub)
    throw moss::error("moss: a blocking call was made on the hub greenlet; code run by the hub must not wait");
  if (g != g_->owner_->current) throw moss::error("moss: a waiter must be waited on by the greenlet that made it");
  hub_core& h = hub_core::current();
  if (g->pending_) {
    unlink();
    std::rethrow_exception(std::exchange(g->pending_, nullptr));
  }
  if (woken_) return true;
  if (deadline != no_deadline) {
    if (deadline <= clock::now()) {
      unlink();
      timed_out_ = true;
      return false;
    }
    h.timers.add(timer_, deadline);
  }
  g->parked_on_ = this;
  ++h.parked;
  h.last_parked = g;
  h.switch_out();
  --h.parked;
  g->parked_on_ = nullptr;
  g->scheduled_ = false;
  if (timer_.armed()) h.timers.remove(timer_);
  if (g->inbox_error_) {  // resumed by throw_in()
    unlink();
    std::rethrow_exception(std::exchange(g->inbox_error_, nullptr));
  }
  if (woken_) return true;  // a wake-up that happened wins over a later kill
  unlink();
  if (g->pending_) std::rethrow_exception(std::exchange(g->pending_, nullptr));
  if (timed_out_) return false;
  throw moss::error("moss: greenlet \"" + g->name() + "\" was switched to while it waited on the hub");
}

bool waiter::wake() noexcept {
  if (woken_ || timed_out_ || interrupted_) return false;
  woken_ = true;
  unlink();
  if (g_->parked_on_ == this) hub_of(g_).schedule(g_);
  return true;
}

void waiter::interrupt() noexcept {
  if (woken_ || timed_out_ || interrupted_) return;
  interrupted_ = true;
  unlink();
  if (g_->parked_on_ == this) hub_of(g_).schedule(g_);
}

void waiter::forget() noexcept {
  interrupted_ = true;  // wake(), interrupt() and the deadline now do nothing
  unlink();
  if (timer_.armed()) hub_of(g_).timers.remove(timer_);
}

void waiter::deadline_timer::fire() noexcept {
  if (w->woken_ || w->interrupted_) return;
  w->timed_out_ = true;
  w->unlink();
  if (w->g_->parked_on_ == w) hub_of(w->g_).schedule(w->g_);
}

void interrupt(greenlet_impl* g, std::exception_ptr e) noexcept {
  g->pending_ = std::move(e);
  if (g->parked_on_ != nullptr) g->parked_on_->interrupt();
}

bool wait_published(waiter*& slot, const char* what, time_point deadline) {
  waiter w;
  w.set_what(what);
  slot = &w;
  struct clear_on_exit {
    waiter*& s;
    ~clear_on_exit() { s = nullptr; }
  } clear{slot};
  return w.wait(deadline);
}

waiter_list::~waiter_list() {
  while (waiter* w = waiters_.front()) remove(*w);
}

void waiter_list::push_back(waiter& w) noexcept {
  w.unlink();
  w.list_ = this;
  waiters_.push_back(w);
  ++size_;
}

void waiter_list::remove(waiter& w) noexcept {
  waiters_.remove(w);
  w.list_ = nullptr;
  --size_;
}

bool waiter_list::wake_one() noexcept {
  while (waiter* w = waiters_.front()) {
    if (w->wake()) return true;
    remove(*w);
  }
  return false;
}

void waiter_list::wake_all() noexcept {
  while (waiter* w = waiters_.front())
    if (!w->wake()) remove(*w);
}

}  // namespace moss::detail

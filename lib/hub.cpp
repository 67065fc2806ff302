// hub.cpp: the per-thread loop.
#include "hub.hpp"

#include "stack.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace moss::detail {

class loop_greenlet final : public greenlet_impl {
 public:
  explicit loop_greenlet(hub_core& h) : greenlet_impl(role::hub), hub_(h) { name_ = "hub"; }
  std::any run(std::any) override {
    hub_.loop();
    return {};
  }

 private:
  hub_core& hub_;
};

namespace {

// Declared after the thread state and the stack pool are first used, so it is
// destroyed before them at thread exit.
struct hub_holder {
  hub_core* core = nullptr;
  ~hub_holder() {
    if (core == nullptr) return;
    thread_state* t = this_thread_if_any();
    if (t == nullptr) return;
    t->hub_destroyed = true;
    core->box().close();  // other threads' posts now fail instead of waiting forever
    if (t->current != t->root) return;  // exiting from inside a greenlet: leave it all
    core->shutdown();
    t->hub = nullptr;
    delete core;
  }
};
thread_local hub_holder holder;

}  // namespace

hub_core::hub_core(thread_state& t) : thread_(t), box_(new inbox(*this)) {
  auto* g = new loop_greenlet(*this);
  g->owner_ = &t;
  g->ref();
  set_parent(g, t.root);
  g->stack_ = stack_allocate(0);
  hub_g_ = g;
}

hub_core::~hub_core() {
  box_->close();
  box_->facade().core_ = nullptr;  // the inbox and facade live on, closed
  // Entries still queued (tasks killed before they ever ran) each hold a
  // reference; the loop that would have popped them is gone.
  while (greenlet_impl* g = ready_head_) {
    ready_head_ = g->next_ready_;
    g->next_ready_ = nullptr;
    g->in_ready_queue_ = false;
    g->scheduled_ = false;
    g->unref();
  }
  ready_tail_ = nullptr;
  hub_g_->unref();
  monitor_detach(thread_.beat);
  thread_.beat = nullptr;
}

hub_core* hub_core::current_if_any() noexcept {
  thread_state* t = this_thread_if_any();
  return t != nullptr ? t->hub : nullptr;
}

hub_core& hub_core::create() {
  thread_state& t = this_thread();
  if (t.hub != nullptr) return *t.hub;
  if (t.hub_destroyed)
    throw moss::error("moss: this thread's hub was already destroyed (the thread is exiting); cannot spawn or wait");
  // First, as it may refuse a malformed MOSS_MONITOR_MS.
  heartbeat* beat = monitor_attach();
  hub_core* core = nullptr;
  try {
    core = new hub_core(t);
  } catch (...) {
    monitor_detach(beat);
    throw;
  }
  t.beat = beat;
  t.hub = core;
  holder.core = core;
  return *core;
}

void hub_core::track(greenlet_impl* g) noexcept {
  g->ref();
  g->hub_prev_ = nullptr;
  g->hub_next_ = tasks_;
  if (tasks_ != nullptr) tasks_->hub_prev_ = g;
  tasks_ = g;
  ++task_count_;
  if (thread_.beat != nullptr) thread_.beat->tasks.store(task_count_, std::memory_order_relaxed);
}

void hub_core::untrack(greenlet_impl* g) noexcept {
  if (g->hub_prev_ != nullptr) g->hub_prev_->hub_next_ = g->hub_next_;
  else if (tasks_ == g) tasks_ = g->hub_next_;
  else return;  // not tracked
  if (g->hub_next_ != nullptr) g->hub_next_->hub_prev_ = g->hub_prev_;
  g->hub_prev_ = g->hub_next_ = nullptr;
  --task_count_;
  if (thread_.beat != nullptr) thread_.beat->tasks.store(task_count_, std::memory_order_relaxed);
  g->unref();
}

void hub_core::loop() {
  while (!stopping_) {
    budget_ = batch;
    while (greenlet_impl* g = pop_ready()) {
      resume(g);
      if (stopping_) return;
    }
    poll_once();
  }
}

void hub_core::on_event(void*, void* tag, std::uint32_t events) noexcept {
  static_cast<fd_handler*>(tag)->ready(events);
}

void hub_core::poll_once() {
  time_point now = timers.empty() ? time_point{} : clock::now();
  timers.fire_expired(now);
  if (box_->has_work()) box_->take();
  std::chrono::nanoseconds timeout{0};
  if (ready_head_ == nullptr) {
    if (!timers.empty()) {
      timeout = std::max(std::chrono::nanoseconds{0}, timers.next_deadline() - now);
    } else if (keepalive > 0) {
      timeout = std::chrono::nanoseconds{-1};
    } else {
      deliver_loop_exit();
      return;
    }
  }
  // Greenlets are ready and no fd is watched: nothing to poll for (the
  // cross-thread inbox was just checked), so skip the system call.
  if (timeout.count() == 0 && events.watched() == 0) return;
  bool sleeping = timeout.count() != 0;
  if (sleeping && !box_->sleep_begin()) timeout = std::chrono::nanoseconds{0};
  if (thread_.beat != nullptr) thread_.beat->sleeping.store(timeout.count() != 0, std::memory_order_relaxed);
  events.wait(timeout, &on_event, this);
  if (thread_.beat != nullptr) thread_.beat->sleeping.store(false, std::memory_order_relaxed);
  if (sleeping) box_->sleep_end();
  if (!timers.empty()) timers.fire_expired(clock::now());
  if (box_->has_work()) box_->take();
}

// Nothing is ready and nothing (timer, fd, other thread) can make anything
// ready: every waiter would sleep forever. Like gevent, raise loop_exit in
// the main greenlet if it waits, else in the most recent waiter.
void hub_core::deliver_loop_exit() {
  greenlet_impl* victim = nullptr;
  if (thread_.root->parked_on_ != nullptr) victim = thread_.root;
  else if (last_parked != nullptr && last_parked->parked_on_ != nullptr) victim = last_parked;
  else
    for (greenlet_impl* g = tasks_; g != nullptr && victim == nullptr; g = g->hub_next_)
      if (g->parked_on_ != nullptr) victim = g;
  if (victim == nullptr) {
    std::fputs("moss: internal error: the hub has nothing to run and nobody waits\n", stderr);
    std::abort();
  }
  // Name the wait, and the way out when the wake-up will come from another thread.
  std::string what = "moss: greenlet \"" + victim->name() + "\" would block forever";
  if (const char* on = victim->parked_on_->what()) {
    what += std::string(" in ") + on;
    if (const greenlet_impl* about = victim->parked_on_->about()) what += " \"" + about->name() + "\"";
  }
  what += ": no other greenlet is ready and no timer, fd, thread job or keep-alive can wake it"
          " (if another thread will post work here, hold a moss::hub::keep_alive())";
  std::exception_ptr e;
  try {
    e = std::make_exception_ptr(moss::loop_exit(what));
  } catch (...) {
    e = std::make_exception_ptr(moss::loop_exit{});
  }
  interrupt(victim, std::move(e));
}

void hub_core::shutdown() {
  box_->close();
  if (reap_tasks != nullptr && tasks_ != nullptr) reap_tasks(*this);
  if (hub_g_->state_ == greenlet_impl::state::active) {
    stopping_ = true;
    resume(hub_g_);  // the loop returns; the hub greenlet finishes back here
  }
}

}  // namespace moss::detail

namespace moss {

hub& hub::current() { return detail::hub_core::current().facade(); }

std::size_t hub::task_count() const noexcept { return core_ != nullptr ? core_->tracked_count() : 0; }

keepalive hub::keep_alive() {
  detail::hub_core* here = detail::hub_core::current_if_any();
  if (core_ == nullptr || here != core_)
    throw moss::error(core_ == nullptr ? "moss::hub::keep_alive: the hub has stopped"
                                       : "moss::hub::keep_alive: must be called on the hub's own thread");
  ++core_->keepalive;
  return keepalive(this);
}

void keepalive::reset() noexcept {
  hub* h = std::exchange(h_, nullptr);
  if (h == nullptr) return;
  detail::hub_core* here = detail::hub_core::current_if_any();
  if (here != nullptr && &here->facade() == h) {
    --here->keepalive;
    return;
  }
  // Another thread: the hub releases it when it takes the post. A stopped
  // hub refuses the post, and has nothing left to release.
  try {
    h->call_threadsafe([] { --detail::hub_core::current().keepalive; });
  } catch (...) {
  }
}

}  // namespace moss

// hub.cpp: the per-thread loop.
#include "core/hub.hpp"

#include "core/config.hpp"
#include "core/stack.hpp"
#include "core/sys.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

#include <pthread.h>

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
    if (hub_core::keep_tasks_at_exit) return;
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
  retire_slots();
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

void hub_core::set_slot(slot_kind k, hub_slot* s) noexcept {
  int i = static_cast<int>(k);
  slots_[i] = s;
  for (int j = 0; j < slots_made_; ++j)
    if (made_[j] == k) return;
  made_[slots_made_++] = k;
}

void hub_core::retire_slot(slot_kind k) noexcept {
  hub_slot* s = std::exchange(slots_[static_cast<int>(k)], nullptr);
  for (int j = 0; j < slots_made_; ++j) {
    if (made_[j] != k) continue;
    for (int m = j + 1; m < slots_made_; ++m) made_[m - 1] = made_[m];
    --slots_made_;
    break;
  }
  if (s != nullptr) s->retire();
}

void hub_core::retire_slots() noexcept {
  while (slots_made_ > 0) retire_slot(made_[slots_made_ - 1]);
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
  check_environment();  // every MOSS_* variable, at the first hub of the process
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
  install_fork_handlers();
  return *core;
}

void hub_core::track(greenlet_impl* g) noexcept {
  g->ref();
  tasks_.push_front(*g);
  ++task_count_;
  if (thread_.beat != nullptr) thread_.beat->tasks.store(task_count_, std::memory_order_relaxed);
}

void hub_core::untrack(greenlet_impl* g) noexcept {
  if (!tasks_.linked(*g)) return;
  tasks_.remove(*g);
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

void hub_core::on_warm(void*, void* tag) noexcept { static_cast<const fd_handler*>(tag)->warm(); }

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
  events.wait(timeout, &on_event, this, &on_warm);
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
    for (greenlet_impl* g = tasks_.front(); g != nullptr && victim == nullptr; g = task_list::next(*g))
      if (g->parked_on_ != nullptr) victim = g;
  if (victim == nullptr && forked_) {
    // A forked child whose main greenlet was left behind (it waited on the
    // hub): the forking greenlet, and whatever it spawned, has finished. As
    // for a process whose last thread returns, the child exits with status 0.
    std::exit(0);
  }
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
  if (reap_tasks != nullptr && !tasks_.empty()) reap_tasks(*this);
  if (hub_g_->state_ == greenlet_impl::state::active) {
    stopping_ = true;
    resume(hub_g_);  // the loop returns; the hub greenlet finishes back here
  }
}

// ---- fork ------------------------------------------------------------------

thread_state& forked_away_thread() noexcept {
  // Never a thread's state: no hub, nothing current. Greenlets left behind
  // by a fork are parked here for good.
  static constinit thread_state nowhere{};
  return nowhere;
}

void hub_core::after_fork_in_child() noexcept {
  forked_ = true;
  // 1. A poller of our own; the parent keeps the old one.
  events.after_fork();

  // 2. Leave behind every greenlet that would otherwise be resumed by the
  // hub: those in the ready queue (woken, yielded, spawned and not
  // started), those parked in a waiter (the main greenlet included), and
  // tasks not started yet. The running greenlet stays, and so do greenlets
  // suspended by an explicit switch: only it can switch to them. Left-behind
  // greenlets keep their memory and references (nothing of theirs is freed
  // or unwound in the child, as for threads that do not exist after fork).
  greenlet_impl* self = thread_.current;
  thread_state& away = forked_away_thread();
  std::size_t parked_left = 0;
  auto leave = [&](greenlet_impl* g) noexcept {
    if (g->parked_on_ != nullptr) {
      g->parked_on_->forget();  // out of its waiter list, its deadline disarmed
      g->parked_on_ = nullptr;
      ++parked_left;
    }
    // A task not started, should its start timer fire: the hub skips it.
    if (g->state_ == greenlet_impl::state::fresh) g->state_ = greenlet_impl::state::dead;
    g->owner_ = &away;
  };
  while (greenlet_impl* g = ready_head_) {
    ready_head_ = g->next_ready_;
    g->next_ready_ = nullptr;
    g->in_ready_queue_ = false;
    bool runnable = g->scheduled_ && g->state_ != greenlet_impl::state::dead;
    g->scheduled_ = false;
    if (runnable && g != self && g != hub_g_) leave(g);  // keeps the queue's reference: never freed
    else g->unref();
  }
  ready_tail_ = nullptr;
  for (greenlet_impl* g = tasks_.front(); g != nullptr;) {
    greenlet_impl* next = task_list::next(*g);
    if (g != self && (g->owner_ == &away || g->parked_on_ != nullptr || g->state_ == greenlet_impl::state::fresh)) {
      if (g->owner_ != &away) leave(g);
      g->ref();  // the list's reference stays taken: never freed
      untrack(g);
    }
    g = next;
  }
  if (thread_.root != self && thread_.root->parked_on_ != nullptr) leave(thread_.root);
  parked = parked > parked_left ? parked - parked_left : 0;
  last_parked = nullptr;

  // 3. The slots, in the order they were made; each forgets the old
  // poller and gives back the keepalive its left-behind waiters held.
  std::size_t lost = threadpool_waits_at_fork();
  for (int j = 0; j < slots_made_; ++j)
    if (hub_slot* s = slots_[static_cast<int>(made_[j])]) lost += s->after_fork();
  keepalive = keepalive > lost ? keepalive - lost : 0;
}

namespace {

// The pid after_fork_in_child() last ran for (0: never).
constinit std::atomic<long> rebuilt_for{0};

void on_prepare() noexcept {
  threadpool_at_fork(fork_phase::prepare);
  dns_at_fork(fork_phase::prepare);
  signals_at_fork(fork_phase::prepare);
  fd_table_at_fork(fork_phase::prepare);
}

void on_parent() noexcept {
  fd_table_at_fork(fork_phase::parent);
  signals_at_fork(fork_phase::parent);
  dns_at_fork(fork_phase::parent);
  threadpool_at_fork(fork_phase::parent);
}

}  // namespace

void after_fork_in_child() noexcept {
  long pid = sys::call(SYS_getpid);
  if (rebuilt_for.exchange(pid, std::memory_order_relaxed) == pid) return;
  threadpool_at_fork(fork_phase::child);
  dns_at_fork(fork_phase::child);
  signals_at_fork(fork_phase::child);
  fd_table_at_fork(fork_phase::child);
  inboxes_at_fork(fork_phase::child);
  thread_state* t = this_thread_if_any();
  if (t != nullptr && t->hub != nullptr) t->hub->after_fork_in_child();
  monitor_after_fork(t != nullptr ? t->beat : nullptr);
}

void install_fork_handlers() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(&on_prepare, &on_parent, &after_fork_in_child); });
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

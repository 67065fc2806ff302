// hub.hpp (internal): the hub's core. One per OS thread, owned by a
// thread_local holder in hub.cpp and torn down at thread exit (remaining
// tasks are killed first, from the thread's main greenlet).
//
// Scheduling: a greenlet that waits does not always go through the hub
// greenlet: switch_out() switches straight to the next ready greenlet while
// the batch budget lasts, so a ping-pong between two tasks costs two context
// switches, not four. Every `batch` direct switches, and whenever nothing is
// ready, the hub greenlet runs: it fires timers and polls for I/O (without
// blocking if anything is ready), then starts a new batch.
#pragma once

#include "greenlet.hpp"
#include "poller.hpp"
#include "timer_queue.hpp"

#include <moss/hub.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace moss::detail {

// fd_handler: what the poller's tags point to (the io layer's fd records).
class fd_handler {
 public:
  virtual void ready(std::uint32_t events) noexcept = 0;

 protected:
  ~fd_handler() = default;
};

// hub_extension: per-hub state of a layer above the hub (the dns layer's
// c-ares channel). Destroyed with the hub: after its tasks have been reaped,
// before its poller and timers.
class hub_extension {
 public:
  virtual ~hub_extension() = default;
};

// inbox: the hub's cross-thread queue (lib/threadsafe.cpp). Other threads
// post nodes; the hub takes them in poll_once(). The inbox and the facade it
// holds are never freed: another thread may keep a moss::hub& after this
// thread has ended, and posting through it must then throw, not crash. A
// closed inbox (the hub stopped) rejects posts and deletes what it held.
//
// Posting is one CAS onto a lock-free stack (the hub reverses what it takes,
// so each producer's order is kept) and writes the poller's eventfd only when
// the hub may be asleep in the poller: the hub announces a sleep
// (sleep_begin) and then re-checks for work, a producer pushes and then
// checks for a sleep, so at least one of the two sees the other. A producer
// about to write the eventfd counts itself in `waking_`; close() waits for
// that count to drop, so the poller outlives every write.
class inbox {
 public:
  explicit inbox(hub_core& h);
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;

  moss::hub& facade() noexcept { return facade_; }

  // post() queues n; any thread. Throws moss::error once closed.
  void post(std::unique_ptr<posted> n, const char* what);
  bool closed() const noexcept;

  // The rest is for the hub's own thread.
  bool has_work() const noexcept {
    posted* h = head_.load(std::memory_order_acquire);
    return h != nullptr && h != closed_tag();
  }
  // sleep_begin() is called before blocking in the poller; false means work
  // is already queued, so do not block. sleep_end() follows the poll.
  bool sleep_begin() noexcept;
  void sleep_end() noexcept { sleeping_.store(false, std::memory_order_relaxed); }
  // take() dispatches every node queued so far, in order.
  void take() noexcept;
  // close() rejects further posts and deletes the nodes still queued.
  void close() noexcept;

 private:
  // head_ holds this value once closed; never dereferenced.
  static posted* closed_tag() noexcept { return reinterpret_cast<posted*>(&closed_byte_); }
  static inline char closed_byte_ = 0;

  std::atomic<posted*> head_{nullptr};  // newest first
  std::atomic<bool> sleeping_{false};
  std::atomic<int> waking_{0};
  poller& waker_;
  moss::hub facade_;
  inbox* next_ = nullptr;  // every inbox ever made, so they stay reachable
};

class hub_core {
 public:
  static constexpr int batch = 64;

  explicit hub_core(thread_state& t);
  ~hub_core();
  hub_core(const hub_core&) = delete;
  hub_core& operator=(const hub_core&) = delete;

  // current() returns this thread's hub, creating it on first use.
  static hub_core& current() {
    thread_state& t = this_thread();
    if (t.hub != nullptr) [[likely]]
      return *t.hub;
    return create();
  }
  static hub_core* current_if_any() noexcept;
  // create() makes this thread's hub (current() calls it on first use).
  static hub_core& create();

  // schedule() makes g runnable; the hub resumes it in FIFO order.
  void schedule(greenlet_impl* g) noexcept {
    if (g->scheduled_) return;
    g->scheduled_ = true;
    if (g->in_ready_queue_) return;  // a stale entry is still linked: reuse it
    g->in_ready_queue_ = true;
    g->ref();
    g->next_ready_ = nullptr;
    if (ready_tail_ != nullptr) ready_tail_->next_ready_ = g;
    else ready_head_ = g;
    ready_tail_ = g;
  }
  // switch_out() lets others run until the current greenlet is scheduled
  // again. The current greenlet must not be the hub's.
  void switch_out() {
    greenlet_impl* self = thread_.current;
    greenlet_impl* next = pop_ready();
    if (next == self) return;
    switch_into(thread_, self, next != nullptr ? next : hub_g_);
  }
  // exit_target() is where a finishing task goes: next ready, else the hub.
  greenlet_impl* exit_target() noexcept {
    greenlet_impl* next = pop_ready();
    return next != nullptr ? next : hub_g_;
  }

  // Spawned tasks that have not finished (intrusive list; holds a reference).
  void track(greenlet_impl* g) noexcept;
  void untrack(greenlet_impl* g) noexcept;
  greenlet_impl* tracked() const noexcept { return tasks_; }
  std::size_t tracked_count() const noexcept { return task_count_; }

  // Called at thread exit (and by moss::run) to kill what is left; installed
  // by the task layer.
  static inline void (*reap_tasks)(hub_core&) = nullptr;

  greenlet_impl* hub_greenlet() const noexcept { return hub_g_; }
  thread_state& thread() const noexcept { return thread_; }
  moss::hub& facade() noexcept { return box_->facade(); }
  inbox& box() noexcept { return *box_; }

  timer_queue timers;
  poller events;
  // keepalive counts what can still make a waiter runnable besides the
  // ready queue and timers. While it is > 0 the hub blocks in the poller
  // instead of raising loop_exit. It counts, each while it lasts:
  //  - a greenlet waiting on a watched fd;
  //  - a greenlet waiting in run_in_thread (a pool thread will post back);
  //  - a greenlet waiting on a result another thread or hub will set;
  //  - this hub having signal handlers (a signal can arrive any time).
  // It does not count the mere possibility that some thread might
  // call_threadsafe later: a hub nobody has promised to wake raises
  // loop_exit as before. Only the hub's own thread changes it.
  std::size_t keepalive = 0;
  std::size_t parked = 0;     // greenlets inside waiter::wait()
  greenlet_impl* last_parked = nullptr;
  // The dns layer's state (lib/resolver_ares.cpp), made on first lookup.
  // Declared after timers and events, so it is destroyed before them.
  std::unique_ptr<hub_extension> dns;

  // shutdown() stops the loop; called from the thread's main greenlet.
  void shutdown();

 private:
  friend class loop_greenlet;
  void loop();
  void poll_once();
  void deliver_loop_exit();
  // pop_ready() takes the next runnable greenlet while the batch budget
  // lasts, skipping stale entries; null when none or out of budget.
  greenlet_impl* pop_ready() noexcept {
    while (budget_ > 0 && ready_head_ != nullptr) {
      greenlet_impl* g = ready_head_;
      ready_head_ = g->next_ready_;
      if (ready_head_ == nullptr) ready_tail_ = nullptr;
      g->next_ready_ = nullptr;
      g->in_ready_queue_ = false;
      bool runnable = g->scheduled_ && g->state_ != greenlet_impl::state::dead;
      g->scheduled_ = false;
      g->unref();  // a runnable greenlet is still held by itself or its task list
      if (runnable) {
        --budget_;
        return g;
      }
    }
    return nullptr;
  }
  static void on_event(void* ctx, void* tag, std::uint32_t events) noexcept;

  thread_state& thread_;
  greenlet_impl* hub_g_ = nullptr;
  greenlet_impl* ready_head_ = nullptr;
  greenlet_impl* ready_tail_ = nullptr;
  int budget_ = batch;
  bool stopping_ = false;
  greenlet_impl* tasks_ = nullptr;
  std::size_t task_count_ = 0;
  inbox* box_;
};

}  // namespace moss::detail

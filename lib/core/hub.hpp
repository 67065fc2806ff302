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

#include "core/greenlet.hpp"
#include "core/poller.hpp"
#include "core/timer_queue.hpp"

#include <moss/hub.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace moss::detail {

// fd_handler: what the poller's tags point to (the io layer's fd records).
class fd_handler {
 public:
  virtual void ready(std::uint32_t events) noexcept = 0;
  // warm() is called before ready(), for a whole batch of ready fds at
  // once: it may ask the cache for what ready() will read (poller::wait).
  virtual void warm() const noexcept {}

 protected:
  ~fd_handler() = default;
};

// hub_slot: per-hub state of a layer above the hub — the io layer's fd
// table, the dns layer's c-ares channels, the signal pipe. The hub owns them
// all (libdill's per-thread context is the model): each is made lazily by its
// layer (set_slot), and retired by the hub in the reverse order of creation,
// after the hub's tasks have been reaped and before its poller and timers.
// In a forked child each is rebuilt, in the order of creation, after the
// poller (see after_fork_in_child).
enum class slot_kind : unsigned char { io, dns, signals };
inline constexpr int slot_kinds = 3;

class hub_slot {
 public:
  virtual ~hub_slot() = default;
  // retire() ends the slot when its hub goes; deletes it unless something
  // still uses it (the fd table while greenlets nobody will resume are
  // parked on its records: then it leaks).
  virtual void retire() noexcept { delete this; }
  // after_fork() runs in a forked child, on the forking thread, once the hub
  // has its new poller and the greenlets left behind are marked (their
  // owner_ is forked_away_thread()). The slot must forget its registrations
  // with the old poller without touching it (the parent still uses it) and
  // close its copies of fds the parent keeps using. Returns how much of the
  // hub's keepalive was held by greenlets left behind.
  virtual std::size_t after_fork() noexcept { return 0; }
};

// ---- work for another hub ----------------------------------------------------
// lib/ sends work to another thread's hub in one way: a node, made ahead by
// make_hub_work() where the sender must not fail later, handed over by
// post_to(). A node owns itself from dispatch() on and is gone when
// dispatch() returns; a node the hub never takes is deleted unrun.

// hub_work<F>: a node whose dispatch() calls f on the hub greenlet; f must
// not block.
template <class F>
class hub_work final : public posted {
 public:
  explicit hub_work(F f) : f_(std::move(f)) {}
  void dispatch() noexcept override {
    std::unique_ptr<hub_work> self(this);
    f_();
  }

 private:
  F f_;
};

template <class F>
std::unique_ptr<posted> make_hub_work(F&& f) {
  return std::make_unique<hub_work<std::decay_t<F>>>(std::forward<F>(f));
}

// post_to() hands n to h's thread (lib/thread/threadsafe.cpp). Returns false
// if that hub has stopped: n is deleted, and nothing is left there to wake.
bool post_to(moss::hub& h, std::unique_ptr<posted> n, const char* what) noexcept;

// post_work() posts f as a hub_work; false also when out of memory.
template <class F>
bool post_work(moss::hub& h, F&& f, const char* what) noexcept {
  try {
    return post_to(h, make_hub_work(std::forward<F>(f)), what);
  } catch (const std::bad_alloc&) {
    return false;
  }
}

// inbox: the hub's cross-thread queue (lib/thread/threadsafe.cpp). Other threads
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
  // after_fork() is for a forked child (inboxes_at_fork): the forking
  // thread's hub keeps its inbox, emptied (what was posted before the fork
  // is dropped unrun: its senders do not exist here); any other hub's inbox
  // is closed and its poller's fds closed, leaving what it held untouched.
  void after_fork(bool mine) noexcept;
  inbox* next() const noexcept { return next_; }

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

// first_inbox() starts the list of every inbox ever made (inbox::next());
// any thread (moss::dump_greenlets reaches every hub through it).
inbox* first_inbox() noexcept;

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

  // Spawned tasks that have not finished, newest first; the list holds a
  // reference to each.
  using task_list = intrusive_list<greenlet_impl, member_links<greenlet_impl, &greenlet_impl::hub_links_>>;
  void track(greenlet_impl* g) noexcept;
  void untrack(greenlet_impl* g) noexcept;
  const task_list& tasks() const noexcept { return tasks_; }
  std::size_t tracked_count() const noexcept { return task_count_; }

  // Called at thread exit (and by moss::run) to kill what is left; installed
  // by the task layer.
  static inline void (*reap_tasks)(hub_core&) = nullptr;
  // keep_tasks_at_exit: set by a layer that runs a whole program's threads
  // as tasks (the preload's green pthreads). There exit() ends every thread
  // at once, as POSIX says: unfinished tasks are left as they are, not
  // killed and unwound.
  static inline bool keep_tasks_at_exit = false;

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
  //  - each moss::keepalive held (hub::keep_alive(): a promise that another
  //    thread will post work).
  // It does not count the mere possibility that some thread might
  // call_threadsafe later: a hub nobody has promised to wake raises
  // loop_exit as before. Only the hub's own thread changes it.
  std::size_t keepalive = 0;
  std::size_t parked = 0;     // greenlets inside waiter::wait()
  greenlet_impl* last_parked = nullptr;
  // slot() is a layer's per-hub state, or null before the layer's first use
  // (and after the hub retired its slots). set_slot() installs one made by
  // the layer; the hub owns it from then on.
  hub_slot* slot(slot_kind k) const noexcept { return slots_[static_cast<int>(k)]; }
  void set_slot(slot_kind k, hub_slot* s) noexcept;
  // retire_slot() retires one slot now (a layer that no longer needs it).
  void retire_slot(slot_kind k) noexcept;

  // shutdown() stops the loop; called from the thread's main greenlet.
  void shutdown();

  // after_fork_in_child() rebuilds this hub in a forked child (called by
  // detail::after_fork_in_child on the forking thread): a new poller and
  // wake fd, an empty inbox, every slot rebuilt; the greenlets that were
  // parked, ready or not yet started are left behind: never resumed here.
  void after_fork_in_child() noexcept;

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
        prefetch_next();
        return g;
      }
    }
    return nullptr;
  }
  // prefetch_next() fetches the stack of the greenlet after the one being
  // resumed while that one runs, if it was woken from a wait while many are
  // parked: then its stack has most likely left the cache. Not for one that
  // yielded, nor with few parked: fetching lines already cached, or never
  // read, costs (a yield round trip twice as long, a ring of 1,000 yielding
  // tasks five times as long). At the wake instead, 64 at a time, is too
  // early: the lines are gone again before the greenlet runs.
  void prefetch_next() const noexcept {
    const greenlet_impl* next = ready_head_;
    if (next != nullptr && parked >= prefetch_parked_min && next->parked_on_ != nullptr) context_prefetch(next->ctx_);
  }
  static constexpr std::size_t prefetch_parked_min = 512;
  static void on_event(void* ctx, void* tag, std::uint32_t events) noexcept;
  static void on_warm(void* ctx, void* tag) noexcept;
  void retire_slots() noexcept;

  thread_state& thread_;
  greenlet_impl* hub_g_ = nullptr;
  greenlet_impl* ready_head_ = nullptr;
  greenlet_impl* ready_tail_ = nullptr;
  int budget_ = batch;
  bool stopping_ = false;
  task_list tasks_;
  std::size_t task_count_ = 0;
  inbox* box_;
  hub_slot* slots_[slot_kinds] = {};
  slot_kind made_[slot_kinds] = {};  // the order slots were made in
  int slots_made_ = 0;
  bool forked_ = false;  // rebuilt in a forked child: greenlets were left behind
};

// ---- fork ------------------------------------------------------------------
//
// fork() from a greenlet: the child gets a hub of its own, rebuilt from the
// copy it inherited, and only the greenlet that forked (plus greenlets
// suspended by explicit switches, which only it can resume). The parent is
// untouched: the child never touches the parent's epoll instance or wake fd,
// only closes its own copies.
//
// The handlers are registered with pthread_atfork when the first hub (or the
// thread pool) is made: prepare takes the library's process-wide locks,
// parent releases them, child resets them and calls after_fork_in_child().

// after_fork_in_child() makes the calling thread's hub usable in a forked
// child: process-wide state first (locks, registries, the thread pool,
// other threads' hubs, which do not exist here), then this thread's hub.
// Idempotent per process: a second call in the same child does nothing.
// Runs from the atfork child handler; a layer that forks by other means
// (a raw clone) must call it in the child before anything else of moss.
void after_fork_in_child() noexcept;

// install_fork_handlers() registers the atfork handlers once per process.
void install_fork_handlers() noexcept;

// forked_away_thread() is the owner_ of every greenlet left behind in a
// forked child: a thread that does not exist in this process, so a switch
// to one, or a join or kill of its task, fails as for another thread's.
thread_state& forked_away_thread() noexcept;

// Each layer's process-wide part of a fork, called in this order by the
// handlers in hub.cpp: prepare (take its locks), parent (release them),
// child (reset them; forget other threads' hubs).
enum class fork_phase { prepare, parent, child };
void threadpool_at_fork(fork_phase p) noexcept;  // lib/thread/threadpool.cpp
void dns_at_fork(fork_phase p) noexcept;         // lib/dns/dns.cpp
void signals_at_fork(fork_phase p) noexcept;     // lib/thread/signal.cpp
void fd_table_at_fork(fork_phase p) noexcept;    // lib/io/fd_table.cpp
void inboxes_at_fork(fork_phase p) noexcept;     // lib/thread/threadsafe.cpp
// threadpool_waits_at_fork() is how many run_in_thread waits of this
// thread's hub were in progress at the fork (each holds a keepalive; their
// jobs do not exist in the child).
std::size_t threadpool_waits_at_fork() noexcept;

}  // namespace moss::detail

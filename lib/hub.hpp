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

#include <cstdint>

namespace moss::detail {

// fd_handler: what the poller's tags point to (the io layer's fd records).
class fd_handler {
 public:
  virtual void ready(std::uint32_t events) noexcept = 0;

 protected:
  ~fd_handler() = default;
};

class hub_core {
 public:
  static constexpr int batch = 64;

  explicit hub_core(thread_state& t);
  ~hub_core();
  hub_core(const hub_core&) = delete;
  hub_core& operator=(const hub_core&) = delete;

  // current() returns this thread's hub, creating it on first use.
  static hub_core& current();
  static hub_core* current_if_any() noexcept;

  // schedule() makes g runnable; the hub resumes it in FIFO order.
  void schedule(greenlet_impl* g) noexcept;
  // switch_out() lets others run until the current greenlet is scheduled
  // again. The current greenlet must not be the hub's.
  void switch_out();
  // exit_target() is where a finishing task goes: next ready, else the hub.
  greenlet_impl* exit_target() noexcept;

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
  moss::hub& facade() noexcept { return facade_; }

  timer_queue timers;
  poller events;
  std::size_t keepalive = 0;  // wake-up sources beyond timers: fd waits, cross-thread work
  std::size_t parked = 0;     // greenlets inside waiter::wait()
  greenlet_impl* last_parked = nullptr;

  // shutdown() stops the loop; called from the thread's main greenlet.
  void shutdown();

 private:
  friend class loop_greenlet;
  void loop();
  void poll_once();
  void deliver_loop_exit();
  greenlet_impl* pop_ready() noexcept;
  static void on_event(void* ctx, void* tag, std::uint32_t events) noexcept;

  thread_state& thread_;
  greenlet_impl* hub_g_ = nullptr;
  greenlet_impl* ready_head_ = nullptr;
  greenlet_impl* ready_tail_ = nullptr;
  int budget_ = batch;
  bool stopping_ = false;
  greenlet_impl* tasks_ = nullptr;
  std::size_t task_count_ = 0;
  moss::hub facade_;
};

}  // namespace moss::detail

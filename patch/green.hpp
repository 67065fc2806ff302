// green.hpp: green pthreads, the part of the preload layer shared by its
// pthread hooks (hook_pthread.cpp: threads, keys, once, cancellation;
// hook_pthread_sync.cpp: mutexes, condition variables, rwlocks, barriers,
// spinlocks, semaphores).
//
// Under MOSS_THREADS=green (mossrun's default) every pthread the program
// creates is a moss task on the hub of the OS thread that created it, and
// `main` is that thread's root greenlet. The pthread objects keep glibc's
// layout and stay usable by native threads (moss's own pool and monitor,
// threads libc makes for itself): a green lock first tries glibc's own
// try-lock and parks on the hub only when another green thread holds the
// object. Waiters park on a per-hub table keyed by the object's address.
//
// A call from anything that is not a green thread (a native thread, the hub
// greenlet, code running before the hub exists) goes to the real function.
#pragma once

#include <moss/detail/waiter.hpp>

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <vector>

namespace moss::patch {

// green_threads is true under MOSS_THREADS=green (preload.cpp).
extern bool green_threads;

// green_context() says whether the caller is a green thread: a greenlet other
// than the hub's own, on a thread that has a hub, with green threads on.
bool green_context() noexcept;

// green_thread: the control block behind a green pthread_t.
struct green_thread {
  static constexpr std::uint64_t live = 0x6d6f73732d677468;  // "moss-gth"
  std::uint64_t magic = live;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;
  detail::greenlet_impl* g = nullptr;  // while it runs
  bool detached = false;
  bool finished = false;
  bool joined = false;                 // someone is in pthread_join on it
  detail::waiter_list joiners;
  // Cancellation (deferred only: asynchronous cancellation is taken as deferred).
  bool cancel_enabled = true;
  bool cancel_pending = false;
  bool uninterruptible = false;  // parked where POSIX has no cancellation point
  // Thread-specific values, by key: {generation, value}.
  std::vector<std::pair<unsigned, void*>> values;
  // __pthread_register_cancel's chain: the cleanup handlers of C code built
  // without exceptions (a __pthread_unwind_buf_t each, linked by __pad[0]).
  void* cleanup_top = nullptr;
  void* exit_value = nullptr;  // while the handlers run on the way out
  char name[16] = {};
};

// current_green() is the calling green thread's block; null for main (the
// root greenlet keeps the OS thread's own pthread identity) and outside
// green threads.
green_thread* current_green() noexcept;

// as_green() returns t's block if t names a live green thread, else null.
green_thread* as_green(pthread_t t) noexcept;

// green_exit unwinds a green thread's stack on pthread_exit and on an acted
// upon cancellation; the thread's entry catches it.
struct green_exit {
  void* value;
};

// Address-keyed wait lists of this hub.
detail::waiter_list& waiters_at(const void* addr);
// wake_one_at()/wake_all_at() wake parked green threads; false when none.
bool wake_one_at(const void* addr) noexcept;
void wake_all_at(const void* addr) noexcept;
// forget_if_empty() drops addr's list once nobody waits on it.
void forget_if_empty(const void* addr) noexcept;

// deferred_interrupt: for waits that C callers cannot see end early (a mutex,
// rwlock or barrier wait: POSIX functions that never fail that way, declared
// not to throw). A kill or timeout of the waiting greenlet (a moss task of a
// program that links moss, under mossrun) that arrives meanwhile is kept
// here, the wait goes on, and when the wait is over the destructor re-arms
// it on the greenlet, to be raised at its next wait in C++ code (a hooked
// call sees ECANCELED). Of two, a kill wins.
class deferred_interrupt {
 public:
  deferred_interrupt() = default;
  deferred_interrupt(const deferred_interrupt&) = delete;
  deferred_interrupt& operator=(const deferred_interrupt&) = delete;
  ~deferred_interrupt();
  void keep(std::exception_ptr e) noexcept;

 private:
  std::exception_ptr e_;
};

// park() waits on w (already linked to a list) until woken or the deadline;
// true if woken. A deadlock (the hub's loop_exit: nothing can ever wake any
// green thread) prints every green thread and exits 70. When cancel_point,
// a pending cancellation of the caller is acted upon (green_exit thrown).
// Other exceptions (the task being killed) propagate, or with `defer` are
// kept there and park() returns false (not woken: the caller waits again).
bool park(detail::waiter& w, detail::time_point deadline, const char* what, bool cancel_point,
          deferred_interrupt* defer = nullptr);

// cancel() marks gt cancelled and ends its wait if it is parked in a
// cancellation point (a green wait of ours, or a hooked call), where the
// cancellation is then acted upon.
void cancel(green_thread* gt) noexcept;

// exit_green() ends the calling green thread with value: it runs the C
// cleanup handlers (each longjmp'd to, each ending in __pthread_unwind_next,
// which calls continue_exit), then unwinds the stack with green_exit.
[[noreturn]] void exit_green(green_thread* gt, void* value);
[[noreturn]] void continue_exit(green_thread* gt);

// test_cancel() acts upon a pending cancellation of the calling green
// thread; it is also the hooks' cancel_point (hooks.hpp).
void test_cancel();

// report_deadlock() prints every green thread and what it waits on (the
// caller: `what`), then exits 70.
[[noreturn]] void report_deadlock(const char* what) noexcept;

// deadline_from() converts an absolute time on clock c (CLOCK_REALTIME or
// CLOCK_MONOTONIC) to a hub deadline; false (EINVAL) for a malformed one.
bool deadline_from(clockid_t c, const timespec* abstime, detail::time_point* out) noexcept;

// forget_waits_after_fork() drops the wait table in a forked child: the
// greenlets parked on it were left behind in the parent.
void forget_waits_after_fork() noexcept;

// unsupported() prints one line naming a pthread function moss cannot run
// for green threads; returns ENOTSUP.
int unsupported(const char* function, const char* why) noexcept;

}  // namespace moss::patch

// hooks.hpp: what every hook asks before doing anything cooperative.
//
// A hook is cooperative only when its family is enabled (MOSS_HOOK), the
// calling thread has a hub, the caller is a greenlet other than the hub's own,
// and it is not running inside a signal handler. Otherwise it calls the real
// function, unchanged.
//
// The C boundary: a hook never lets an exception out. C libraries cannot be
// unwound through safely (their locks and buffers), so an exception that ends
// a hooked wait is reported to the C code as an error return:
//   - kill (greenlet_exit), or any other exception delivered to the greenlet
//     (throw_in, a moss::error): -1/ECANCELED;
//   - a moss::timeout that expired: -1/ETIMEDOUT;
//   - loop_exit (nothing could ever wake the wait): -1/EDEADLK;
// (DNS calls: EAI_SYSTEM or NETDB_INTERNAL with that errno). ECANCELED rather
// than EINTR because libraries retry EINTR at once. Errors of the call itself
// (out of memory) give their own errno and nothing more.
//
// A kill or timeout stays pending: it is raised at the greenlet's next wait
// in C++ code, and a task whose function returns while one is pending ends
// with it (killed, or failed with timeout_error), whatever the C code did.
// Until then every hooked call that would wait fails at once with the same
// errno, and first lets the other greenlets run, so a C loop that retries
// cannot pin the hub; calls that need not wait (a read of ready data, close)
// still work, so the C code can clean up. A timeout's error is withdrawn when
// its scope ends, and hooked calls wait normally again. loop_exit concerns
// one wait only and is not kept.
#pragma once

#include "families.hpp"

#include <cerrno>
#include <exception>

namespace moss::patch {


// enabled_families is parsed from MOSS_HOOK when the library loads.
extern unsigned enabled_families;

// signal_depth counts signal handlers running on this thread (hook_signal.cpp).
extern thread_local int signal_depth;

// signals_caught() counts user signal handlers that have run (through the
// trampoline of hook_signal.cpp), so a wait can tell that one ran.
unsigned signals_caught() noexcept;

// in_greenlet() says whether the caller may wait on this thread's hub.
bool in_greenlet() noexcept;

inline bool cooperative(family f) noexcept {
  return (enabled_families & f) != 0 && signal_depth == 0 && in_greenlet();
}

// cancel_point is set by the preload's green pthreads once a green thread
// has been cancelled (null until then, and in linked mode).
// Hooked calls that POSIX makes cancellation points (read, write, recv, send,
// accept, connect, poll, select, epoll_wait, the sleeps) call it before they
// wait and again when the wait was interrupted; it acts upon a pending
// pthread_cancel by unwinding the calling green thread, and then does not
// return. So a cancelled green thread never sees the interrupted call fail.
extern void (*cancel_point)();
inline void at_cancel_point() {
  if (cancel_point != nullptr) [[unlikely]]
    cancel_point();
}

// interrupted() maps an exception that ended a hooked call to its errno,
// re-arms it if it is a kill or a timeout (see above), and lets the other
// greenlets run once. Must be called on the greenlet the call ran on.
int interrupted(std::exception_ptr e) noexcept;

// guarded() runs a moss::io call at the C boundary: an exception that ends
// it becomes -1 with errno (interrupted()). The call is a cancellation point
// for green pthreads.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  at_cancel_point();
  try {
    return f();
  } catch (...) {
    errno = interrupted(std::current_exception());
  }
  at_cancel_point();
  return -1;
}


}  // namespace moss::patch

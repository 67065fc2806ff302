// detail/interpose.hpp: the seam between libmoss and an interposition layer
// (moss's own is patch/: libmoss_patch.so, libmoss_preload.so, mossrun).
//
// An interposition layer sees libmoss through the public headers and this
// one header only, never through lib/'s internals: what a hooked libc call
// needs from the hub and the greenlet it runs on is here, as functions.
// Programs have no use for it and it promises no stability: it changes
// with the layer it serves. The names are exported from libmoss.so, under
// moss::interpose, because libmoss_patch.so links the shared library.
#pragma once

#include <moss/detail/export.hpp>
#include <moss/detail/greenlet_impl.hpp>

#include <cstddef>
#include <exception>

namespace moss::interpose {

// may_park() says whether the caller may wait on its thread's hub: the
// thread has a hub and the caller is a greenlet other than the hub's own.
MOSS_API bool may_park() noexcept;

// has_hub() says whether the calling thread has a hub now (made, not yet
// torn down). hub::current() makes one.
MOSS_API bool has_hub() noexcept;

// current_if_any() is the greenlet running on this thread, or null when the
// thread has never run moss code (or has torn it down); unlike
// detail::current_impl() it never makes the thread's state.
MOSS_API detail::greenlet_impl* current_if_any() noexcept;

// is_parked() says whether g is waiting on its hub (in a waiter), where
// detail::interrupt() ends its wait at once.
MOSS_API bool is_parked(const detail::greenlet_impl* g) noexcept;

// rearm() keeps e pending on the calling greenlet, to be raised at its next
// wait in C++ code ("re-raise this at the next wait"). Nothing pending: e
// is kept. A kill (greenlet_exit) replaces anything but another kill;
// anything else leaves what is pending in place. Must be called from a
// greenlet (may_park()).
MOSS_API void rearm(std::exception_ptr e) noexcept;

// is_kill() says whether e is a kill (moss::greenlet_exit), which rearm()
// lets replace anything else pending.
MOSS_API bool is_kill(const std::exception_ptr& e) noexcept;

// drop_pending() clears the calling greenlet's pending exception if match
// says it is the one; true if it did.
MOSS_API bool drop_pending(bool (*match)(const std::exception_ptr&) noexcept) noexcept;

// let_others_run() puts the calling greenlet at the back of the ready queue
// and switches away, with its pending exception set aside so the switch
// does not raise it; a kill that arrives meanwhile replaces what was set
// aside. Does nothing outside a greenlet that may park.
MOSS_API void let_others_run() noexcept;

// keep_tasks_at_exit() tells every hub to leave its unfinished tasks as
// they are when its thread exits (not kill and unwind them): for a layer
// that runs a whole program's threads as tasks, where exit() ends every
// thread at once, as POSIX says.
MOSS_API void keep_tasks_at_exit() noexcept;

// write_stderr() writes to fd 2 with the raw system call (never through a
// hooked write), retrying after EINTR and short writes.
MOSS_API void write_stderr(const char* s, std::size_t n) noexcept;

// check_setting() checks text as a value of the MOSS_* variable named
// (MOSS_STACK_SIZE, MOSS_THREADPOOL_SIZE, MOSS_MONITOR_MS,
// MOSS_DUMP_SIGNAL) with the parser the library itself uses; throws
// moss::error saying what is accepted, or for a name it does not know.
MOSS_API void check_setting(const char* variable, const char* text);

// check_dns_settings() reads the dns variables of the environment now, as
// the dns layer will (MOSS_RESOLVER and the rest); throws moss::error
// naming the variable it rejects.
MOSS_API void check_dns_settings();

}  // namespace moss::interpose

// hooks.hpp: what every hook asks before doing anything cooperative.
//
// A hook is cooperative only when its family is enabled (MOSS_HOOK), the
// calling thread has a hub, the caller is a greenlet other than the hub's own,
// and it is not running inside a signal handler. Otherwise it calls the real
// function, unchanged.
//
// The C boundary: a hook never lets an exception out. If the greenlet is
// killed, times out (moss::timeout) or gets loop_exit while blocked in a
// hooked call, the call returns -1 with errno ECANCELED, ETIMEDOUT or EDEADLK
// and the exception is re-armed, so it is raised at the greenlet's next wait in
// C++ code (C libraries cannot be unwound through safely).
#pragma once

#include <cerrno>
#include <exception>

namespace moss::patch {

enum family : unsigned {
  family_socket = 1u << 0,
  family_sleep = 1u << 1,
  family_dns = 1u << 2,
  family_poll = 1u << 3,
  family_all = family_socket | family_sleep | family_dns | family_poll,
};

// enabled_families is parsed from MOSS_HOOK when the library loads.
extern unsigned enabled_families;

// signal_depth counts signal handlers running on this thread (hook_signal.cpp).
extern thread_local int signal_depth;

// in_greenlet() says whether the caller may wait on this thread's hub.
bool in_greenlet() noexcept;

inline bool cooperative(family f) noexcept {
  return (enabled_families & f) != 0 && signal_depth == 0 && in_greenlet();
}

// interrupted() re-arms the exception a wait raised and returns the errno
// that reports it across the C boundary.
int interrupted(std::exception_ptr e) noexcept;

// parse_families() parses a MOSS_HOOK value; on error returns false and
// fills `bad` with the offending name.
bool parse_families(const char* text, unsigned* out, const char** bad, unsigned* bad_len) noexcept;

}  // namespace moss::patch

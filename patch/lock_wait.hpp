// lock_wait.hpp: waiting for a file lock on the hub.
//
// The kernel has no readiness for file locks, so a greenlet that must wait
// for one (flock without LOCK_NB, fcntl F_SETLKW or F_OFD_SETLKW, lockf
// F_LOCK) tries the non-blocking form of its call and, while another holder
// has the lock, sleeps on the hub and tries again: 1 ms, doubling, to 32 ms
// between tries. Doubling keeps the delay after a release below the time
// already waited (a short hold costs a millisecond or two, a wait is at most
// about twice the hold), and the cap bounds it for long holds at ~30 tries a
// second (one system call each). The wait is a cancellation point; a kill or
// timeout ends it with the errno of hooks.hpp.
#pragma once

#include "hooks.hpp"

#include <cerrno>

namespace moss::patch {

// lock_backoff() sleeps before the n-th retry (n from 0); returns 0, or the
// errno of an interrupted sleep.
int lock_backoff(unsigned n);

// wait_for_lock() calls try_lock() (a non-blocking attempt: 0, or -1 with
// errno) until it succeeds or fails with anything but a conflict (EAGAIN,
// EWOULDBLOCK, EACCES), sleeping between attempts.
template <class Try>
int wait_for_lock(Try try_lock) {
  at_cancel_point();
  for (unsigned n = 0;; ++n) {
    int r = try_lock();
    if (r != -1 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EACCES)) return r;
    if (int err = lock_backoff(n)) {
      errno = err;
      return -1;
    }
  }
}

}  // namespace moss::patch

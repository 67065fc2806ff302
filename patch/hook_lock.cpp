// hook_lock.cpp: flock and lockf waiting on the hub (lock_wait.hpp); fcntl's
// lock waits are in hook_fd.cpp, beside the rest of fcntl.
//
// flock and OFD locks belong to an open file description, so two green
// threads of one process that opened a file twice exclude each other: a
// real blocking call in one would wait forever for the other, which cannot
// run. lockf (POSIX record locks, per process) only ever waits for another
// process, but meanwhile the other green threads run.
// Meson builds with _FILE_OFFSET_BITS=64, which renames lockf to lockf64 in
// the headers; we define both names ourselves.
#undef _FILE_OFFSET_BITS

#include "lock_wait.hpp"
#include "real.hpp"

#include <moss/time.hpp>

#include <algorithm>
#include <chrono>
#include <exception>

#include <sys/file.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(flock, int (*)(int, int))
MOSS_REAL(lockf, int (*)(int, int, off_t))
MOSS_REAL(lockf64, int (*)(int, int, off64_t))

}  // namespace

int lock_backoff(unsigned n) {
  try {
    moss::sleep(std::chrono::milliseconds(1 << std::min(n, 5u)));  // 1, 2, 4, ... 32 ms
    return 0;
  } catch (...) {
    int err = interrupted(std::current_exception());
    at_cancel_point();
    return err;
  }
}

}  // namespace moss::patch

using namespace moss::patch;

extern "C" {

int flock(int fd, int op) {
  if (!cooperative(family_sleep) || (op & LOCK_NB) != 0 || op == LOCK_UN) return real_flock()(fd, op);
  return wait_for_lock([&] { return real_flock()(fd, op | LOCK_NB); });
}

int lockf(int fd, int cmd, off_t len) {
  if (!cooperative(family_sleep) || cmd != F_LOCK) return real_lockf()(fd, cmd, len);
  return wait_for_lock([&] { return real_lockf()(fd, F_TLOCK, len); });
}

int lockf64(int fd, int cmd, off64_t len) {
  if (!cooperative(family_sleep) || cmd != F_LOCK) return real_lockf64()(fd, cmd, len);
  return wait_for_lock([&] { return real_lockf64()(fd, F_TLOCK, len); });
}

}  // extern "C"

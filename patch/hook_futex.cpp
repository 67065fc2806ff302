// hook_futex.cpp: futex waits made through syscall(2) by green threads.
//
// libstdc++ waits on futexes with syscall(SYS_futex, ...) rather than
// through pthreads: std::atomic<T>::wait (and std::latch, std::barrier,
// std::counting_semaphore built on it) inline that call into the program, and
// __cxa_guard_acquire makes it when a second thread reaches a function-local
// static whose initializer is running. A real FUTEX_WAIT from a green thread
// would put the whole OS thread to sleep, with the thread that must wake it
// on it. So FUTEX_WAIT and FUTEX_WAIT_BITSET from a green thread check the
// word and park on the hub; FUTEX_WAKE wakes green waiters of the address
// first and passes what is left of the count to the kernel, for native
// waiters. Every other system call, and every call outside green threads,
// goes to the real syscall().
#include "green.hpp"
#include "hooks.hpp"
#include "real.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>

#include <linux/futex.h>
#include <sys/syscall.h>

namespace moss::patch {
namespace {

MOSS_REAL(syscall, long (*)(long, ...))

using namespace std::chrono;

// futex_wait() parks while *word == expected, until woken or the timeout
// (relative for FUTEX_WAIT, absolute on `clock` for FUTEX_WAIT_BITSET).
long futex_wait(const int* word, int expected, const timespec* t, bool absolute, clockid_t clock) {
  if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != expected) {
    errno = EAGAIN;
    return -1;
  }
  detail::time_point deadline = detail::no_deadline;
  if (t != nullptr) {
    if (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1'000'000'000) {
      errno = EINVAL;
      return -1;
    }
    if (absolute) deadline_from(clock, t, &deadline);
    else deadline = detail::deadline_after(seconds(t->tv_sec) + nanoseconds(t->tv_nsec));
  }
  detail::waiter w;
  waiters_at(word).push_back(w);
  bool woken = false;
  try {
    woken = park(w, deadline, "futex (std::atomic::wait, a static's initializer)", false);
  } catch (...) {
    forget_if_empty(word);
    errno = interrupted(std::current_exception());
    return -1;
  }
  forget_if_empty(word);
  if (woken) return 0;
  errno = ETIMEDOUT;
  return -1;
}

// futex_wake() wakes up to count waiters: green ones first, then the
// kernel's (args are the call's own, for the timeout/bitset slots).
long futex_wake(int* word, int op, int count, const long* args) {
  long woken = 0;
  while (woken < count && wake_one_at(word)) ++woken;
  if (woken < count) {
    long r = real_syscall()(SYS_futex, word, op, count - woken, args[3], args[4], args[5]);
    if (r > 0) woken += r;
  }
  return woken;
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  if (nr == SYS_futex && green_context()) {
    auto* word = reinterpret_cast<int*>(a[0]);
    int op = static_cast<int>(a[1]);
    int cmd = op & FUTEX_CMD_MASK;
    auto* t = reinterpret_cast<const timespec*>(a[3]);
    clockid_t clock = (op & FUTEX_CLOCK_REALTIME) != 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    switch (cmd) {
      case FUTEX_WAIT: return futex_wait(word, static_cast<int>(a[2]), t, false, clock);
      case FUTEX_WAIT_BITSET: return futex_wait(word, static_cast<int>(a[2]), t, true, clock);
      case FUTEX_WAKE:
      case FUTEX_WAKE_BITSET: return futex_wake(word, op, static_cast<int>(std::min<long>(a[2], INT_MAX)), a);
      default: break;
    }
  }
  return real_syscall()(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

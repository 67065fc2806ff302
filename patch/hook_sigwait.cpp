// hook_sigwait.cpp: waiting for signals from a green thread — sigwait,
// sigwaitinfo, sigtimedwait and pause.
//
// A green thread that waits for a signal must not block the OS thread the
// other green threads run on. sigwait and its siblings wait for signals the
// caller has blocked, which a signalfd reports: the green thread parks until
// it is readable. pause() returns once a handler has run; handlers run on the
// OS thread, usually while the hub sleeps in epoll, so pause() checks the
// count of handlers run (hooks.hpp) every 20 ms rather than being woken.
#include "green.hpp"
#include "hooks.hpp"
#include "real.hpp"

#include <moss/io.hpp>
#include <moss/time.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include <sys/signalfd.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(sigwait, int (*)(const sigset_t*, int*))
MOSS_REAL(sigwaitinfo, int (*)(const sigset_t*, siginfo_t*))
MOSS_REAL(sigtimedwait, int (*)(const sigset_t*, siginfo_t*, const timespec*))
MOSS_REAL(pause, int (*)())

// wait_signal() takes one signal of set; returns its number, or -1 with
// errno (EAGAIN when the timeout passed, ECANCELED when killed).
int wait_signal(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  if (set == nullptr) {
    errno = EFAULT;
    return -1;
  }
  if (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)) {
    errno = EINVAL;
    return -1;
  }
  // A pending cancellation acts before the signalfd exists: it leaves by
  // longjmp, past any clean-up below.
  at_cancel_point();
  int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return -1;
  auto deadline = timeout == nullptr ? moss::io::clock::time_point::max()
                                     : detail::deadline_after(std::chrono::seconds(timeout->tv_sec) +
                                                              std::chrono::nanoseconds(timeout->tv_nsec));
  int result = -1;
  int err = 0;
  try {
    for (;;) {
      signalfd_siginfo si;
      // moss::io, not the hooked read: the fd table knows the fd, and the
      // call is no cancellation point (one would leave with fd open).
      ssize_t n = moss::io::read(fd, &si, sizeof si);
      if (n == static_cast<ssize_t>(sizeof si)) {
        if (info != nullptr) {
          std::memset(info, 0, sizeof *info);
          info->si_signo = static_cast<int>(si.ssi_signo);
          info->si_code = si.ssi_code;
          info->si_errno = si.ssi_errno;
          info->si_pid = static_cast<pid_t>(si.ssi_pid);
          info->si_uid = static_cast<uid_t>(si.ssi_uid);
          info->si_status = si.ssi_status;
          info->si_value.sival_ptr = reinterpret_cast<void*>(si.ssi_ptr);
        }
        result = static_cast<int>(si.ssi_signo);
        break;
      }
      if (n < 0 && errno != EAGAIN) {
        err = errno;
        break;
      }
      if (moss::io::wait_readable(fd, deadline) != 0) {
        err = errno == ETIMEDOUT ? EAGAIN : errno;  // sigtimedwait's timeout is EAGAIN
        break;
      }
    }
  } catch (...) {
    err = interrupted(std::current_exception());
  }
  ::close(fd);
  if (result < 0) {
    at_cancel_point();
    errno = err;
  }
  return result;
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" {

int sigwait(const sigset_t* set, int* sig) {
  if (!green_context()) return real_sigwait()(set, sig);
  int r = wait_signal(set, nullptr, nullptr);
  if (r < 0) return errno;
  *sig = r;
  return 0;
}

int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  if (!green_context()) return real_sigwaitinfo()(set, info);
  return wait_signal(set, info, nullptr);
}

int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  if (!green_context()) return real_sigtimedwait()(set, info, timeout);
  return wait_signal(set, info, timeout);
}

int pause() {
  if (!green_context()) return real_pause()();
  unsigned seen = signals_caught();
  at_cancel_point();
  try {
    while (signals_caught() == seen) moss::sleep(std::chrono::milliseconds(20));
    errno = EINTR;
  } catch (...) {
    errno = interrupted(std::current_exception());
    at_cancel_point();
  }
  return -1;
}

}  // extern "C"

// hook_wait.cpp: waiting for a child process — waitpid, wait4, waitid.
//
// A greenlet that waits for one child must not block the OS thread the
// others run on: Python's subprocess, for one, reads a child's output in one
// thread while another waits for it, and the child never ends if the reader
// cannot run. So a wait for ONE child's exit (pid > 0, or waitid's P_PID and
// P_PIDFD) without WNOHANG parks the greenlet until a pidfd of the child
// polls readable (it does once the child has exited), then makes the real
// call with WNOHANG added, which reports what the blocking call would have.
//
// Everything else is the real call: any child or a process group (pid -1, 0,
// < -1; P_ALL, P_PGID: a pidfd names one process), waits that also report
// stops or continues (WUNTRACED, WSTOPPED, WCONTINUED: a pidfd does not
// signal those), WNOHANG itself, and a kernel or fd limit that refuses the
// pidfd (ENOSYS, EMFILE). The first WNOHANG call is made before the pidfd is
// opened, so a pid that is not (or no longer) a child of ours gets the real
// call's ECHILD at once, and the pidfd names that child (an unreaped child
// keeps its number; only a native thread reaping it in between could free
// it). A signal handler that runs meanwhile does not end the wait with EINTR
// (no hooked wait does); cancellation of a green pthread does, as in the
// real call.
//
// system() waits inside glibc, out of reach of the hooks above, so a
// greenlet's system() is ours: POSIX's steps as glibc takes them (SIGINT and
// SIGQUIT ignored while any shell of ours runs, SIGCHLD blocked, `/bin/sh -c
// -- command` spawned with the caller's mask and those two signals back to
// default), with the wait above. The mask is the OS thread's, so SIGCHLD is
// held back from every green thread on it until the shell ends. A kill,
// timeout or cancellation of the waiting greenlet kills the shell (SIGKILL)
// and reaps it, as glibc does on cancellation, before the cancellation is
// acted upon.
#include "hooks.hpp"
#include "real.hpp"

#include <moss/io.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <mutex>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(waitpid, pid_t (*)(pid_t, int*, int))
MOSS_REAL(wait4, pid_t (*)(pid_t, int*, int, rusage*))
MOSS_REAL(waitid, int (*)(idtype_t, id_t, siginfo_t*, int))
MOSS_REAL(system, int (*)(const char*))

// Options a pidfd can stand for: the wait reports exits only, and waits.
bool exit_wait(int options) noexcept { return (options & (WNOHANG | WUNTRACED | WCONTINUED)) == 0; }

// park_until_readable() returns 0 once fd is readable, -1 if the hub cannot
// watch it (the caller then blocks for real), or the errno of an interrupted
// wait (hooks.hpp). A cancellation is acted upon by the caller, once it has
// let go of what it holds: a green thread's C cleanup handlers are reached
// by longjmp, past our destructors.
int park_until_readable(int fd) {
  try {
    return moss::io::wait_readable(fd) == 0 ? 0 : -1;
  } catch (...) {
    return interrupted(std::current_exception());
  }
}

// wait_on_hub() waits for one child: call(extra, &ready) makes the real call
// with `extra` added to its options and returns what it returned, setting
// ready false when a WNOHANG call found nothing to report yet. pidfd is the
// caller's (P_PIDFD) or -1: one is opened for pid. With cancel_point, a
// pending cancellation is acted upon before and after the wait.
template <class Call>
long wait_on_hub(pid_t pid, int pidfd, bool cancel_point, Call call) {
  if (cancel_point) at_cancel_point();
  bool ready = true;
  long r = call(WNOHANG, &ready);
  if (ready) return r;  // exited already, or the real call's error
  int fd = pidfd >= 0 ? pidfd : static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return call(0, &ready);  // ENOSYS, EMFILE; ESRCH (reaped meanwhile: ECHILD)
  int err = park_until_readable(fd);
  if (pidfd < 0) ::close(fd);  // through the hook: the fd table forgets it
  if (err > 0) {
    if (cancel_point) at_cancel_point();
    errno = err;
    return -1;
  }
  if (err == 0) {
    r = call(WNOHANG, &ready);
    if (ready) return r;
  }
  // Readable yet nothing to report (or not watchable): block rather than spin.
  return call(0, &ready);
}

// shell_signals: SIGINT and SIGQUIT ignored while any shell started by
// system() runs (counted, so the last one restores them), SIGCHLD blocked
// on this OS thread for the caller's while.
class shell_signals {
 public:
  shell_signals() {
    std::lock_guard<std::mutex> hold(lock_);
    if (shells_++ == 0) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      sigaction(SIGINT, &ignore, &saved_int_);
      sigaction(SIGQUIT, &ignore, &saved_quit_);
    }
    sigemptyset(&default_);
    if (saved_int_.sa_handler != SIG_IGN) sigaddset(&default_, SIGINT);
    if (saved_quit_.sa_handler != SIG_IGN) sigaddset(&default_, SIGQUIT);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &mask_);
  }
  ~shell_signals() {
    pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
    std::lock_guard<std::mutex> hold(lock_);
    if (--shells_ == 0) {
      sigaction(SIGINT, &saved_int_, nullptr);
      sigaction(SIGQUIT, &saved_quit_, nullptr);
    }
  }
  shell_signals(const shell_signals&) = delete;
  shell_signals& operator=(const shell_signals&) = delete;
  const sigset_t& caller_mask() const noexcept { return mask_; }
  const sigset_t& to_default() const noexcept { return default_; }

 private:
  static inline std::mutex lock_;
  static inline int shells_ = 0;
  static inline struct sigaction saved_int_ {}, saved_quit_ {};
  sigset_t mask_, default_;
};

// run_shell() is system() for a greenlet; it never acts upon a cancellation
// itself (its caller does, once the shell is gone and the signals restored).
int run_shell(const char* command) {
  shell_signals signals;
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &signals.caller_mask());
  posix_spawnattr_setsigdefault(&attr, &signals.to_default());
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const char* argv[] = {"sh", "-c", "--", command, nullptr};
  pid_t pid = -1;
  int err = posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char* const*>(argv), environ);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    errno = err;
    return W_EXITCODE(127, 0);  // POSIX: as if the shell had run _exit(127)
  }
  int status = 0;
  pid_t r;
  auto wait_shell = [&](int extra, bool* ready) {
    pid_t got = real_waitpid()(pid, &status, extra);
    *ready = got != 0;
    return got;
  };
  while ((r = static_cast<pid_t>(wait_on_hub(pid, -1, false, wait_shell))) < 0 && errno == EINTR) {
  }
  if (r == pid) return status;
  if (errno != ECHILD) {  // the wait was killed, timed out or cancelled: so is the shell
    err = errno;
    ::kill(pid, SIGKILL);
    while (real_waitpid()(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    errno = err;
  }
  return -1;
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" {

pid_t waitpid(pid_t pid, int* status, int options) {
  if (!cooperative(family_poll) || pid <= 0 || !exit_wait(options)) return real_waitpid()(pid, status, options);
  return static_cast<pid_t>(wait_on_hub(pid, -1, true, [&](int extra, bool* ready) {
    pid_t r = real_waitpid()(pid, status, options | extra);
    *ready = r != 0;
    return r;
  }));
}

pid_t wait4(pid_t pid, int* status, int options, rusage* usage) {
  if (!cooperative(family_poll) || pid <= 0 || !exit_wait(options)) return real_wait4()(pid, status, options, usage);
  return static_cast<pid_t>(wait_on_hub(pid, -1, true, [&](int extra, bool* ready) {
    pid_t r = real_wait4()(pid, status, options | extra, usage);
    *ready = r != 0;
    return r;
  }));
}

// waitid: P_PID and P_PIDFD (on a blocking pidfd: a non-blocking one makes
// the real call return EAGAIN at once). The user's info may be null, as
// Linux allows, but telling "nothing yet" from an exit needs si_pid: the
// WNOHANG calls fill a siginfo of ours.
int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
  bool one = (type == P_PID && static_cast<pid_t>(id) > 0) || type == P_PIDFD;
  if (!cooperative(family_poll) || !one || (options & (WNOHANG | WSTOPPED | WCONTINUED)) != 0 ||
      (options & WEXITED) == 0)
    return real_waitid()(type, id, info, options);
  int pidfd = -1;
  if (type == P_PIDFD) {
    pidfd = static_cast<int>(id);
    int fl = ::fcntl(pidfd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK) != 0) return real_waitid()(type, id, info, options);  // EBADF, EAGAIN
  }
  return static_cast<int>(wait_on_hub(static_cast<pid_t>(id), pidfd, true, [&](int extra, bool* ready) {
    siginfo_t got;
    std::memset(&got, 0, sizeof got);
    int r = real_waitid()(type, id, &got, options | extra);
    *ready = r != 0 || (extra & WNOHANG) == 0 || got.si_pid != 0;
    if (r == 0 && *ready && info != nullptr) *info = got;
    return r;
  }));
}

int system(const char* command) {
  // system(NULL) asks whether a shell exists: glibc runs one, briefly.
  if (!cooperative(family_poll) || command == nullptr) return real_system()(command);
  at_cancel_point();
  int r = run_shell(command);
  if (r == -1) {
    int err = errno;
    at_cancel_point();
    errno = err;
  }
  return r;
}

}  // extern "C"

// dump.cpp: MOSS_DUMP_SIGNAL (see dump.hpp).
#include "debug/dump.hpp"

#include "debug/backtrace.hpp"
#include "core/config.hpp"
#include "thread/native_thread.hpp"
#include "core/parse_count.hpp"
#include "core/sys.hpp"

#include <moss/error.hpp>
#include <moss/run_info.hpp>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace moss::detail {

namespace {

// The handler writes [1], the dump thread reads [0]. Atomic: a forked child
// swaps in a pipe of its own (dump_after_fork).
std::atomic<int> pipe_in{-1}, pipe_out{-1};

bool refused(int sig) noexcept {
  switch (sig) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGABRT:
    case SIGSYS:
      return true;
    default:
      return sig == backtrace_signal();
  }
}

void on_dump_signal(int) noexcept {
  int saved = errno;
  char byte = 0;
  sys::write(pipe_out.load(std::memory_order_relaxed), &byte, 1);  // full: a dump is pending anyway
  errno = saved;
}

[[noreturn]] void dump_thread() {
  for (;;) {
    char buf[64];
    long n = sys::read(pipe_in.load(std::memory_order_relaxed), buf, sizeof buf);  // all pending: one dump
    if (n < 0 && errno != EINTR) {
      timespec pause{1, 0};
      sys::call(SYS_nanosleep, sys::ptr_arg(&pause), 0);
    }
    if (n > 0) {
      try {
        dump_greenlets(STDERR_FILENO);
      } catch (...) {  // out of memory: nothing to print with
        static const char msg[] = "moss: MOSS_DUMP_SIGNAL: the dump failed (out of memory?)\n";
        sys::write_stderr(msg, sizeof msg - 1);
      }
    }
  }
}

// open_pipe_and_thread() makes the self-pipe and starts the dump thread;
// fail(what) reports a failure.
template <class F>
bool open_pipe_and_thread(F fail) noexcept {
  int fds[2];
  if (sys::call(SYS_pipe2, sys::ptr_arg(fds), O_CLOEXEC | O_NONBLOCK) != 0) {
    fail("cannot make a pipe");
    return false;
  }
  sys::call(SYS_fcntl, fds[0], F_SETFL, 0);  // the dump thread sleeps in read()
  pipe_in.store(fds[0], std::memory_order_relaxed);
  pipe_out.store(fds[1], std::memory_order_relaxed);
  sigset_t all_signals, old;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &old);
  int r = start_native_thread([](void*) { dump_thread(); }, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) {
    errno = r;
    fail("cannot start the dump thread");
    return false;
  }
  return true;
}

}  // namespace

void dump_after_fork() noexcept {
  int old_in = pipe_in.load(std::memory_order_relaxed), old_out = pipe_out.load(std::memory_order_relaxed);
  if (old_out < 0) return;  // no dump signal
  auto fail = [](const char* what) {
    std::string line = std::string("moss: MOSS_DUMP_SIGNAL: in a forked child, ") + what + " (" + std::strerror(errno) +
                       "); no dump on that signal here\n";
    sys::write_stderr(line.data(), line.size());
  };
  // The parent's pipe would make the parent's dump thread answer the child's
  // signal: the child gets a pipe and a dump thread of its own.
  if (!open_pipe_and_thread(fail)) pipe_out.store(-1, std::memory_order_relaxed);
  sys::close(old_in);
  sys::close(old_out);
}

int parse_dump_signal(const char* text) {
  long number = 0;
  int sig = 0;
  if (parse_count(text, 1, SIGRTMAX, &number)) {
    sig = static_cast<int>(number);
  } else {
    std::string name;
    for (const char* p = text; *p != '\0'; ++p) name += static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
    if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
    for (int s = 1; s < SIGRTMIN && sig == 0; ++s)
      if (const char* abbrev = sigabbrev_np(s); abbrev != nullptr && name == abbrev) sig = s;
  }
  if (sig == 0 || refused(sig))
    throw moss::error(std::string("moss: MOSS_DUMP_SIGNAL=\"") + text +
                      "\" is not valid; use a signal name such as SIGUSR1 or USR2, or a number from 1 to " +
                      std::to_string(SIGRTMAX) + ", other than SIGKILL, SIGSTOP, a fault signal or " +
                      std::to_string(backtrace_signal()) + " (SIGRTMAX-2, which the monitor uses)");
  return sig;
}

void dump_signal_start() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* text = env_value("MOSS_DUMP_SIGNAL");
    if (text == nullptr) return;
    int sig = 0;
    try {
      sig = parse_dump_signal(text);
    } catch (const moss::error& e) {
      bad_environment(e);  // exits
    }
    auto fail = [&](const char* what) {
      std::string line = std::string("moss: MOSS_DUMP_SIGNAL=") + text + ": " + what + " (" + std::strerror(errno) +
                         "); no dump on that signal\n";
      sys::write_stderr(line.data(), line.size());
    };
    if (!open_pipe_and_thread(fail)) return;
    struct sigaction act {};
    act.sa_handler = &on_dump_signal;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART | SA_ONSTACK;
    if (::sigaction(sig, &act, nullptr) != 0) fail("sigaction");
  });
}

}  // namespace moss::detail

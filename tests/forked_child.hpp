// forked_child.hpp: run a scenario in a forked child and collect how it
// ended and its stderr. For tests of fork itself (fork_test), of faults a
// child provokes on purpose (fault_test), and of settings read once per
// process (MOSS_MONITOR_MS, MOSS_DUMP_SIGNAL): the child sets its variable
// first, and the test process itself never makes a hub.
#pragma once

#include <moss/moss.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moss_test {

struct child_result {
  int status = -1;         // exit code, or -1 if it did not exit normally
  int signal = 0;          // the signal that ended it, if one did
  bool timed_out = false;  // killed for running past the limit
  std::string err;         // what it wrote on stderr
};

// describe() says how the child ended, then its stderr.
inline std::string describe(const child_result& r) {
  std::string s;
  if (r.timed_out) s = "timed out (killed)";
  else if (r.status >= 0) s = "exited with " + std::to_string(r.status);
  else s = "killed by signal " + std::to_string(r.signal) + " (" + strsignal(r.signal) + ")";
  return s + "; stderr:\n" + r.err;
}

// in_child_process() runs body in a forked child; body's return value is
// the child's exit code (101, with a "harness: ..." line on stderr, if it
// throws). The child is killed after `limit`.
inline child_result in_child_process(const std::function<int()>& body,
                                     std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    int code = 100;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::string line = std::string("harness: ") + e.what() + "\n";
      [[maybe_unused]] auto n = write(STDERR_FILENO, line.data(), line.size());
      code = 101;
    }
    _exit(code);
  }
  close(err[1]);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  child_result r;
  auto drain = [&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(err[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  };
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    drain();
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(2000);
  }
  drain();
  close(err[0]);
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// run_in_child() runs body as moss::run's main in a child process with
// variable=value in its environment (removed when value is null). The exit
// code is 0 when body returns, 3 on a moss::error (printed as "error: ...").
inline child_result run_in_child(const char* variable, const char* value, const std::function<void()>& body) {
  return in_child_process([&] {
    if (value != nullptr) setenv(variable, value, 1);
    else unsetenv(variable);
    try {
      moss::run(body);
    } catch (const moss::error& e) {
      std::string line = std::string("error: ") + e.what() + "\n";
      [[maybe_unused]] auto n = write(STDERR_FILENO, line.data(), line.size());
      return 3;
    }
    return 0;
  });
}

}  // namespace moss_test

// forked_child.hpp: run a scenario in a forked child and collect its exit
// code and stderr. For tests of settings read once per process
// (MOSS_MONITOR_MS, MOSS_DUMP_SIGNAL): the child sets its variable first,
// and the test process itself never makes a hub.
#pragma once

#include <moss/moss.hpp>

#include <functional>
#include <string>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moss_test {

struct child_result {
  int status = -1;  // exit code, or -1 if it did not exit normally
  std::string err;  // what it wrote on stderr
};

// run_in_child() runs body as moss::run's main in a child process with
// variable=value in its environment (removed when value is null). The exit
// code is 0 when body returns, 3 on a moss::error (printed as "error: ...").
inline child_result run_in_child(const char* variable, const char* value, const std::function<void()>& body) {
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    if (value != nullptr) setenv(variable, value, 1);
    else unsetenv(variable);
    int code = 0;
    try {
      moss::run(body);
    } catch (const moss::error& e) {
      std::string line = std::string("error: ") + e.what() + "\n";
      [[maybe_unused]] auto n = write(STDERR_FILENO, line.data(), line.size());
      code = 3;
    }
    _exit(code);
  }
  close(err[1]);
  child_result r;
  char buf[4096];
  ssize_t n;
  while ((n = read(err[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.status = WEXITSTATUS(status);
  return r;
}

}  // namespace moss_test

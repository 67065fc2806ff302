// sample_process.hpp: what the sample tests share: starting a built sample
// as a child process (its stdout and stderr on pipes), reading its lines
// with a deadline, stopping it, and small blocking loopback socket helpers.
// Everything here is plain blocking libc: the test process is not patched.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sample_test {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

// child: a running sample. Destroying it kills (SIGKILL) and reaps it if it
// is still running, and closes the pipes.
class child {
 public:
  explicit child(std::vector<std::string> args) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // line() returns the next line of stdout (without '\n'), or nothing if
  // none came within timeout or the output ended.
  std::optional<std::string> line(std::chrono::milliseconds timeout = 5000ms) { return line_of(out_, out_buf_, timeout); }
  std::optional<std::string> err_line(std::chrono::milliseconds timeout = 5000ms) {
    return line_of(err_, err_buf_, timeout);
  }
  // rest() reads a stream to its end (the child must be exiting).
  std::string rest_of_stdout(std::chrono::milliseconds timeout = 10000ms) { return rest_of(out_, out_buf_, timeout); }
  std::string rest_of_stderr(std::chrono::milliseconds timeout = 10000ms) { return rest_of(err_, err_buf_, timeout); }

  // exit_code() waits up to timeout for the child to exit: its exit code,
  // -1 if a signal ended it, or nothing if it is still running.
  std::optional<int> exit_code(std::chrono::milliseconds timeout = 10000ms) {
    auto deadline = clk::now() + timeout;
    while (!status_) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        break;
      }
      if (clk::now() >= deadline) break;
      std::this_thread::sleep_for(5ms);
    }
    return status_;
  }

 private:
  static bool fill(int fd, std::string& buf, clk::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now()).count();
    if (left < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[4096];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  static std::optional<std::string> line_of(int fd, std::string& buf, std::chrono::milliseconds timeout) {
    auto deadline = clk::now() + timeout;
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      if (!fill(fd, buf, deadline)) return std::nullopt;
    }
  }
  static std::string rest_of(int fd, std::string& buf, std::chrono::milliseconds timeout) {
    auto deadline = clk::now() + timeout;
    while (fill(fd, buf, deadline)) {
    }
    return std::exchange(buf, std::string());
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string out_buf_, err_buf_;
  std::optional<int> status_;
};

// run() runs a sample to completion: exit code and stdout + stderr.
struct result {
  int status = -1;
  std::string out;
  std::string err;
};
inline result run(std::vector<std::string> args, std::chrono::milliseconds timeout = 20000ms) {
  child c(std::move(args));
  result r;
  r.out = c.rest_of_stdout(timeout);
  r.err = c.rest_of_stderr(timeout);
  r.status = c.exit_code(timeout).value_or(-2);
  return r;
}

// port_in() finds the number after the last ':' in a line such as
// "moss-echo: listening on 127.0.0.1:4242 (1 worker)".
inline int port_in(const std::string& line) {
  auto pos = line.find("127.0.0.1:");
  if (pos == std::string::npos) return -1;
  return std::atoi(line.c_str() + pos + std::strlen("127.0.0.1:"));
}

// set_timeouts() bounds every blocking call on fd, so a broken sample makes
// a test fail rather than hang.
inline void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// connect_to() connects to 127.0.0.1:port; -1 on failure.
inline int connect_to(int port, std::chrono::milliseconds io_timeout = 10000ms) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  set_timeouts(fd, io_timeout);
  return fd;
}

// listen_any() opens a loopback listener on a free port; sets *port.
inline int listen_any(int* port, int backlog = 128) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// free_port() is a port nothing listens on (bound then closed; nobody else
// on a test machine takes it within the test's lifetime in practice, and a
// test relying on it checks the port is refused first).
inline int free_port() {
  int port = 0;
  int fd = listen_any(&port);
  ::close(fd);
  return port;
}

inline bool send_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// recv_n() reads until it has n bytes, EOF, an error or the fd's timeout.
inline std::string recv_n(int fd, std::size_t n) {
  std::string s;
  char buf[16384];
  while (s.size() < n) {
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - s.size()), 0);
    if (r <= 0) break;
    s.append(buf, static_cast<std::size_t>(r));
  }
  return s;
}

// recv_to_eof() reads until EOF; false if an error or timeout came first.
inline bool recv_to_eof(int fd, std::string* out) {
  char buf[16384];
  for (;;) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0) return true;
    if (r < 0) return false;
    out->append(buf, static_cast<std::size_t>(r));
  }
}

}  // namespace sample_test

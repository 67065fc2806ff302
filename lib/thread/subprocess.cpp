// subprocess.cpp: a child started by posix_spawnp, its pipes read and
// written through moss::io, its exit waited on through a pidfd.
//
// Invariants: a subprocess with pid_ >= 0 and no status_ owns pidfd_ and an
// unreaped child; once status_ is set the child is reaped and pidfd_ closed.
// The kernel is called raw (lib/core/sys.hpp) for pidfd_open, pidfd_send_signal
// and waitid, and fds are closed through moss::io::close, so a linked patch
// layer never sees lib/'s calls.
#include <moss/subprocess.hpp>

#include <moss/error.hpp>
#include <moss/io.hpp>

#include "core/sys.hpp"

#include <cerrno>
#include <string_view>
#include <vector>
#include <csignal>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char** environ;

namespace moss {

namespace {

#ifndef P_PIDFD
constexpr int P_PIDFD = 3;
#endif

namespace sys = detail::sys;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

int pidfd_open(pid_t pid) noexcept { return static_cast<int>(sys::call(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(sys::call(SYS_pidfd_send_signal, pidfd, sig, 0, 0));
}

// reap() collects the child's exit if it has exited (or waits for it when
// block): the status, or nullopt; -1 in *err on failure.
std::optional<int> reap(idtype_t type, int id, bool block, int* err) noexcept {
  for (;;) {
    siginfo_t info{};
    long rc = sys::call(SYS_waitid, type, id, sys::ptr_arg(&info), WEXITED | (block ? 0 : WNOHANG), 0);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      *err = errno;
      return std::nullopt;
    }
    *err = 0;
    if (info.si_pid == 0) return std::nullopt;
    return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
  }
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) io::close(fd);
  fd = -1;
}

// fds closes what it holds unless released: the spawn's error paths.
struct fds {
  int v[6] = {-1, -1, -1, -1, -1, -1};
  ~fds() {
    for (int& f : v) close_fd(f);
  }
};

// spawn_attrs owns posix_spawn's two attribute objects.
struct spawn_attrs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_attrs() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_attrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};


bool is_directory(const std::string& path) {
  struct stat st{};
  if (sys::call(SYS_newfstatat, AT_FDCWD, sys::ptr_arg(path.c_str()), sys::ptr_arg(&st), 0) < 0) return false;
  if (S_ISDIR(st.st_mode)) return true;
  errno = ENOTDIR;
  return false;
}

// entry_name() is the NAME of "NAME=value" (all of it without '=').
std::string_view entry_name(std::string_view e) { return e.substr(0, e.find('=')); }

// child_environment() is the parent's environment or opts.env, with
// opts.env_set applied. Throws moss::error for an entry without a name.
std::vector<std::string> child_environment(const process_options& opts) {
  std::vector<std::string> env;
  if (opts.env) {
    for (const std::string& e : *opts.env) {
      if (e.find('=') == std::string::npos || entry_name(e).empty())
        throw moss::error("moss::spawn_process: environment entry \"" + e + "\" is not NAME=value");
      env.push_back(e);
    }
  } else {
    for (char** p = environ; p != nullptr && *p != nullptr; ++p) env.emplace_back(*p);
  }
  for (const std::string& e : opts.env_set) {
    std::string_view name = entry_name(e);
    if (name.empty()) throw moss::error("moss::spawn_process: env_set entry \"" + e + "\" has no NAME");
    std::erase_if(env, [&](const std::string& have) { return entry_name(have) == name; });
    if (name.size() < e.size()) env.push_back(e);
  }
  return env;
}

}  // namespace

subprocess::subprocess(subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::exchange(o.pidfd_, -1)),
      in_(std::exchange(o.in_, -1)),
      out_(std::exchange(o.out_, -1)),
      err_(std::exchange(o.err_, -1)),
      status_(std::exchange(o.status_, std::nullopt)) {}

subprocess& subprocess::operator=(subprocess&& o) noexcept {
  if (this != &o) {
    release();
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::exchange(o.pidfd_, -1);
    in_ = std::exchange(o.in_, -1);
    out_ = std::exchange(o.out_, -1);
    err_ = std::exchange(o.err_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
  }
  return *this;
}

subprocess::~subprocess() { release(); }

void subprocess::release() noexcept {
  kill_and_reap();
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
}

void subprocess::kill_and_reap() noexcept {
  if (pidfd_ < 0) return;
  if (!status_) {
    pidfd_send_signal(pidfd_, SIGKILL);
    int err = 0;
    status_ = reap(static_cast<idtype_t>(P_PIDFD), pidfd_, true, &err);
  }
  close_fd(pidfd_);
}

void subprocess::write_stdin(std::string_view data) {
  if (in_ < 0) fail(EBADF, "moss::subprocess::write_stdin: stdin is not a pipe (or was closed)");
  while (!data.empty()) {
    ssize_t n = io::send(in_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, "moss::subprocess::write_stdin: writing to process " + std::to_string(pid_));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void subprocess::close_stdin() noexcept { close_fd(in_); }

std::string subprocess::read_some(int fd, std::size_t max, const char* what) {
  if (fd < 0) fail(EBADF, std::string("moss::subprocess::") + what + ": not a pipe");
  std::string buf(max, '\0');
  for (;;) {
    ssize_t n = io::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, std::string("moss::subprocess::") + what + ": reading from process " + std::to_string(pid_));
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
}

std::string subprocess::read_all(int fd, const char* what) {
  std::string all;
  for (;;) {
    std::string part = read_some(fd, 65536, what);
    if (part.empty()) return all;
    all += part;
  }
}

std::string subprocess::read_stdout(std::size_t max) { return read_some(out_, max, "read_stdout"); }
std::string subprocess::read_stderr(std::size_t max) { return read_some(err_, max, "read_stderr"); }
std::string subprocess::read_all_stdout() { return read_all(out_, "read_all_stdout"); }
std::string subprocess::read_all_stderr() { return read_all(err_, "read_all_stderr"); }

std::optional<int> subprocess::poll() {
  if (status_ || pidfd_ < 0) return status_;
  int err = 0;
  status_ = reap(static_cast<idtype_t>(P_PIDFD), pidfd_, false, &err);
  if (err != 0) fail(err, "moss::subprocess: waitid on process " + std::to_string(pid_));
  if (status_) close_fd(pidfd_);
  return status_;
}

std::optional<int> subprocess::wait(clock::time_point deadline) {
  if (status_) return status_;
  if (pidfd_ < 0) throw moss::error("moss::subprocess::wait: no process (empty or moved from)");
  try {
    for (;;) {
      if (auto s = poll()) return s;
      if (io::wait_readable(pidfd_, deadline) < 0) {
        if (errno == ETIMEDOUT) return poll();
        if (errno != EINTR) fail(errno, "moss::subprocess::wait: process " + std::to_string(pid_));
      }
    }
  } catch (...) {
    // Killed or timed out while waiting: the child goes with the waiter.
    kill_and_reap();
    throw;
  }
}

int subprocess::wait() { return *wait(detail::no_deadline); }

void subprocess::kill(int sig) {
  if (status_ || pidfd_ < 0) return;
  if (pidfd_send_signal(pidfd_, sig) < 0 && errno != ESRCH)
    fail(errno, "moss::subprocess::kill: process " + std::to_string(pid_));
}

subprocess spawn_process(const std::vector<std::string>& argv, const process_options& opts) {
  if (argv.empty()) throw moss::error("moss::spawn_process: argv is empty (it needs at least the program)");
  const std::string& prog = argv[0];
  fds f;  // parent's ends 0..2, child's ends 3..5, for stdin, stdout, stderr
  spawn_attrs sa;
  const stdio how[3] = {opts.in, opts.out, opts.err};
  for (int i = 0; i < 3; ++i) {
    switch (how[i]) {
      case stdio::inherit: break;
      case stdio::devnull:
        posix_spawn_file_actions_addopen(&sa.actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        break;
      case stdio::pipe: {
        int p[2];
        // stdin is a socket so that write_stdin can use MSG_NOSIGNAL: a
        // child that exits early must not kill the parent with SIGPIPE.
        int rc = i == 0 ? sys::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) : sys::pipe2(p, O_CLOEXEC);
        if (rc < 0) fail(errno, "moss::spawn_process: making a pipe for \"" + prog + "\"");
        // Parent p[0], child p[1]: for stdout and stderr the child writes
        // into p[1]; a socket pair's ends are alike.
        f.v[i] = p[0];
        f.v[3 + i] = p[1];
        // dup2 clears close-on-exec on the child's copy.
        posix_spawn_file_actions_adddup2(&sa.actions, f.v[3 + i], i);
        break;
      }
    }
  }
  // The child starts with no signal blocked and SIGPIPE at its default,
  // whatever the hub's thread blocks or the parent ignores.
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setsigdefault(&sa.attr, &def);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  if (!opts.cwd.empty()) {
    // Checked here so that a bad directory is named as such, not as a
    // program that cannot run.
    if (sys::call(SYS_faccessat, AT_FDCWD, sys::ptr_arg(opts.cwd.c_str()), X_OK) < 0 || !is_directory(opts.cwd))
      fail(errno,
           "moss::spawn_process: working directory \"" + opts.cwd + "\" for \"" + prog + "\"");
    posix_spawn_file_actions_addchdir_np(&sa.actions, opts.cwd.c_str());
  }
  std::vector<std::string> env_entries = child_environment(opts);
  std::vector<char*> envp;
  envp.reserve(env_entries.size() + 1);
  for (const std::string& e : env_entries) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, prog.c_str(), &sa.actions, &sa.attr, args.data(), envp.data());
  if (rc != 0) fail(rc, "moss::spawn_process: cannot run \"" + prog + "\"");
  for (int i = 3; i < 6; ++i) close_fd(f.v[i]);

  subprocess p;
  p.pid_ = pid;
  p.pidfd_ = pidfd_open(pid);
  if (p.pidfd_ < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    int err = 0;
    reap(P_PID, pid, true, &err);
    p.pid_ = -1;
    fail(e, "moss::spawn_process: pidfd_open (moss needs Linux 5.3 or later) for \"" + prog + "\"");
  }
  sys::fcntl(p.pidfd_, F_SETFD, FD_CLOEXEC);
  p.in_ = std::exchange(f.v[0], -1);
  p.out_ = std::exchange(f.v[1], -1);
  p.err_ = std::exchange(f.v[2], -1);
  return p;
}

process_result run_process(const std::vector<std::string>& argv, process_options opts) {
  if (opts.in == stdio::pipe) opts.in = stdio::devnull;
  opts.out = opts.err = stdio::pipe;
  subprocess p = spawn_process(argv, opts);
  process_result r{0, {}, {}};
  std::string* into[2] = {&r.out, &r.err};
  int fd[2] = {p.stdout_fd(), p.stderr_fd()};
  bool open[2] = {true, true};
  std::string buf(65536, '\0');
  while (open[0] || open[1]) {
    pollfd pf[2];
    nfds_t n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i)
      if (open[i]) {
        pf[n] = {fd[i], POLLIN, 0};
        which[n++] = i;
      }
    if (io::poll(pf, n, -1) < 0) {
      if (errno == EINTR) continue;
      fail(errno, "moss::run_process: poll");
    }
    for (nfds_t k = 0; k < n; ++k) {
      if (pf[k].revents == 0) continue;
      int i = which[k];
      ssize_t got = io::read(fd[i], buf.data(), buf.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail(errno, "moss::run_process: reading from \"" + argv[0] + "\"");
      if (got == 0) open[i] = false;
      else into[i]->append(buf.data(), static_cast<std::size_t>(got));
    }
  }
  r.status = p.wait();
  return r;
}

}  // namespace moss

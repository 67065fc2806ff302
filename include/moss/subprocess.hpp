/// @file
/// subprocess.hpp: child processes whose pipes and exit are waited on by the
/// hub (gevent.subprocess, asyncio.create_subprocess_exec).
///
///   moss::subprocess p = moss::spawn_process({"grep", "-c", "x"},
///                                            {.in = moss::stdio::pipe, .out = moss::stdio::pipe});
///   p.write_stdin("x\ny\nx\n");                    // other greenlets run meanwhile
///   p.close_stdin();
///   std::string count = p.read_all_stdout();       // "2\n"
///   int status = p.wait();                         // 0; the hub keeps running
///
///   auto r = moss::run_process({"uname", "-r"});   // subprocess.run(capture_output=True)
///   if (r.status == 0) use(r.out);
///
/// The child is started with posix_spawnp (a vfork-style clone: the hub's
/// thread is never forked), found on PATH when argv[0] has no '/'. The
/// parent's ends of the pipes are close-on-exec, so no other child inherits
/// them. Reads and writes go through moss::io, and the exit is waited on
/// through a pidfd (Linux >= 5.3) registered with the hub, so a greenlet
/// waiting on a child parks and the others run.
///
/// An exit status is the child's exit code (0..255), or minus the number of
/// the signal that killed it (-9 for SIGKILL), as Python's returncode.
///
/// Cleanup: if the greenlet in wait() is killed or its moss::timeout expires,
/// the child is killed with SIGKILL and reaped before the exception goes on.
/// A subprocess destroyed while its child has not been reaped kills it with
/// SIGKILL and reaps it too: no zombie and no orphan is left behind. Call
/// wait() first to let a child finish.
///
/// A program that cannot be run (not found, not executable) makes
/// spawn_process throw std::system_error with that errno (ENOENT, EACCES...)
/// and a message naming the program.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace moss {

/// stdio says what one of the child's standard streams is connected to.
enum class stdio {
  inherit,  // the parent's fd of the same number
  pipe,     // a pipe to this subprocess object (stdin: a socket, see write_stdin)
  devnull,  // /dev/null
};

/// process_options: what the child's stdin, stdout and stderr are.
struct process_options {
  ///@{
  /// The child's stdin, stdout and stderr.
  stdio in = stdio::inherit;
  stdio out = stdio::inherit;
  stdio err = stdio::inherit;
  /// cwd: the child's working directory; empty: the parent's. It must be an
  /// existing directory (else std::system_error naming it).
  std::string cwd{};
  /// env: the child's whole environment as "NAME=value" entries, replacing
  /// the parent's; std::nullopt: a copy of the parent's (asyncio's env=).
  std::optional<std::vector<std::string>> env{};
  /// env_set: "NAME=value" entries set on top of that environment, each
  /// replacing an entry of the same NAME; "NAME" alone (no '=') removes it.
  std::vector<std::string> env_set{};
};

class subprocess;
/// spawn_process() starts argv[0] with arguments argv (argv must not be
/// empty), in the environment and working directory opts gives (by default
/// the parent's). argv[0] without a '/' is looked up on the parent's PATH.
/// The result must be kept: dropping it kills the child at once.
[[nodiscard("dropping the subprocess kills the child at once: keep it in a variable")]]
MOSS_API subprocess spawn_process(const std::vector<std::string>& argv, const process_options& opts = {});

/// subprocess: a child process whose exit and pipes greenlets wait for; see subprocess.hpp.
class MOSS_API subprocess {
 public:
  /// clock: the clock of deadlines.
  using clock = std::chrono::steady_clock;

  subprocess() = default;
  /// A moved-from subprocess owns no child.
  subprocess(subprocess&& o) noexcept;
  /// Assignment kills and reaps the child this owned, then takes o's.
  subprocess& operator=(subprocess&& o) noexcept;
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;
  /// ~subprocess() kills (SIGKILL) and reaps a child not reaped yet, and
  /// closes the pipes. It waits for the child's death without parking: that
  /// takes a moment after SIGKILL.
  ~subprocess();

  /// pid() is the child's process id (-1 for an empty subprocess).
  pid_t pid() const noexcept { return pid_; }

  /// write_stdin() writes all of data to the child's stdin (stdio::pipe),
  /// parking while the pipe is full. Throws std::system_error (EPIPE) when
  /// the child has closed its stdin or exited; never raises SIGPIPE (the
  /// parent's end is a socket written with MSG_NOSIGNAL).
  void write_stdin(std::string_view data);
  /// close_stdin() closes the parent's end: the child reads end of file.
  void close_stdin() noexcept;

  ///@{
  /// read_stdout() returns the next at most max bytes the child wrote to its
  /// stdout (stdio::pipe), parking until there are some; "" at end of file.
  std::string read_stdout(std::size_t max = 65536);
  std::string read_stderr(std::size_t max = 65536);
  ///@{
  ///@}
  /// read_all_stdout() reads until end of file (the child closed its stdout,
  /// usually by exiting).
  std::string read_all_stdout();
  /// read_all_stderr() is read_all_stdout() for stderr.
  std::string read_all_stderr();
  ///@}

  /// wait() parks until the child exits, reaps it and returns its exit
  /// status (see above). Later calls return the same status.
  int wait();
  ///@{
  /// wait(timeout) is wait() giving up after timeout: std::nullopt then, and
  /// the child runs on.
  std::optional<int> wait(clock::time_point deadline);
  template <class Rep, class Period>
  std::optional<int> wait(std::chrono::duration<Rep, Period> timeout) {
    return wait(detail::deadline_after(timeout));
  }
  ///@}
  /// poll() is wait() that never parks: the status if the child has exited.
  std::optional<int> poll();

  /// kill() sends sig to the child (through its pidfd, so never to another
  /// process that got the pid later); nothing once the child is reaped.
  void kill(int sig);

  ///@{
  /// The parent's fds (-1 if not a pipe or closed), for moss::io::poll.
  int stdin_fd() const noexcept { return in_; }
  int stdout_fd() const noexcept { return out_; }
  int stderr_fd() const noexcept { return err_; }
  ///@}

 private:
  friend subprocess spawn_process(const std::vector<std::string>& argv, const process_options& opts);
  std::string read_some(int fd, std::size_t max, const char* what);
  std::string read_all(int fd, const char* what);
  void kill_and_reap() noexcept;
  void release() noexcept;

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::optional<int> status_;
};

/// process_result: a finished child's exit status and output.
struct process_result {
  /// The exit status, as subprocess::wait() gives it.
  int status;       // as subprocess::wait()
  /// Everything the child wrote to stdout.
  std::string out;  // everything the child wrote to stdout
  /// Everything the child wrote to stderr.
  std::string err;  // and to stderr
};

/// run_process() runs argv to the end, capturing its stdout and stderr
/// (opts.out and opts.err are taken as stdio::pipe; stdin is opts.in, never
/// a pipe: stdio::pipe there means /dev/null). Interrupted, it kills and
/// reaps the child.
[[nodiscard]] MOSS_API process_result run_process(const std::vector<std::string>& argv, process_options opts = {});

}  // namespace moss

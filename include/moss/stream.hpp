/// @file
/// stream.hpp: TCP connections as buffered streams, listeners and a server
/// loop (asyncio's start_server/open_connection, gevent's StreamServer).
///
///   moss::listener l = moss::listen_tcp("127.0.0.1", 0);   // l.port(): the port bound
///   auto server = moss::spawn([&] {
///     moss::serve(l, [](moss::stream& s) {                 // a task per connection
///       while (auto line = s.read_line(4096)) s.write_all(*line + "\n");
///     });
///   });
///   moss::stream c = moss::connect_tcp("localhost", l.port(), 5s);   // a 5 s bound
///   c.write_all("hello\n");
///   std::optional<std::string> echo = c.read_line();     // "hello"
///   server.kill();                                       // closes l, ends the connections
///
/// A name with several addresses is connected "happy eyeballs" style (RFC
/// 8305): the attempts are staggered, not serial, so an address that does not
/// answer costs a quarter of a second, not the system's connect timeout.
///
///   moss::stream d = moss::connect_tcp("example.com", 80, {.attempt_delay = 100ms, .timeout = 5s});
///
/// Everything waits through moss::io, so a greenlet parks while the others
/// run, and every wait can throw what a wait throws: moss::greenlet_exit when
/// the greenlet is killed, moss::timeout_error under a moss::timeout or
/// with_timeout. A read that is interrupted consumes nothing: the bytes it
/// had gathered stay buffered for the next read.
///
///   {
///     moss::timeout t(2s);            // bounds the whole exchange
///     auto line = s.read_line();
///   }
///
/// Errors: the system's (a reset connection, a refused connect) are
/// std::system_error whose message names the operation and the peer; a read
/// that meets end of file too early is moss::incomplete_read_error (asyncio's
/// IncompleteReadError), a delimiter not found within the limit is
/// moss::limit_overrun_error (asyncio's LimitOverrunError); misuse (an empty
/// delimiter, a port out of range) is moss::error.
///
/// A stream, a listener and the tasks of serve() belong to the hub of the
/// thread that made them, like any greenlet.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/dns.hpp>
#include <moss/error.hpp>
#include <moss/group.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/socket.h>

namespace moss {

/// stream_error: the base of the stream errors below.
class MOSS_API stream_error : public error {
 public:
  using error::error;
};

/// incomplete_read_error: end of file came before read_exactly() had its n
/// bytes or read_until() its delimiter. partial() holds the bytes read (they
/// are consumed); expected() is n, or npos for read_until.
class MOSS_API incomplete_read_error : public stream_error {
 public:
  /// expected() of a read_until(): no count was asked for.
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /// incomplete_read_error(what, partial, expected): the message, the bytes read, the count asked for.
  incomplete_read_error(const std::string& what, std::string partial, std::size_t expected)
      : stream_error(what), partial_(std::move(partial)), expected_(expected) {}
  /// partial() is what was read before end of file.
  const std::string& partial() const noexcept { return partial_; }
  /// expected() is the count asked for, or npos.
  std::size_t expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::size_t expected_;
};

/// limit_overrun_error: read_until() (or read_line()) found no delimiter in
/// the first max bytes. Nothing is consumed: the bytes stay buffered
/// (buffered() of them), so the caller may read them, or drop the line with
/// skip_until().
class MOSS_API limit_overrun_error : public stream_error {
 public:
  /// limit_overrun_error(what, buffered): the message and the bytes left buffered.
  limit_overrun_error(const std::string& what, std::size_t buffered) : stream_error(what), buffered_(buffered) {}
  /// buffered() is how many bytes are buffered, unconsumed.
  std::size_t buffered() const noexcept { return buffered_; }

 private:
  std::size_t buffered_;
};

/// stream: a buffered reader and writer over a connected fd, which it owns
/// (closed by close() or the destructor). Made by connect_tcp() and
/// listener::accept(), or from any socket or pipe fd. Reads are buffered;
/// writes go straight out. Not for two greenlets reading (or two writing) at
/// once; one reader and one writer are fine.
class MOSS_API stream {
 public:
  /// The read limit when none is given: 64 KiB (asyncio's default).
  static constexpr std::size_t default_limit = 64 * 1024;

  stream() noexcept = default;
  /// stream(fd, name) adopts fd (a socket or a pipe end). name says what it
  /// is connected to, for error messages and name(): "10.0.0.1:80".
  explicit stream(int fd, std::string name = {});
  ///@{
  /// Moving hands the fd and the buffered bytes over; o is left closed.
  stream(stream&& o) noexcept;
  stream& operator=(stream&& o) noexcept;
  ///@}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() { close(); }

  /// fd() is the fd, -1 once closed.
  int fd() const noexcept { return fd_; }
  /// is_open() is false once closed (or moved from).
  bool is_open() const noexcept { return fd_ >= 0; }
  /// name() is what the stream is connected to, as given when it was made.
  const std::string& name() const noexcept { return name_; }

  ///@{
  /// read_some() returns what is buffered, else waits for the next bytes to
  /// arrive and returns them: at least 1 and at most max bytes, "" (0) only
  /// at end of file. The second form copies them into buf.
  std::string read_some(std::size_t max = default_limit);
  std::size_t read_some(void* buf, std::size_t max);
  ///@}
  /// read_exactly() returns exactly n bytes. At end of file before n bytes
  /// it throws incomplete_read_error holding what there was.
  std::string read_exactly(std::size_t n);
  /// read_until() returns the bytes up to and including the first delim
  /// (asyncio's readuntil). max bounds the result, delimiter included: no
  /// delim in the first max bytes throws limit_overrun_error. At end of file
  /// before a delim it throws incomplete_read_error holding the rest (empty
  /// if the stream had simply ended). max must be at least delim's size.
  std::string read_until(std::string_view delim, std::size_t max = default_limit);
  /// read_line() returns the next line without its "\n" or "\r\n", or
  /// std::nullopt at end of file when no bytes are left (a clean end). max
  /// bounds the line with its terminator, as for read_until; a last line
  /// without "\n" throws incomplete_read_error (the peer stopped mid-line).
  std::optional<std::string> read_line(std::size_t max = default_limit);
  /// skip_until() drops everything up to and including the next delim, of
  /// any length (what to do after a limit_overrun_error); false if end of
  /// file came first.
  bool skip_until(std::string_view delim);

  /// buffered() counts the bytes read from the fd but not yet returned.
  std::size_t buffered() const noexcept { return end_ - begin_; }
  /// at_eof() is true once end of file was seen and nothing is buffered.
  bool at_eof() const noexcept { return eof_ && buffered() == 0; }

  /// write_all() writes all of data, parking while the peer is slow. Throws
  /// std::system_error if the connection breaks (EPIPE, ECONNRESET); on a
  /// socket it never raises SIGPIPE (on a pipe, ignore SIGPIPE to get the
  /// EPIPE). If interrupted, part of data may have been sent.
  ///@{
  void write_all(std::string_view data);
  void write_all(const void* data, std::size_t n);
  ///@}
  /// shutdown_write() sends end of file to the peer (shutdown(SHUT_WR));
  /// reading goes on. Sockets only.
  void shutdown_write();
  /// close() closes the fd (waking any greenlet parked on it with EBADF) and
  /// drops the buffer. Closing a closed stream does nothing.
  void close() noexcept;

 private:
  bool fill(std::size_t want);
  bool fill_empty();
  std::size_t read_into(char* p, std::size_t n);
  std::string take(std::size_t n);
  void drop(std::size_t n) noexcept;
  [[noreturn]] void throw_system(int err, const char* op) const;

  int fd_ = -1;
  bool socket_ = false;
  bool eof_ = false;
  std::string name_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
};

/// listener: a listening TCP socket, which it owns.
class MOSS_API listener {
 public:
  listener() noexcept = default;
  /// listener(fd) adopts a socket already bound and listening.
  explicit listener(int fd);
  ///@{
  /// Moving hands the socket over; o is left closed.
  listener(listener&& o) noexcept;
  listener& operator=(listener&& o) noexcept;
  ///@}
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener() { close(); }

  /// fd() is the listening socket, -1 once closed.
  int fd() const noexcept { return fd_; }
  /// is_open() is false once closed (or moved from).
  bool is_open() const noexcept { return fd_ >= 0; }
  /// port() is the port bound (the one the kernel chose for port 0).
  std::uint16_t port() const noexcept { return port_; }
  /// address() is the address bound as text: "127.0.0.1:7000", "[::]:7000".
  const std::string& address() const noexcept { return address_; }

  /// accept() waits for the next connection and returns it as a stream named
  /// after the peer's address. Throws std::system_error on failure: EBADF
  /// once the listener is closed (even by another greenlet while waiting),
  /// EMFILE when out of fds.
  stream accept();
  /// close() stops listening; a greenlet waiting in accept() wakes with EBADF.
  void close() noexcept;

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::string address_;
};

/// listen_tcp() listens on host:port (port 0: one the kernel chooses) with
/// SO_REUSEADDR and the given backlog. host is an address or a name (looked
/// up with moss::dns; the first address that binds wins); "" is every
/// address. Throws std::system_error naming host:port if none binds,
/// moss::dns::error if host does not resolve, moss::error for a port outside
/// 0..65535 or a backlog < 1.
[[nodiscard("dropping the listener closes it at once: keep it in a variable")]]
MOSS_API listener listen_tcp(const std::string& host, int port, int backlog = SOMAXCONN);

/// connect_options: how connect_tcp() races the addresses it tries.
struct connect_options {
  /// attempt_delay: how long an attempt runs alone before the next address
  /// is tried alongside it (RFC 8305's Connection Attempt Delay). At least
  /// 10 ms (the RFC's floor); the RFC suggests at most 2 s.
  std::chrono::milliseconds attempt_delay{250};
  /// timeout: a bound on the whole connect (lookup included), after which
  /// it gives up with moss::timeout_error; none by default.
  std::optional<std::chrono::steady_clock::duration> timeout;
};

///@{
/// connect_tcp() connects to host:port, racing its addresses as RFC 8305
/// ("happy eyeballs") says: host is looked up with moss::dns, the addresses
/// are put in interleave_families() order, and an attempt starts on the
/// first. Each next address gets an attempt of its own when attempt_delay
/// passes without a connection, or at once when an attempt fails, while the
/// earlier ones keep going. The first connection wins; every other attempt
/// is closed. So an address that does not answer costs attempt_delay, not
/// the system's connect timeout, and one that refuses costs nothing.
///
/// The attempts run in the calling greenlet (one moss::io::poll over them),
/// so a kill or a timeout that interrupts the call closes every one of them
/// before it goes on. The stream's name() is "host:port". Throws
/// std::system_error naming host:port, each address tried and the error of
/// the last one to fail (ECONNREFUSED...), moss::dns::error if host does
/// not resolve, moss::error for a port outside 1..65535 or an attempt_delay
/// under 10 ms. With a timeout, the whole attempt (lookup included) gives
/// up with moss::timeout_error naming host:port after it.
[[nodiscard("dropping the stream closes the connection at once: keep it in a variable")]]
MOSS_API stream connect_tcp(const std::string& host, int port);
[[nodiscard("dropping the stream closes the connection at once: keep it in a variable")]]
MOSS_API stream connect_tcp(const std::string& host, int port, std::chrono::steady_clock::duration timeout);
[[nodiscard("dropping the stream closes the connection at once: keep it in a variable")]]
MOSS_API stream connect_tcp(const std::string& host, int port, const connect_options& options);
///@}

/// connect_tcp(addresses) races addresses (from moss::dns::resolve, or
/// made by hand) as connect_tcp(host, port) races its own, in the order
/// given: pass them through interleave_families() for RFC 8305's order. Each
/// must be AF_INET or AF_INET6 with its port set. The stream's name() is the
/// winning address ("127.0.0.1:80", "[::1]:80"); errors name every address
/// tried. Throws moss::error for an empty list or another family.
[[nodiscard("dropping the stream closes the connection at once: keep it in a variable")]]
MOSS_API stream connect_tcp(const std::vector<dns::address>& addresses, const connect_options& options = {});

/// interleave_families() orders addresses as RFC 8305 §4 says: the family
/// of the first address first, then alternating with the other family
/// (IPv6, IPv4, IPv6, IPv4...), each family keeping the order it was given
/// in; what is left of the longer family comes last.
MOSS_API std::vector<dns::address> interleave_families(std::vector<dns::address> addresses);

/// connection_handler: what serve() runs for each connection.
using connection_handler = std::function<void(stream&)>;

///@{
/// serve() accepts connections on l until l is closed (then it returns) or
/// the calling greenlet is killed, and runs handler(s) in a task of its own
/// for each (gevent's StreamServer.serve_forever). The stream is closed when
/// the handler returns. A handler's exception ends that connection only and
/// goes to the thread's error handler (moss/error_handler.hpp); it never
/// stops the server. Accepting survives ECONNABORTED, and EMFILE/ENFILE/
/// ENOBUFS/ENOMEM (it retries every 100 ms); other errors are thrown.
///
/// When serve() ends, for whatever reason, it closes l. Without a group it
/// then kills the connection tasks still running and waits for them: killing
/// the task running serve() stops the whole server. With a group, the
/// connection tasks are spawned into it and outlive serve(), so the caller
/// can give them a grace period (group.join(5s), then group.kill()).
MOSS_API void serve(listener& l, connection_handler handler);
MOSS_API void serve(listener& l, connection_handler handler, group& connections);
///@}

}  // namespace moss

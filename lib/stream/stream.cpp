// stream.cpp: buffered streams, listeners, serve() and connect_tcp() over
// moss::io and moss::dns.
//
// The read buffer is [begin_, end_) of buf_. A read that completes takes
// its bytes from the front; one that cannot complete (end of file, an
// exception from a wait) leaves them all there, so nothing is lost to a
// timeout. The buffer is freed whenever it empties, and a read into an empty
// buffer goes through a per-thread scratch buffer: an idle connection costs
// no buffer. System calls that moss::io does not offer (bind, listen,
// shutdown, getsockname) go through lib/core/sys.hpp, as everywhere in lib/.
#include <moss/stream.hpp>

#include <moss/dns.hpp>
#include <moss/io.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>
#include <moss/timeout.hpp>

#include "core/sys.hpp"
#include "stream/happy_eyeballs.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace moss {

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

int sys_bind(int fd, const sockaddr* a, socklen_t len) noexcept {
  return static_cast<int>(detail::sys::call(SYS_bind, fd, detail::sys::ptr_arg(a), len));
}
int sys_listen(int fd, int backlog) noexcept { return static_cast<int>(detail::sys::call(SYS_listen, fd, backlog)); }
int sys_shutdown(int fd, int how) noexcept { return static_cast<int>(detail::sys::call(SYS_shutdown, fd, how)); }
int sys_getsockname(int fd, sockaddr* a, socklen_t* len) noexcept {
  return static_cast<int>(detail::sys::call(SYS_getsockname, fd, detail::sys::ptr_arg(a), detail::sys::ptr_arg(len)));
}

std::string address_text(const sockaddr* a) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (a->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(a);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  if (a->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(a);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  return "(address family " + std::to_string(a->sa_family) + ")";
}

std::uint16_t port_of(const sockaddr* a) {
  if (a->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(a)->sin6_port);
  if (a->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(a)->sin_port);
  return 0;
}

std::string host_port(const std::string& host, int port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

bool is_socket(int fd) {
  struct stat st{};
  return detail::sys::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

// ---- stream ----

stream::stream(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
  if (fd < 0) throw moss::error("moss::stream: fd " + std::to_string(fd) + " is not a file descriptor");
  socket_ = is_socket(fd);
  if (name_.empty()) name_ = "fd " + std::to_string(fd);
}

stream::stream(stream&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      socket_(o.socket_),
      eof_(o.eof_),
      name_(std::move(o.name_)),
      buf_(std::move(o.buf_)),
      cap_(std::exchange(o.cap_, 0)),
      begin_(std::exchange(o.begin_, 0)),
      end_(std::exchange(o.end_, 0)) {}

stream& stream::operator=(stream&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    socket_ = o.socket_;
    eof_ = o.eof_;
    name_ = std::move(o.name_);
    buf_ = std::move(o.buf_);
    cap_ = std::exchange(o.cap_, 0);
    begin_ = std::exchange(o.begin_, 0);
    end_ = std::exchange(o.end_, 0);
  }
  return *this;
}

void stream::close() noexcept {
  if (fd_ >= 0) io::close(fd_);
  fd_ = -1;
  buf_.reset();
  cap_ = begin_ = end_ = 0;
}

void stream::throw_system(int err, const char* op) const {
  throw_errno(err, std::string("moss::stream: ") + op + " " + name_);
}

// fill() makes one read into the buffer, with room for at least want more
// bytes. True if bytes came, false at end of file.
bool stream::fill(std::size_t want) {
  if (fd_ < 0) throw moss::error("moss::stream: read from a closed stream (" + name_ + ")");
  if (eof_) return false;
  std::size_t need = std::max(want, read_chunk);
  if (end_ == begin_ && want <= read_chunk) return fill_empty();
  if (cap_ - end_ < need) {
    std::size_t held = end_ - begin_;
    if (cap_ - held >= need && buf_ != nullptr) {
      std::memmove(buf_.get(), buf_.get() + begin_, held);
    } else {
      std::size_t cap = std::max(cap_ * 2, held + need);
      auto b = std::make_unique<char[]>(cap);
      if (held > 0) std::memcpy(b.get(), buf_.get() + begin_, held);
      buf_ = std::move(b);
      cap_ = cap;
    }
    begin_ = 0;
    end_ = held;
  }
  std::size_t n = read_into(buf_.get() + end_, cap_ - end_);
  end_ += n;
  return n > 0;
}

// read_into() reads what comes into [p, p + n): at least 1 byte, or 0 at end
// of file (then eof_ is set). Throws std::system_error on a failed read.
std::size_t stream::read_into(char* p, std::size_t n) {
  for (;;) {
    ssize_t got = socket_ ? io::recv(fd_, p, n, 0) : io::read(fd_, p, n);
    if (got > 0) return static_cast<std::size_t>(got);
    if (got == 0) {
      eof_ = true;
      return 0;
    }
    if (errno != EINTR) throw_system(errno, "read from");
  }
}

// fill_empty() reads into the thread's scratch buffer and keeps only what
// came, so a greenlet parked on an idle connection holds no buffer. Nothing
// can switch between the system call filling the scratch and the copy out.
bool stream::fill_empty() {
  thread_local std::unique_ptr<char[]> scratch;
  if (scratch == nullptr) scratch = std::make_unique<char[]>(read_chunk);
  std::size_t len = read_into(scratch.get(), read_chunk);
  if (len == 0) return false;
  if (cap_ < len) {
    buf_ = std::make_unique<char[]>(len);
    cap_ = len;
  }
  std::memcpy(buf_.get(), scratch.get(), len);
  begin_ = 0;
  end_ = len;
  return true;
}

std::string stream::take(std::size_t n) {
  std::string r(buf_.get() + begin_, n);
  drop(n);
  return r;
}

void stream::drop(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) {
    buf_.reset();
    cap_ = begin_ = end_ = 0;
  }
}

std::size_t stream::read_some(void* out, std::size_t max) {
  if (max == 0) return 0;
  if (buffered() == 0) {
    if (fd_ < 0) throw moss::error("moss::stream: read from a closed stream (" + name_ + ")");
    if (eof_) return 0;
    if (max >= read_chunk) {
      // Large reads go straight into the caller's buffer.
      for (;;) {
        ssize_t n = socket_ ? io::recv(fd_, out, max, 0) : io::read(fd_, out, max);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0) {
          eof_ = true;
          return 0;
        }
        if (errno == EINTR) continue;
        throw_system(errno, "read from");
      }
    }
    if (!fill(0)) return 0;
  }
  std::size_t n = std::min(max, buffered());
  std::memcpy(out, buf_.get() + begin_, n);
  drop(n);
  return n;
}

std::string stream::read_some(std::size_t max) {
  if (max == 0) return {};
  if (buffered() == 0 && !fill(0)) return {};
  return take(std::min(max, buffered()));
}

std::string stream::read_exactly(std::size_t n) {
  while (buffered() < n) {
    if (!fill(n - buffered())) {
      std::size_t got = buffered();
      throw incomplete_read_error("moss::stream: " + name_ + " ended after " + std::to_string(got) + " of " +
                                      std::to_string(n) + " bytes",
                                  take(got), n);
    }
  }
  return take(n);
}

std::string stream::read_until(std::string_view delim, std::size_t max) {
  if (delim.empty()) throw moss::error("moss::stream::read_until: the delimiter is empty");
  if (max < delim.size())
    throw moss::error("moss::stream::read_until: the limit " + std::to_string(max) + " is smaller than the delimiter");
  std::size_t searched = 0;  // bytes already known to hold no delimiter start
  for (;;) {
    std::string_view pending(buf_.get() + begin_, buffered());
    std::size_t pos = pending.find(delim, searched);
    if (pos != std::string_view::npos && pos + delim.size() <= max) return take(pos + delim.size());
    if (pos != std::string_view::npos || pending.size() >= max)
      throw limit_overrun_error("moss::stream: no delimiter within the first " + std::to_string(max) + " bytes from " +
                                    name_,
                                buffered());
    if (pending.size() >= delim.size()) searched = pending.size() - delim.size() + 1;
    if (!fill(0)) {
      std::size_t got = buffered();
      std::string what = got == 0 ? "moss::stream: " + name_ + " ended"
                                  : "moss::stream: " + name_ + " ended " + std::to_string(got) +
                                        " bytes into an unterminated record";
      throw incomplete_read_error(what, take(got), incomplete_read_error::npos);
    }
  }
}

std::optional<std::string> stream::read_line(std::size_t max) {
  std::string line;
  try {
    line = read_until("\n", max);
  } catch (const incomplete_read_error& e) {
    if (e.partial().empty()) return std::nullopt;
    throw;
  }
  line.pop_back();
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

bool stream::skip_until(std::string_view delim) {
  if (delim.empty()) throw moss::error("moss::stream::skip_until: the delimiter is empty");
  for (;;) {
    std::string_view pending(buf_.get() + begin_, buffered());
    std::size_t pos = pending.find(delim);
    if (pos != std::string_view::npos) {
      drop(pos + delim.size());
      return true;
    }
    // Keep only what may be the start of a delimiter split across reads.
    std::size_t keep = std::min(pending.size(), delim.size() - 1);
    drop(pending.size() - keep);
    if (!fill(0)) {
      drop(buffered());
      return false;
    }
  }
}

void stream::write_all(std::string_view data) { write_all(data.data(), data.size()); }

void stream::write_all(const void* data, std::size_t n) {
  if (fd_ < 0) throw moss::error("moss::stream: write to a closed stream (" + name_ + ")");
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = socket_ ? io::send(fd_, p, n, MSG_NOSIGNAL) : io::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_system(errno, "write to");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void stream::shutdown_write() {
  if (fd_ < 0) throw moss::error("moss::stream: shutdown of a closed stream (" + name_ + ")");
  if (sys_shutdown(fd_, SHUT_WR) != 0) throw_system(errno, "shutdown of");
}

// ---- listener ----

listener::listener(int fd) : fd_(fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (fd < 0 || sys_getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw moss::error("moss::listener: fd " + std::to_string(fd) + " is not a socket");
  port_ = port_of(reinterpret_cast<sockaddr*>(&a));
  address_ = address_text(reinterpret_cast<sockaddr*>(&a));
}

listener::listener(listener&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), port_(o.port_), address_(std::move(o.address_)) {}

listener& listener::operator=(listener&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    port_ = o.port_;
    address_ = std::move(o.address_);
  }
  return *this;
}

void listener::close() noexcept {
  if (fd_ >= 0) io::close(fd_);
  fd_ = -1;
}

stream listener::accept() {
  for (;;) {
    if (fd_ < 0) throw_errno(EBADF, "moss::listener: accept on " + address_ + " (closed)");
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    int fd = io::accept4(fd_, reinterpret_cast<sockaddr*>(&a), &len, SOCK_CLOEXEC);
    if (fd >= 0) {
      try {
        return stream(fd, address_text(reinterpret_cast<sockaddr*>(&a)));
      } catch (...) {
        io::close(fd);
        throw;
      }
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    throw_errno(errno, "moss::listener: accept on " + address_);
  }
}

listener listen_tcp(const std::string& host, int port, int backlog) {
  if (port < 0 || port > 65535)
    throw moss::error("moss::listen_tcp: port " + std::to_string(port) + " is out of range (0 to 65535)");
  if (backlog < 1) throw moss::error("moss::listen_tcp: backlog " + std::to_string(backlog) + " must be at least 1");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = dns::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0)
    throw dns::error(rc, "moss::listen_tcp: cannot resolve \"" + host + "\": " + gai_strerror(rc));
  int err = EADDRNOTAVAIL;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = io::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    detail::sys::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sys_bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && sys_listen(fd, backlog) == 0) {
      dns::freeaddrinfo(res);
      try {
        return listener(fd);
      } catch (...) {
        io::close(fd);
        throw;
      }
    }
    err = errno;
    io::close(fd);
  }
  dns::freeaddrinfo(res);
  throw_errno(err, "moss::listen_tcp: cannot listen on " + host_port(host.empty() ? "*" : host, port));
}

// ---- connect_tcp ----
//
// The race itself is in happy_eyeballs.cpp; here are the checks, the
// lookup, and the words of the results.

namespace {

void check_options(const connect_options& o) {
  if (o.attempt_delay < std::chrono::milliseconds(10))
    throw moss::error("moss::connect_tcp: attempt_delay " + std::to_string(o.attempt_delay.count()) +
                      " ms is under RFC 8305's floor of 10 ms");
}

// race() runs the race over addrs and returns the winner as a stream named
// target ("host:port"), or after its address if target is empty. If every
// attempt fails it throws the last one's error, naming target and each
// address tried.
stream race(const std::vector<dns::address>& addrs, const connect_options& o, const std::string& target) {
  detail::race_result r = detail::race_connect(addrs, o.attempt_delay);
  if (r.fd >= 0) {
    try {
      return stream(r.fd, target.empty() ? address_text(addrs[r.winner].get()) : target);
    } catch (...) {
      io::close(r.fd);
      throw;
    }
  }
  std::string tried;
  for (std::size_t i : r.tried) tried += (tried.empty() ? "" : ", ") + address_text(addrs[i].get());
  throw_errno(r.err != 0 ? r.err : EADDRNOTAVAIL,
              "moss::connect_tcp: cannot connect" + (target.empty() ? "" : " to " + target) +
                  (tried.empty() ? "" : " (tried " + tried + ")"));
}

// bounded() runs connect under o.timeout, if there is one, and words its
// timeout_error after target.
template <class F>
stream bounded(const connect_options& o, const std::string& target, F&& connect) {
  if (!o.timeout) return connect();
  timeout t(*o.timeout);
  try {
    return connect();
  } catch (const timeout_error& e) {
    if (e.source() != &t) throw;
    throw timeout_error("moss::connect_tcp: connecting to " + target + " timed out after " +
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*o.timeout).count()) +
                        " ms");
  }
}

}  // namespace

stream connect_tcp(const std::string& host, int port, const connect_options& o) {
  if (port < 1 || port > 65535)
    throw moss::error("moss::connect_tcp: port " + std::to_string(port) + " is out of range (1 to 65535)");
  check_options(o);
  std::string target = host_port(host, port);
  return bounded(o, target, [&] {
    std::vector<dns::address> addrs;
    try {
      addrs = interleave_families(dns::resolve(host, std::to_string(port)));
    } catch (const dns::error& e) {
      throw dns::error(e.code(), "moss::connect_tcp: cannot connect to " + target + ": " + e.what());
    }
    return race(addrs, o, target);
  });
}

stream connect_tcp(const std::string& host, int port) { return connect_tcp(host, port, connect_options{}); }

stream connect_tcp(const std::string& host, int port, std::chrono::steady_clock::duration d) {
  connect_options o;
  o.timeout = d;
  return connect_tcp(host, port, o);
}

stream connect_tcp(const std::vector<dns::address>& addresses, const connect_options& o) {
  if (addresses.empty()) throw moss::error("moss::connect_tcp: the list of addresses is empty");
  for (std::size_t i = 0; i < addresses.size(); ++i)
    if (addresses[i].family != AF_INET && addresses[i].family != AF_INET6)
      throw moss::error("moss::connect_tcp: address " + std::to_string(i) + " has family " +
                        std::to_string(addresses[i].family) + ", not AF_INET or AF_INET6");
  check_options(o);
  std::string all;
  for (const dns::address& a : addresses) all += (all.empty() ? "" : " or ") + address_text(a.get());
  return bounded(o, all, [&] { return race(addresses, o, {}); });
}

// ---- serve ----

namespace {

bool accept_retryable(int err) noexcept { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

void accept_loop(listener& l, const std::shared_ptr<connection_handler>& h, group& g) {
  for (;;) {
    stream s;
    try {
      s = l.accept();
    } catch (const std::system_error& e) {
      if (!l.is_open()) return;  // closed by someone: a normal stop
      if (accept_retryable(e.code().value())) {
        moss::sleep(std::chrono::milliseconds(100));
        continue;
      }
      throw;
    }
    spawn_options o;
    o.name = "connection " + s.name();
    g.add(moss::spawn(o, [h, s = std::move(s)]() mutable { (*h)(s); }));
  }
}

}  // namespace

void serve(listener& l, connection_handler handler, group& connections) {
  if (!handler) throw moss::error("moss::serve: the handler is empty");
  auto h = std::make_shared<connection_handler>(std::move(handler));
  try {
    accept_loop(l, h, connections);
  } catch (...) {
    l.close();
    throw;
  }
  l.close();
}

void serve(listener& l, connection_handler handler) {
  group connections;
  try {
    serve(l, std::move(handler), connections);
  } catch (...) {
    // Killed (or failed): the connections go with the server, and have
    // unwound before the exception goes on. A second kill while they unwind
    // replaces the first.
    std::exception_ptr e = std::current_exception();
    try {
      connections.kill();
    } catch (...) {
      e = std::current_exception();
    }
    std::rethrow_exception(e);
  }
  connections.kill();
}

}  // namespace moss

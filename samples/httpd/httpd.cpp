// moss-httpd: a static-file HTTP/1.1 server with keep-alive, a task per
// connection (with many connections, only while it has a request to read or
// answer: see "Memory per idle connection" below). Uses the explicit
// moss API (moss::io): every socket call is a moss::io call that parks the
// connection's task, and the hot path (read a request, parse, send the
// answer) makes no system call beyond recv and send, which is what a
// benchmark of /hello measures.
//
// --workers N runs N hubs on N threads, each accepting on its own
// SO_REUSEPORT listener, so the kernel spreads connections and no state is
// shared between threads but the served root. The request parser lives in
// http_parser.{hpp,cpp} (pure functions, fuzzed by fuzz/fuzz_parser.cpp).
//
// Safety: paths are percent-decoded and any ".." segment refused before
// the file system is touched; the file found is then resolved with
// realpath() and must still lie under the root's real path, so a symlink
// pointing out of the root is refused too. A request head is bounded (16
// KiB, 100 fields: 431 beyond), and a connection whose client sends nothing,
// or reads nothing, for the idle timeout (60 s) is closed.
//
// Slow clients (slowloris): a byte now and then keeps a connection out of
// the idle reaper's reach, so a head must also be complete within the head
// timeout (10 s) of its first bytes, or it is answered 408 and closed.
// Bodies are never read: a request with one is answered, then its body is
// drained for at most 2 s (linger_close), so a slow body holds nothing
// longer. When accept (or opening a file) fails for want of fds, the
// connections that have waited longest for a request are shut down to make
// room: otherwise a few dozen idle clients would shut everyone else out
// of a server run with `ulimit -n 64`.
//
// Idle connections are found by one reaper task per worker, not by a timer
// per connection: a socket timeout (SO_RCVTIMEO) would arm and cancel a hub
// timer on every request, a clock read and two operations on a heap of
// 1,000s of timers, about a tenth of the CPU a /hello costs at 1,000
// connections. Here a request stores the worker's tick count, and the reaper
// shuts down, once a second, each connection that made no progress for the
// timeout: its parked recv or send then returns and its task ends. The head
// timeout costs nothing per request either: a deadline is armed only when
// a head arrives in more than one piece.
//
// Memory per idle connection: a keep-alive connection waiting for its next
// request holds no buffer (request_buffers come from a per-worker pool only
// while a request is read and answered). With few connections, each has its
// own task, which parks in wait_readable between requests: the cheapest
// wake there is, for one stack page (4 KiB) touched per connection. From
// --rest-above connections on (512 by default, per worker), connections
// rest between requests instead, holding no task: 10,000 parked tasks would
// keep 39 MiB of stack pages, more than an Asio server's whole footprint
// (see the README's figures). A resting connection is in its worker's idle
// set, an epoll set (edge-triggered, registered once) watched by one task,
// which moves the connections that become readable to a ready list; a
// server task serves them in turn, each until its socket is empty, and
// hands each back to the set. That costs a resting connection its object
// and the io layer's record, and a batch of requests two system calls (the
// set's epoll_wait and a poll before the watcher parks) and a spawn or two,
// on stacks that stay in the cache: cheaper than parked tasks' cache misses
// at 10,000 connections, dearer than their wakes at 100 (hence the
// threshold). An event that arrives while its connection is queued or being
// served is remembered (edge_), so none is lost between the last read and
// the hand-back. (Urgent data, which no HTTP client sends, can stop a read
// short of what is there: such a connection then waits for its next bytes
// or the idle timeout.)
#include "args.hpp"
#include "http_parser.hpp"

#include <moss/moss.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <arpa/inet.h>
#include <fcntl.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr const char* prog = "moss-httpd";
constexpr std::size_t head_limit = 16 * 1024;
constexpr auto reap_every = 1s;

struct config {
  std::string host = "127.0.0.1";
  int port = 8000;
  int workers = 1;
  bool access_log = false;
  std::string root = ".";
  int idle_seconds = 60;
  int head_seconds = 10;
  long rest_above = 512;
};

std::string real_root;  // realpath of the served root, without trailing '/'
bool access_log = false;
std::atomic<bool> stopping{false};
unsigned long idle_ticks = 60;  // reap_every ticks without progress before a connection is closed
std::chrono::seconds head_timeout{10};
unsigned long rest_above = 512;  // connections per worker from which idle ones rest (see above)

class connection;

// Each worker's live connections, its reaper's tick count, a count of
// requests completed and connections accepted (it orders connections by how
// long they have waited for their next request, a new one last), while
// accept_loop runs an event set whenever one of its connections closes, and
// the idle set and ready list (see watch_idle).
struct worker_state {
  connection* head = nullptr;
  unsigned long tick = 0;
  unsigned long long waits = 0;
  unsigned long connections = 0;
  moss::event* closed = nullptr;
  int idle_set = -1;
  connection* ready_head = nullptr;
  connection* ready_tail = nullptr;
  bool standby = false;  // a server task spawned and not yet started
};
thread_local worker_state worker;

// request_buffers: what a connection needs only while it reads and answers a
// request: the head buffer and the answer being put together. A connection
// waiting for its next request holds none (it parks in wait_readable), so
// 10,000 idle keep-alive connections do not keep 10,000 head buffers with a
// page or two of each touched; a worker keeps the spare ones in a free list
// (at most spare_limit: a burst of slow clients gives its buffers back).
// The parsed request lives here too, not in serve()'s frame: the pool's
// buffers stay in the cache, while a part of the stack that a parked
// connection does not touch costs a cache miss a line at 10,000 connections.
struct request_buffers {
  char in[head_limit];
  std::string out;
  httpd::request req;
  request_buffers* next = nullptr;
};

class buffer_pool {
 public:
  buffer_pool() = default;
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;
  ~buffer_pool() {
    while (free_ != nullptr) delete std::exchange(free_, free_->next);
  }

  request_buffers* take() {
    if (free_ == nullptr) return new request_buffers;
    --spare_;
    return std::exchange(free_, free_->next);
  }
  void give_back(request_buffers* b) noexcept {
    if (spare_ == spare_limit) {
      delete b;
      return;
    }
    b->out.clear();
    b->next = std::exchange(free_, b);
    ++spare_;
  }

 private:
  static constexpr std::size_t spare_limit = 64;
  request_buffers* free_ = nullptr;
  std::size_t spare_ = 0;
};
thread_local buffer_pool buffers;

const char* content_type(std::string_view path) {
  struct entry {
    std::string_view ext;
    const char* type;
  };
  static constexpr entry table[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".json", "application/json"},
      {".xml", "application/xml"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".ico", "image/x-icon"},
      {".webp", "image/webp"},
      {".pdf", "application/pdf"},
      {".wasm", "application/wasm"},
  };
  auto slash = path.rfind('/');
  auto dot = path.rfind('.');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    auto ext = path.substr(dot);
    for (const auto& e : table)
      if (e.ext.size() == ext.size() &&
          std::equal(ext.begin(), ext.end(), e.ext.begin(), [](char a, char b) { return (a | 0x20) == b; }))
        return e.type;
  }
  return "application/octet-stream";
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

// http_date() is t as an HTTP date (RFC 9110 section 5.6.7), e.g. "Sun, 06
// Nov 1994 08:49:37 GMT"; buf holds at least 32 bytes.
const char* http_date(std::time_t t, char* buf) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::snprintf(buf, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// date_now() is http_date() of the current second, formatted once a second
// per thread.
const char* date_now() {
  thread_local std::time_t shown = -1;
  thread_local char text[32];
  std::time_t now = std::time(nullptr);
  if (now != shown) {
    http_date(now, text);
    shown = now;
  }
  return text;
}

// A Range field (RFC 9110 section 14.2) against a file of size bytes: one
// range only. A field that does not parse, or asks for several ranges, is
// ignored (the whole file is sent, as the RFC allows); a range starting
// past the end is unsatisfiable (416).
enum class range_kind { whole, part, unsatisfiable };
struct byte_range {
  std::uint64_t first = 0, last = 0;  // inclusive
};

bool parse_digits(std::string_view s, std::uint64_t& n) {
  if (s.empty() || s.size() > 18) return false;
  n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

range_kind parse_range(std::string_view field, std::uint64_t size, byte_range& r) {
  constexpr std::string_view unit = "bytes=";
  if (field.size() <= unit.size() ||
      !std::equal(unit.begin(), unit.end(), field.begin(), [](char a, char b) { return a == (b | 0x20) || a == b; }))
    return range_kind::whole;
  std::string_view spec = field.substr(unit.size());
  auto dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return range_kind::whole;
  std::uint64_t a = 0, b = 0;
  if (dash == 0) {  // "-N": the last N bytes
    if (!parse_digits(spec.substr(1), b)) return range_kind::whole;
    if (b == 0 || size == 0) return range_kind::unsatisfiable;
    r.first = size - std::min(b, size);
    r.last = size - 1;
    return range_kind::part;
  }
  if (!parse_digits(spec.substr(0, dash), a)) return range_kind::whole;
  bool open_end = dash + 1 == spec.size();
  if (!open_end && (!parse_digits(spec.substr(dash + 1), b) || b < a)) return range_kind::whole;
  if (a >= size) return range_kind::unsatisfiable;
  r.first = a;
  r.last = open_end ? size - 1 : std::min(b, size - 1);
  return range_kind::part;
}

// One connection, from accept to close: owned by the task serving it, or,
// between requests, by its worker's idle set.
class connection {
 public:
  explicit connection(int fd) : fd_(fd), seen_(worker.tick), waiting_since_(++worker.waits) {
    next_ = worker.head;
    if (next_ != nullptr) next_->prev_ = this;
    worker.head = this;
    ++worker.connections;
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    if (b_ != nullptr) buffers.give_back(b_);
    if (prev_ != nullptr) prev_->next_ = next_;
    else worker.head = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    --worker.connections;
    moss::io::close(fd_);
    if (worker.closed != nullptr) worker.closed->set();
  }

  // reap() is the reaper's pass over this worker's connections: shut down
  // those idle for idle_ticks whole ticks (so for the timeout, at most a
  // tick more). shutdown(), not close(): the task still owns the fd, and
  // its parked call wakes with end-of-file or EPIPE.
  static void reap() {
    for (connection* c = worker.head; c != nullptr; c = c->next_) {
      if (!c->reaped_ && worker.tick - c->seen_ > idle_ticks) {
        c->reaped_ = true;
        ::shutdown(c->fd_, SHUT_RDWR);
      }
    }
  }

  // make_room() is for a worker out of fds: it shuts down the connections
  // that have waited longest for a request (one, or a sixty-fourth of them
  // when there are many) and waits until one of this worker's connections
  // has closed, at most a second (10 ms if there was none to shut down: the
  // fds may be another worker's).
  static void make_room() {
    std::vector<connection*> idle;
    for (connection* c = worker.head; c != nullptr; c = c->next_)
      if (c->reading_ && !c->reaped_) idle.push_back(c);
    std::size_t n = std::min(idle.size(), 1 + idle.size() / 64);
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n), idle.end(),
                      [](connection* a, connection* b) { return a->waiting_since_ < b->waiting_since_; });
    for (std::size_t i = 0; i < n; ++i) {
      idle[i]->reaped_ = true;
      ::shutdown(idle[i]->fd_, SHUT_RDWR);
    }
    if (worker.closed == nullptr) {
      moss::sleep(10ms);
      return;
    }
    worker.closed->clear();
    if (n > 0) worker.closed->wait(1s);
    else worker.closed->wait(10ms);
  }

  // Called by the idle set. enter_idle_set() registers the connection
  // there, for good; rest() marks it waiting for a request with nothing read
  // and its socket found empty since any event; wake() is the set's event
  // for it: true if it was resting (serve it now), else remembered for the
  // task that will serve it or serves it.
  bool enter_idle_set() noexcept {
    if (in_idle_set_) return true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = this;
    if (::epoll_ctl(worker.idle_set, EPOLL_CTL_ADD, fd_, &ev) != 0) return false;
    in_idle_set_ = true;
    return true;
  }
  void rest() noexcept {
    resting_ = true;
    reading_ = true;
    edge_ = false;
  }
  bool wake() noexcept {
    if (!resting_) {
      edge_ = true;
      return false;
    }
    resting_ = reading_ = false;
    drained_ = false;
    return true;
  }
  bool resting() const noexcept { return resting_; }
  // The worker's list of connections, and its ready list.
  connection* next_in_worker() const noexcept { return next_; }
  connection* next_ready() const noexcept { return next_ready_; }
  void set_next_ready(connection* c) noexcept { next_ready_ = c; }

  // serve() reads and answers requests until the connection is over (false)
  // or rests (true: it has answered all it was sent, the last read left the
  // socket empty and no event came since; the caller hands it to the idle
  // set). Below the threshold it parks for its next request instead.
  bool serve() {
    std::size_t have = 0;  // bytes of b_->in not answered yet
    moss::io::clock::time_point head_deadline{};  // armed when a head comes in pieces
    bool split = false;
    for (;;) {
      if (have == 0) {
        // Between requests: answers queued for pipelined requests go out;
        // then the next request is read if there may be one, else the
        // connection rests or parks, holding no buffer.
        if (!flush()) return false;
        if (drained_ && !std::exchange(edge_, false)) {
          release_buffers();
          if (in_idle_set_ || worker.connections >= rest_above) return true;
          if (!wait_for_request()) return false;
        }
        take_buffers();
        ssize_t n = receive(b_->in, sizeof b_->in);
        if (n == would_block) continue;  // drained_: rest or park
        if (n <= 0) return false;
        have = static_cast<std::size_t>(n);
      }
      httpd::request& req = b_->req;
      auto st = httpd::parse_request(std::string_view(b_->in, have), req);
      if (st == httpd::parse_status::incomplete && have == sizeof b_->in) st = httpd::parse_status::too_large;
      if (st == httpd::parse_status::incomplete) {
        if (!flush()) return false;
        if (!split) {
          split = true;
          head_deadline = moss::detail::deadline_after(head_timeout);
        }
        reading_ = true;
        ssize_t n = receive_until(b_->in + have, sizeof b_->in - have, head_deadline);
        reading_ = false;
        if (n == timed_out) {
          log("-", "-", 408, error_reply(408, "", false, false));
          flush();
          linger_close();
          return false;
        }
        if (n <= 0) return false;
        have += static_cast<std::size_t>(n);
        continue;
      }
      split = false;
      waiting_since_ = ++worker.waits;
      if (!answer(st, req)) return false;
      std::memmove(b_->in, b_->in + req.head_size, have - req.head_size);
      have -= req.head_size;
    }
  }

 private:
  void take_buffers() {
    if (b_ == nullptr) b_ = buffers.take();
  }
  void release_buffers() noexcept {
    if (b_ != nullptr) buffers.give_back(std::exchange(b_, nullptr));
  }

  // wait_for_request() parks until the next request's first bytes (or the
  // end of the connection) can be read; false if the connection is over.
  bool wait_for_request() {
    reading_ = true;
    int r;
    do r = moss::io::wait_readable(fd_);
    while (r != 0 && errno == EINTR);
    reading_ = false;
    drained_ = false;
    return r == 0;
  }

  // answer() answers one parsed request (or refuses a bad one); false when
  // the connection is over.
  [[gnu::noinline]] bool answer(httpd::parse_status st, const httpd::request& req) {
    if (st != httpd::parse_status::complete) {
      int code = st == httpd::parse_status::too_large ? 431 : st == httpd::parse_status::bad_version ? 505 : 400;
      log("-", "-", code, error_reply(code, "", false, false));
      flush();
      linger_close();
      return false;
    }
    bool keep = handle(req) && req.keep_alive && !req.has_body && !stopping.load(std::memory_order_relaxed);
    if (!keep) {
      flush();
      if (req.has_body) linger_close();
      return false;
    }
    return true;
  }

  // receive() reads what is there without waiting: would_block if nothing.
  // A read shorter than asked leaves the socket empty (TCP returns less
  // only when its receive queue ran dry), so any later bytes are a new
  // event for the idle set: drained_ says so.
  static constexpr ssize_t would_block = -3;
  ssize_t receive(char* p, std::size_t len) {
    for (;;) {
      ssize_t n = moss::io::recv(fd_, p, len, MSG_DONTWAIT);
      if (n >= 0) {
        seen_ = worker.tick;
        drained_ = static_cast<std::size_t>(n) < len;
        return n;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        drained_ = true;
        return would_block;
      }
      if (errno != EINTR) return -1;
    }
  }

  // receive_until() is receive() waiting for bytes until deadline:
  // timed_out then.
  static constexpr ssize_t timed_out = -2;
  ssize_t receive_until(char* p, std::size_t len, moss::io::clock::time_point deadline) {
    for (;;) {
      if (moss::io::wait_readable(fd_, deadline) != 0) return errno == ETIMEDOUT ? timed_out : -1;
      ssize_t n = receive(p, len);
      if (n != would_block) return n;
    }
  }

  bool send_all(const char* p, std::size_t len, int flags = 0) {
    while (len > 0) {
      ssize_t n = moss::io::send(fd_, p, len, flags | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      seen_ = worker.tick;
      p += n;
      len -= static_cast<std::size_t>(n);
    }
    return true;
  }

  bool flush() {
    if (b_ == nullptr || b_->out.empty()) return true;
    bool ok = send_all(b_->out.data(), b_->out.size());
    b_->out.clear();
    return ok;
  }

  // linger_close() ends a connection we refuse mid-request: stop sending,
  // then read and drop what the client is still sending (bounded), so the
  // kernel does not answer those bytes with a reset that could destroy our
  // reply before the client reads it.
  void linger_close() {
    ::shutdown(fd_, SHUT_WR);
    auto deadline = moss::detail::deadline_after(2s);
    std::size_t dropped = 0;
    while (dropped < (1u << 20)) {
      if (moss::io::wait_readable(fd_, deadline) != 0) return;
      ssize_t n = moss::io::recv(fd_, b_->in, sizeof b_->in, MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) return;
      if (n > 0) dropped += static_cast<std::size_t>(n);
    }
  }

  void head(int status, const char* type, std::uint64_t length, bool keep, const char* extra = "") {
    char h[512];
    int n = std::snprintf(h, sizeof h,
                          "HTTP/1.1 %d %s\r\nServer: moss-httpd/0.1.0\r\nDate: %s\r\nContent-Type: %s\r\n"
                          "Content-Length: %llu\r\n%s%s\r\n",
                          status, reason(status), date_now(), type, static_cast<unsigned long long>(length), extra,
                          keep ? "" : "Connection: close\r\n");
    b_->out.append(h, static_cast<std::size_t>(n));
  }

  // error_reply() queues a short plain-text answer; returns its body's
  // size as sent (0 for HEAD).
  std::uint64_t error_reply(int status, const char* extra, bool keep, bool head_only) {
    char body[64];
    int n = std::snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    head(status, "text/plain; charset=utf-8", static_cast<std::uint64_t>(n), keep, extra);
    if (head_only) return 0;
    b_->out.append(body, static_cast<std::size_t>(n));
    return static_cast<std::uint64_t>(n);
  }

  // log() prints one access-log line: client address, local time, the
  // request, the status and the body bytes actually sent.
  void log(std::string_view method, std::string_view target, int status, std::uint64_t bytes) {
    if (!access_log) return;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    char addr[INET6_ADDRSTRLEN] = "-";
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      const void* raw = peer.ss_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
      ::inet_ntop(peer.ss_family, raw, addr, sizeof addr);
    }
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char when[40];
    std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S %z", &tm);
    std::printf("%s [%s] \"%.*s %.*s\" %d %llu\n", addr, when, static_cast<int>(method.size()), method.data(),
                static_cast<int>(target.size()), target.data(), status, static_cast<unsigned long long>(bytes));
  }

  // handle() answers one parsed request; false when the connection must
  // close (a send failed).
  bool handle(const httpd::request& req) {
    const bool is_head = req.method == "HEAD";
    const bool keep = req.keep_alive && !req.has_body;
    if (!is_head && req.method != "GET") {
      log(req.method, req.target, 405, error_reply(405, "Allow: GET, HEAD\r\n", keep, false));
      return true;
    }
    if (req.target == "/hello") {
      if (keep) {
        static constexpr std::string_view hello =
            "HTTP/1.1 200 OK\r\nServer: moss-httpd/0.1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 6\r\n\r\nhello\n";
        b_->out.append(is_head ? hello.substr(0, hello.size() - 6) : hello);
      } else {
        head(200, "text/plain; charset=utf-8", 6, false);
        if (!is_head) b_->out.append("hello\n");
      }
      log(req.method, req.target, 200, is_head ? 0 : 6);
      return true;
    }
    std::string path;
    bool dir_form = false;
    auto ps = httpd::decode_path(req.target, path, dir_form);
    if (ps != httpd::path_status::ok) {
      int code = ps == httpd::path_status::escapes ? 403 : 400;
      log(req.method, req.target, code, error_reply(code, "", keep, is_head));
      return true;
    }
    return send_file(req, path, dir_form, is_head, keep);
  }

  // redirect_to_dir() answers a directory asked for without its trailing
  // slash with 301 to the same path with it, so that the index page's
  // relative links resolve inside the directory.
  void redirect_to_dir(const httpd::request& req, bool is_head, bool keep) {
    std::string_view t = req.target;
    auto query = t.find('?');
    std::string extra = "Location: ";
    extra.append(t.substr(0, query)).append("/");
    if (query != std::string_view::npos) extra.append(t.substr(query));
    extra += "\r\n";
    log(req.method, req.target, 301, error_reply(301, extra.c_str(), keep, is_head));
  }

  bool send_file(const httpd::request& req, const std::string& path, bool dir_form, bool is_head, bool keep) {
    std::string full = real_root + path;
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (!dir_form && path != "/") {
        redirect_to_dir(req, is_head, keep);
        return true;
      }
      full += "/index.html";
    }
    int code = 0;
    char resolved[PATH_MAX];
    if (::realpath(full.c_str(), resolved) == nullptr) {
      code = errno == EACCES ? 403 : 404;
    } else {
      std::string_view r(resolved);
      // The realpath check: whatever symlinks the path went through, the
      // file must lie under the root.
      if (!(r.size() > real_root.size() && r.substr(0, real_root.size()) == real_root && r[real_root.size()] == '/'))
        code = 403;
    }
    int file = -1;
    if (code == 0) {
      file = ::open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      // Out of fds: make room, for a few seconds at most, then 503.
      for (auto until = moss::detail::deadline_after(3s);
           file < 0 && (errno == EMFILE || errno == ENFILE) && moss::io::clock::now() < until;) {
        make_room();
        file = ::open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      }
      if (file < 0) code = errno == EACCES ? 403 : errno == EMFILE || errno == ENFILE ? 503 : 404;
    }
    if (code == 0 && (::fstat(file, &st) != 0 || !S_ISREG(st.st_mode))) code = 403;
    if (code != 0) {
      if (file >= 0) ::close(file);
      log(req.method, req.target, code, error_reply(code, "", keep, is_head));
      return true;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    // Last-Modified, and the part of the file the Range field asks for.
    char extra[160], modified[32];
    byte_range r{0, size - 1};
    auto kind = req.range.empty() ? range_kind::whole : parse_range(req.range, size, r);
    if (kind == range_kind::unsatisfiable) {
      ::close(file);
      std::snprintf(extra, sizeof extra, "Content-Range: bytes */%llu\r\n", static_cast<unsigned long long>(size));
      log(req.method, req.target, 416, error_reply(416, extra, keep, is_head));
      return true;
    }
    int used = std::snprintf(extra, sizeof extra, "Accept-Ranges: bytes\r\nLast-Modified: %s\r\n",
                             http_date(st.st_mtime, modified));
    if (kind == range_kind::part)
      std::snprintf(extra + used, sizeof extra - static_cast<std::size_t>(used), "Content-Range: bytes %llu-%llu/%llu\r\n",
                    static_cast<unsigned long long>(r.first), static_cast<unsigned long long>(r.last),
                    static_cast<unsigned long long>(size));
    const std::uint64_t length = kind == range_kind::part ? r.last - r.first + 1 : size;
    const int status = kind == range_kind::part ? 206 : 200;
    head(status, content_type(resolved), length, keep, extra);
    std::uint64_t sent = 0;
    bool ok = is_head || length == 0 || send_body(file, r.first, length, sent);
    ::close(file);
    log(req.method, req.target, status, sent);
    return ok;
  }

  // send_body() sends the queued head, then length bytes of file from
  // offset first; sent counts the file bytes that went out.
  bool send_body(int file, std::uint64_t first, std::uint64_t length, std::uint64_t& sent) {
    bool ok = send_all(b_->out.data(), b_->out.size(), MSG_MORE);
    b_->out.clear();
    auto off = static_cast<off_t>(first);
    // In slices, so a client that reads slowly but steadily shows
    // progress to the reaper.
    constexpr std::uint64_t slice = 256 * 1024;
    while (ok && sent < length) {
      std::uint64_t left = length - sent;
      ssize_t n = moss::io::sendfile(fd_, file, &off, static_cast<std::size_t>(left < slice ? left : slice));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok = false;  // the file shrank, or the peer left
      } else {
        sent += static_cast<std::uint64_t>(n);
        seen_ = worker.tick;
      }
    }
    return ok;
  }

  int fd_;
  connection* prev_ = nullptr;  // worker.head's list
  connection* next_ = nullptr;
  unsigned long seen_;  // worker.tick at the last progress
  unsigned long long waiting_since_;  // worker.waits when this connection began to wait for a request
  bool reading_ = false;  // waiting for (more of) a request head: may be shut down to make room
  bool reaped_ = false;
  bool in_idle_set_ = false;  // registered with the idle set (for good)
  bool resting_ = false;  // in the idle set, no task serving it
  bool edge_ = false;     // the idle set saw an event while a task served it
  bool drained_ = false;  // the last read left the socket empty
  connection* next_ready_ = nullptr;  // the worker's ready list
  request_buffers* b_ = nullptr;  // while a request is read or answered
};

// The idle set (see the file comment) and the ready list: connections the
// set found readable, in order, waiting for a server task. A server task
// serves them one after another and ends when the list is empty, so a burst
// of requests costs one or two spawns, not one a connection. Before each
// connection it makes sure a standby task exists while others wait behind
// it: a request that parks the server (a slow client, a large file) then
// holds up no one. hand_back() puts a connection into the set, registering
// it the first time; it closes when the set is gone (stopping) or refuses it.
void hand_back(std::unique_ptr<connection> c) {
  if (worker.idle_set < 0) return;  // stopping: the set is gone, c closes
  if (!c->enter_idle_set()) {
    std::fprintf(stderr, "%s: cannot watch a connection: %s\n", prog, std::strerror(errno));
    return;  // c closes
  }
  c.release()->rest();
}

void push_ready(connection* c) noexcept {
  c->set_next_ready(nullptr);
  if (worker.ready_tail != nullptr) worker.ready_tail->set_next_ready(c);
  else worker.ready_head = c;
  worker.ready_tail = c;
}

std::unique_ptr<connection> pop_ready() noexcept {
  connection* c = worker.ready_head;
  if (c != nullptr) {
    worker.ready_head = c->next_ready();
    if (worker.ready_head == nullptr) worker.ready_tail = nullptr;
  }
  return std::unique_ptr<connection>(c);
}

// serve_connection() is a task's whole part in one connection: serve it,
// then hand it to the idle set if it rests.
void serve_connection(std::unique_ptr<connection> c) {
  if (c->serve()) hand_back(std::move(c));
}

void serve_ready();

void ensure_standby() {
  if (worker.ready_head == nullptr || worker.standby) return;
  worker.standby = true;
  moss::spawn(serve_ready);
}

void serve_ready() {
  worker.standby = false;
  while (auto c = pop_ready()) {
    ensure_standby();
    serve_connection(std::move(c));
  }
}

// watch_idle() is the idle set's task: it moves each resting connection that
// becomes readable (closed by its peer, or shut down by the reaper,
// included) to the ready list. When it ends (the worker stops), the
// connections resting or ready close.
void watch_idle() {
  struct close_idle {
    ~close_idle() {
      ::close(std::exchange(worker.idle_set, -1));
      while (pop_ready()) {
      }
      for (connection* c = worker.head; c != nullptr;) {
        connection* next = c->next_in_worker();
        if (c->resting()) delete c;
        c = next;
      }
    }
  } on_exit;
  constexpr int batch = 64;
  epoll_event events[batch];
  for (;;) {
    int n = ::epoll_wait(worker.idle_set, events, batch, 0);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "%s: watching idle connections: %s\n", prog, std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<connection*>(events[i].data.ptr);
      if (c->wake()) push_ready(c);
    }
    if (n == batch) continue;
    ensure_standby();
    if (moss::io::wait_readable(worker.idle_set) != 0 && errno != EINTR) {
      std::fprintf(stderr, "%s: watching idle connections: %s\n", prog, std::strerror(errno));
      return;
    }
  }
}

// admit() takes a new connection: a task of its own below the threshold,
// else the idle set (bytes already there are reported at once).
void admit(int fd) {
  auto c = std::make_unique<connection>(fd);
  if (worker.connections >= rest_above) return hand_back(std::move(c));
  moss::spawn([c = std::move(c)]() mutable { serve_connection(std::move(c)); });
}

// open_listener() makes one SO_REUSEPORT listener on addr; errors name it.
// Non-blocking: accept_loop waits for it with wait_readable, so moss::io
// never sets O_NONBLOCK around each accept (two ioctls a connection).
int open_listener(const sockaddr* addr, socklen_t len, const std::string& shown) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, addr, len) != 0 || ::listen(fd, 4096) != 0) {
    int e = errno;
    ::close(fd);
    throw std::system_error(e, std::generic_category(), "cannot listen on " + shown);
  }
  return fd;
}

// accept_loop() is a worker's main: accept until stopping into the idle
// set, whose task it starts, and the reaper. When it returns, moss::run
// kills the tasks left: the connections being served, the idle set's
// (closing those at rest) and the reaper.
void accept_loop(int listener) {
  worker.idle_set = ::epoll_create1(EPOLL_CLOEXEC);
  if (worker.idle_set < 0) {
    std::fprintf(stderr, "%s: epoll_create1: %s\n", prog, std::strerror(errno));
    return;
  }
  moss::event closed;
  worker.closed = &closed;
  struct unhook {
    ~unhook() { worker.closed = nullptr; }
  } unhook_on_return;
  moss::spawn(watch_idle);
  moss::spawn([] {
    for (;;) {
      moss::sleep(reap_every);
      ++worker.tick;
      connection::reap();
    }
  });
  for (;;) {
    int fd = moss::io::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (moss::io::wait_readable(listener) != 0 && errno != EINTR) {
        std::fprintf(stderr, "%s: waiting for connections: %s\n", prog, std::strerror(errno));
        return;
      }
      continue;
    }
    if (fd < 0) {
      if (stopping.load()) return;
      if (errno == EMFILE || errno == ENFILE) {
        connection::make_room();
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "%s: accept: %s\n", prog, std::strerror(errno));
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    admit(fd);
  }
}

const char* const usage_text =
    "usage: moss-httpd [--port P] [--host H] [--workers N] [--idle-timeout S]\n"
    "                  [--head-timeout S] [--rest-above N] [--access-log] [ROOT]\n"
    "\n"
    "Serve the directory ROOT (default: the current directory) over HTTP/1.1\n"
    "with keep-alive: GET and HEAD, single byte ranges (Range), index.html for\n"
    "directories (a directory named without its trailing slash is redirected\n"
    "to it, 301), absolute-form targets (http://host/path), and /hello,\n"
    "which answers \"hello\" (for benchmarks). Ctrl-C stops it. When it runs out\n"
    "of file descriptors, the connections that have waited longest for a\n"
    "request are closed to make room for new ones.\n"
    "\n"
    "  --port P       TCP port (default 8000; 0 picks a free one)\n"
    "  --host H       address to listen on (default 127.0.0.1)\n"
    "  --workers N    N threads, each with its own SO_REUSEPORT listener (default 1)\n"
    "  --idle-timeout S\n"
    "                 close a connection that sends or reads nothing for S seconds\n"
    "                 (default 60; checked once a second)\n"
    "  --head-timeout S\n"
    "                 answer 408 and close a connection whose request head (request\n"
    "                 line and headers) is still incomplete S seconds after its\n"
    "                 first bytes came (default 10)\n"
    "  --rest-above N from N connections on (per worker; default 512), a connection\n"
    "                 waiting for its next request holds no task (less memory, a\n"
    "                 little more CPU with few connections)\n"
    "  --access-log   print a line per request on stdout: ADDRESS [LOCAL TIME]\n"
    "                 \"METHOD TARGET\" STATUS BYTES, BYTES being the body bytes sent\n"
    "  --help, --version\n"
    "\n"
    "examples:\n"
    "  moss-httpd ./public\n"
    "  moss-httpd --host 0.0.0.0 --port 8080 --workers 4 /srv/www\n"
    "  curl -i http://127.0.0.1:8000/hello\n";

const sample::args cli(prog, usage_text);

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  auto operands = cli.parse(argc, argv,
                            {{"port", 0, true}, {"host", 0, true}, {"workers", 0, true}, {"idle-timeout", 0, true},
                             {"head-timeout", 0, true}, {"rest-above", 0, true}, {"access-log", 0, false}},
                            [&](std::string_view opt, const char* v) {
                              if (opt == "--port") cfg.port = static_cast<int>(cli.number(opt, v, 0, 65535));
                              else if (opt == "--host") cfg.host = v;
                              else if (opt == "--workers") cfg.workers = static_cast<int>(cli.number(opt, v, 1, 1024));
                              else if (opt == "--idle-timeout") cfg.idle_seconds = static_cast<int>(cli.number(opt, v, 1, 86400));
                              else if (opt == "--head-timeout") cfg.head_seconds = static_cast<int>(cli.number(opt, v, 1, 86400));
                              else if (opt == "--rest-above") cfg.rest_above = cli.number(opt, v, 0, 1L << 30);
                              else cfg.access_log = true;
                            });
  if (operands.size() > 1) cli.fail("unexpected argument \"" + operands[1] + "\": only one ROOT may be given");
  if (!operands.empty()) cfg.root = operands[0];
  std::signal(SIGPIPE, SIG_IGN);
  access_log = cfg.access_log;
  idle_ticks = static_cast<unsigned long>(std::chrono::seconds(cfg.idle_seconds) / reap_every);
  head_timeout = std::chrono::seconds(cfg.head_seconds);
  rest_above = static_cast<unsigned long>(cfg.rest_above);

  char resolved[PATH_MAX];
  struct stat st {};
  if (::realpath(cfg.root.c_str(), resolved) == nullptr || ::stat(resolved, &st) != 0) {
    std::fprintf(stderr, "%s: cannot serve \"%s\": %s\n", prog, cfg.root.c_str(), std::strerror(errno));
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "%s: cannot serve \"%s\": not a directory\n", prog, cfg.root.c_str());
    return 1;
  }
  real_root = resolved;
  if (real_root == "/") real_root.clear();  // so real_root + "/x" is "/x"

  std::vector<int> listeners;
  int port = cfg.port;
  try {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* ai = nullptr;
    int rc = ::getaddrinfo(cfg.host.c_str(), "0", &hints, &ai);
    if (rc != 0) {
      std::fprintf(stderr, "%s: bad host \"%s\": %s\n", prog, cfg.host.c_str(), gai_strerror(rc));
      return 2;
    }
    sockaddr_storage addr{};
    std::memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    socklen_t alen = ai->ai_addrlen;
    ::freeaddrinfo(ai);
    auto set_port = [&](int p) {
      if (addr.ss_family == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(static_cast<std::uint16_t>(p));
      else
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<std::uint16_t>(p));
    };
    set_port(port);
    std::string shown = cfg.host + ":" + std::to_string(port);
    for (int w = 0; w < cfg.workers; ++w) {
      listeners.push_back(open_listener(reinterpret_cast<sockaddr*>(&addr), alen, shown));
      if (w == 0 && port == 0) {
        // Port 0: the first listener's port is the one every worker shares.
        sockaddr_storage got{};
        socklen_t glen = sizeof got;
        ::getsockname(listeners[0], reinterpret_cast<sockaddr*>(&got), &glen);
        port = ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
        set_port(port);
      }
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    for (int fd : listeners) ::close(fd);
    return 1;
  }
  if (access_log) std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::atomic<int> status{0};
  std::vector<std::thread> threads;
  auto run_worker = [&status](int listener) {
    try {
      moss::run([listener] { accept_loop(listener); });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", prog, e.what());
      status = 1;
    }
  };
  for (int w = 1; w < cfg.workers; ++w) threads.emplace_back(run_worker, listeners[static_cast<std::size_t>(w)]);
  try {
    moss::run([&] {
      // Stopping: shutting a listener down wakes its accept (on whichever
      // hub waits in it) with an error, and each worker then returns.
      auto stop = [&] {
        stopping.store(true);
        for (int fd : listeners) ::shutdown(fd, SHUT_RDWR);
      };
      auto on_int = moss::signal_handler(SIGINT, stop);
      auto on_term = moss::signal_handler(SIGTERM, stop);
      // Announced only now, so a Ctrl-C that follows it is always handled.
      bool v6 = cfg.host.find(':') != std::string::npos;
      std::printf("%s: serving %s on http://%s%s%s:%d/ with %d worker%s\n", prog,
                  real_root.empty() ? "/" : real_root.c_str(), v6 ? "[" : "", cfg.host.c_str(), v6 ? "]" : "", port,
                  cfg.workers, cfg.workers == 1 ? "" : "s");
      std::fflush(stdout);
      accept_loop(listeners[0]);
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    status = 1;
  }
  for (auto& t : threads) t.join();
  for (int fd : listeners) ::close(fd);
  std::fprintf(stderr, "%s: stopped\n", prog);
  return status;
}

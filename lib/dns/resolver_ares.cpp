// resolver_ares.cpp: the `ares` resolver — one c-ares channel per hub.
//
// The channel's sockets are made, connected, read, written and closed with
// raw system calls (ares_set_socket_functions), so a patch layer never sees
// them; the hub's poller watches them and one hub timer, re-armed from
// ares_timeout(), drives c-ares' retries and timeouts. A lookup is a heap
// `request` shared by the greenlet that waits for it and the c-ares callback
// that completes it: a greenlet killed while it waits abandons its request,
// and the callback frees it when c-ares is done with it. While a greenlet
// waits, it counts in the hub's keepalive.
//
// /etc/hosts: c-ares 1.18 opens and parses the file on every lookup. A
// hub's channel keeps an index of the names the file mentions instead
// (hosts_index); a name the file cannot answer goes straight to DNS, and
// only the others make c-ares read the file.
//
// Fork: the channels are the hub's dns slot. A forked child leaves them as
// they are (their lookups belong to greenlets left behind, and c-ares must
// not send or read through sockets the parent still uses), closes its copies
// of their sockets, and makes a new channel at its first lookup.
//
// The second half reproduces glibc's conventions on top of c-ares: which
// inputs never touch the network (left to libc itself), the layout of the
// results, canonical names and aliases, and the error codes.
#include "dns/resolver.hpp"

#include "core/hub.hpp"
#include "core/sys.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <mutex>
#include <new>
#include <unordered_set>
#include <utility>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace moss::detail::dns {
namespace {

class channel;

// hosts_index: the names a hosts file may give addresses for. Every
// whitespace-separated token of every line, up to a '#', folded to lower
// case: a superset of the names c-ares compares (with strcasecmp) against
// the name looked up, so a name the index lacks is one the file cannot
// answer. Names it has still go to c-ares, which reads the file itself.
//
// The file is checked (one stat) at most once per second per hub, and read
// again when its device, inode, size, or modification or change time
// differ; a file changed in the last two seconds is read again at the next
// check even if it looks the same, since a second change within one tick
// of the file system's clock leaves those times as they were. So a name
// added to the file is seen within about a second, and a name removed or
// readdressed at once. While the file cannot be indexed (too large, or an
// error other than its absence), every name may be listed.
class hosts_index {
 public:
  explicit hosts_index(const char* path) : path_(path) {}
  // may_list() is false only if the file certainly has no entry for name.
  bool may_list(const char* name);

 private:
  struct identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long mtime_s = 0, mtime_ns = 0, ctime_s = 0, ctime_ns = 0;
    bool operator==(const identity&) const = default;
  };
  static identity identity_of(const struct stat& st) noexcept {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
            st.st_ctim.tv_nsec};
  }
  void refresh();
  void load();

  static constexpr std::size_t max_bytes = std::size_t{64} << 20;
  const char* path_;
  time_point next_check_{};
  identity seen_{};
  bool trusted_ = false;   // seen_ describes the content names_ was built from
  bool complete_ = false;  // names_ lists every token of the file
  std::array<bool, 256> lengths_{};  // lengths_[n]: some token is n bytes long
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const noexcept { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_set<std::string, text_hash, std::equal_to<>> names_;
};

// ascii_lower(): strcasecmp folds at least these.
char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// ends_with_folded(): whether the n bytes at s end with `tail` (lower case)
// but for ASCII case.
bool ends_with_folded(const char* s, std::size_t n, std::string_view tail) noexcept {
  if (n < tail.size()) return false;
  const char* p = s + n - tail.size();
  for (std::size_t i = tail.size(); i-- > 0;)
    if (ascii_lower(p[i]) != tail[i]) return false;
  return true;
}

bool hosts_index::may_list(const char* name) {
  time_point now = clock::now();
  if (now >= next_check_) {
    next_check_ = now + std::chrono::seconds(1);
    refresh();
  }
  if (!complete_) return true;
  std::size_t n = std::strlen(name);
  // c-ares answers "localhost" and names under it itself when the file
  // does not (RFC 6761).
  std::size_t m = n > 0 && name[n - 1] == '.' ? n - 1 : n;
  if (ends_with_folded(name, m, "localhost") && (m == 9 || name[m - 10] == '.')) return true;
  // Names longer than any DNS name go the long way.
  if (n >= lengths_.size()) return true;
  if (!lengths_[n]) return false;  // most names: no token is as long
  char key[256];
  for (std::size_t i = 0; i < n; ++i) {
    // Bytes a locale's strcasecmp might fold in other ways go the long way.
    if (static_cast<unsigned char>(name[i]) >= 0x80) return true;
    key[i] = ascii_lower(name[i]);
  }
  return names_.contains(std::string_view(key, n));
}

void hosts_index::refresh() {
  int saved = errno;  // the caller's
  struct stat st {};
  if (sys::call(SYS_newfstatat, AT_FDCWD, sys::ptr_arg(path_), sys::ptr_arg(&st), 0) != 0) {
    // c-ares finds nothing in a file that is not there.
    bool absent = errno == ENOENT || errno == ENOTDIR;
    names_.clear();
    lengths_.fill(false);
    complete_ = absent;
    trusted_ = false;
  } else if (!trusted_ || !complete_ || !(identity_of(st) == seen_)) {
    load();
  }
  errno = saved;
}

void hosts_index::load() {
  complete_ = trusted_ = false;
  names_.clear();
  lengths_.fill(false);
  int fd = static_cast<int>(sys::call(SYS_openat, AT_FDCWD, sys::ptr_arg(path_), O_RDONLY | O_CLOEXEC));
  if (fd < 0) {
    // Nothing c-ares could read either.
    complete_ = errno == ENOENT || errno == ENOTDIR || errno == EACCES;
    return;
  }
  struct stat st {};
  std::string text;
  bool ok = sys::fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) <= max_bytes;
  if (ok) {
    text.resize(static_cast<std::size_t>(st.st_size) + 1);  // one more byte: a file that grew is read to its end
    std::size_t got = 0;
    for (;;) {
      if (got == text.size()) {
        if (text.size() >= max_bytes) {
          ok = false;
          break;
        }
        text.resize(std::min(max_bytes, text.size() * 2));
      }
      long r = sys::read(fd, text.data() + got, text.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) ok = false;
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    text.resize(got);
  }
  sys::close(fd);
  if (!ok) return;

  // Tokens end at C-locale white space (what c-ares splits on) and at NUL
  // bytes (where c-ares' strings end); a line ends at '\n' and its names at '#'.
  auto separator = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == '\0';
  };
  bool comment = false;
  std::size_t start = std::string::npos;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : '\n';
    bool ends = comment || c == '#' || separator(c);
    if (ends && start != std::string::npos) {
      std::string token = text.substr(start, i - start);
      for (char& t : token) t = ascii_lower(t);
      lengths_[std::min(token.size(), lengths_.size() - 1)] = true;
      names_.insert(std::move(token));
      start = std::string::npos;
    }
    if (c == '\n') comment = false;
    else if (c == '#') comment = true;
    else if (!ends && start == std::string::npos) start = i;
  }
  complete_ = true;
  seen_ = identity_of(st);
  // A change within the file system's clock tick after this read would
  // leave the same times: trust them only once they are old enough.
  auto age = std::chrono::system_clock::now().time_since_epoch() -
             (std::chrono::seconds(std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec)));
  trusted_ = age > std::chrono::seconds(2);
}

// sock: one of a channel's sockets. Records are kept, and reused for the
// same fd number, until the channel dies, so that an event for a socket
// c-ares closed earlier in the same poll finds a valid, closed record.
struct sock final : fd_handler {
  channel* owner = nullptr;
  int fd = -1;
  bool open = false;
  bool tcp = false;
  bool watched = false;     // registered with the poller
  bool want_write = false;  // c-ares waits for the socket to be writable
  void ready(std::uint32_t events) noexcept override;
};

// request: one lookup, from submission to the callback.
struct request {
  channel* owner = nullptr;
  waiter* w = nullptr;     // the greenlet waiting for it, while it waits
  bool done = false;       // the callback has run
  bool abandoned = false;  // nobody waits any more: the callback frees it
  int status = ARES_ECANCELLED;
  ares_addrinfo* ai = nullptr;
  host_entry host;
  int family = AF_UNSPEC;                // of the address a PTR query asks about
  std::array<unsigned char, 16> addr{};
  ~request() {
    if (ai != nullptr) ares_freeaddrinfo(ai);
  }
};

class channel final : public timer {
 public:
  channel(hub_core& h, const moss::dns::settings& s, std::uint64_t gen);
  ~channel();
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  ares_channel get() const noexcept { return ch_; }
  std::uint64_t generation() const noexcept { return gen_; }
  std::size_t outstanding() const noexcept { return outstanding_; }
  // waiting() counts greenlets waiting in run(): each holds a keepalive.
  std::size_t waiting() const noexcept { return waiting_; }
  // abandon() is for a forked child: close this process's copies of the
  // channel's sockets and disarm its timer, without calling c-ares; the
  // channel is then leaked, never used again.
  void abandon() noexcept;
  bool files_first() const noexcept { return lookups_.empty() || lookups_[0] == 'f'; }
  // lookups() is the order of sources c-ares read from nsswitch.conf and
  // host.conf: 'f' for /etc/hosts, 'b' for DNS.
  const std::string& lookups() const noexcept { return lookups_; }
  // files() is a channel that only reads /etc/hosts; c-ares answers from it
  // before the call returns.
  ares_channel files() const noexcept { return files_; }
  // hosts_apart(): the sources are /etc/hosts then DNS, and get() only asks
  // DNS; lookup_name() consults files() first for names hosts() may list.
  bool hosts_apart() const noexcept { return hosts_apart_; }
  hosts_index& hosts() noexcept { return hosts_; }

  // run() submits a lookup — start(request*) calls c-ares with the request
  // as the callback's argument — and waits until the callback has run.
  template <class Start>
  std::unique_ptr<request> run(Start start);
  // finish() is what every c-ares callback ends with.
  static void finish(request* q) noexcept;

  // sent() is called after anything that may have made c-ares send
  // queries (submitting, processing events), with the time read before it.
  // c-ares gives every query it sends at least the first try's timeout, so
  // a timer due by then covers the new deadlines without asking
  // ares_timeout(), which walks every query in flight; a timer that fires
  // early costs one such walk. The timer goes when the last lookup ends,
  // so it never holds back the hub's loop_exit.
  void sent(time_point before) noexcept;
  // soon() asks for pending write kicks, and an exact re-arm, at the hub's
  // next timer pass.
  void soon() noexcept;
  void fire() noexcept override;

  sock* find(int fd) noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < socks_.size() ? socks_[static_cast<std::size_t>(fd)].get()
                                                                    : nullptr;
  }

 private:
  void rearm() noexcept;

  static ares_socket_t on_socket(int domain, int type, int protocol, void* self) noexcept;
  static int on_close(ares_socket_t fd, void* self) noexcept;
  static int on_connect(ares_socket_t fd, const sockaddr* addr, ares_socklen_t len, void* self) noexcept;
  static ares_ssize_t on_recvfrom(ares_socket_t fd, void* buf, std::size_t n, int flags, sockaddr* from,
                                  ares_socklen_t* fromlen, void* self) noexcept;
  static ares_ssize_t on_sendv(ares_socket_t fd, const iovec* iov, int n, void* self) noexcept;
  static void on_sock_state(void* self, ares_socket_t fd, int readable, int writable) noexcept;

  static const ares_socket_functions functions;

  hub_core& hub_;
  ares_channel ch_ = nullptr;
  std::uint64_t gen_;
  std::chrono::milliseconds first_try_;  // the timeout of a query's first try
  std::size_t outstanding_ = 0;
  std::size_t waiting_ = 0;
  ares_channel files_ = nullptr;
  std::string lookups_ = "fb";
  bool hosts_apart_ = false;
  hosts_index hosts_{"/etc/hosts"};  // c-ares' PATH_HOSTS
  bool deferred_ = false;        // the timer is armed by soon(), not by a c-ares deadline
  std::vector<std::unique_ptr<sock>> socks_;  // by fd
  std::vector<int> write_kicks_;  // sockets that started wanting to write
};

const ares_socket_functions channel::functions = {&channel::on_socket, &channel::on_close, &channel::on_connect,
                                                  &channel::on_recvfrom, &channel::on_sendv};

channel::channel(hub_core& h, const moss::dns::settings& s, std::uint64_t gen)
    : hub_(h), gen_(gen), first_try_(s.timeout) {
  static std::once_flag library;
  std::call_once(library, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  ares_options o{};
  o.sock_state_cb = &channel::on_sock_state;
  o.sock_state_cb_data = this;
  o.timeout = static_cast<int>(s.timeout.count());
  o.tries = s.tries;
  int opts = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int rc = ares_init_options(&ch_, &o, opts);
  if (rc == ARES_ENOMEM) throw std::bad_alloc();
  if (rc != ARES_SUCCESS) throw moss::error(std::string("moss: cannot make a c-ares channel: ") + ares_strerror(rc));

  // Whether /etc/hosts comes before DNS (c-ares read nsswitch.conf and
  // host.conf): gethostbyname then takes hosts entries, aliases included,
  // from the file first, as glibc's "files" source does.
  ares_options saved{};
  int mask = 0;
  if (ares_save_options(ch_, &saved, &mask) == ARES_SUCCESS) {
    if (saved.lookups != nullptr) lookups_ = saved.lookups;
    ares_destroy_options(&saved);
  }
  if (lookups_ == "fb") {
    // The usual order: the file, then DNS. The channel that queries DNS
    // leaves the file to lookup_name(), which reads it only for names the
    // index may list.
    ares_channel dns = nullptr;
    o.lookups = const_cast<char*>("b");
    rc = ares_init_options(&dns, &o, opts | ARES_OPT_LOOKUPS);
    if (rc == ARES_SUCCESS) {
      ares_destroy(ch_);
      ch_ = dns;
      hosts_apart_ = true;
    }
  }
  ares_set_socket_functions(ch_, &functions, this);
  ares_options fo{};
  fo.lookups = const_cast<char*>("f");
  rc = ares_init_options(&files_, &fo, ARES_OPT_LOOKUPS);
  if (rc != ARES_SUCCESS) {
    ares_destroy(ch_);
    if (rc == ARES_ENOMEM) throw std::bad_alloc();
    throw moss::error(std::string("moss: cannot make a c-ares channel: ") + ares_strerror(rc));
  }
  // Sorting AF_UNSPEC answers from the file makes sockets: raw ones too.
  ares_set_socket_functions(files_, &functions, this);

  if (!s.servers.empty()) {
    std::vector<server> list = parse_servers(s.servers, "moss::dns");
    std::vector<ares_addr_port_node> nodes(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      nodes[i].next = i + 1 < list.size() ? &nodes[i + 1] : nullptr;
      nodes[i].family = list[i].family;
      std::memcpy(list[i].family == AF_INET6 ? static_cast<void*>(&nodes[i].addr.addr6)
                                             : static_cast<void*>(&nodes[i].addr.addr4),
                  list[i].addr.data(), addr_size(list[i].family));
      nodes[i].udp_port = nodes[i].tcp_port = list[i].port;
    }
    rc = ares_set_servers_ports(ch_, nodes.data());
    if (rc != ARES_SUCCESS) {
      ares_destroy(ch_);
      ares_destroy(files_);
      throw moss::error(std::string("moss: cannot set the DNS servers \"") + s.servers + "\": " + ares_strerror(rc));
    }
  }
}

channel::~channel() {
  // Callbacks of what is still in flight run now, with ARES_EDESTRUCTION;
  // sockets close through on_close.
  ares_destroy(ch_);
  ares_destroy(files_);
  if (armed()) hub_.timers.remove(*this);
}

template <class Start>
std::unique_ptr<request> channel::run(Start start) {
  auto* q = new request;
  q->owner = this;
  ++outstanding_;
  ++hub_.keepalive;
  time_point before = clock::now();
  start(q);  // the callback may run inside, for answers c-ares has at hand
  if (!q->done) {
    sent(before);
    waiter w;
    q->w = &w;
    ++waiting_;
    try {
      w.wait();
      --waiting_;
    } catch (...) {
      --waiting_;
      --hub_.keepalive;
      q->w = nullptr;
      if (q->done) delete q;
      else q->abandoned = true;
      throw;
    }
    q->w = nullptr;
  }
  --hub_.keepalive;
  return std::unique_ptr<request>(q);
}

void channel::abandon() noexcept {
  for (auto& s : socks_)
    if (s && s->open) {
      sys::close(s->fd);
      s->open = s->watched = s->want_write = false;
    }
  if (armed()) hub_.timers.remove(*this);
}

void channel::finish(request* q) noexcept {
  channel& c = *q->owner;
  if (--c.outstanding_ == 0 && c.armed() && c.write_kicks_.empty()) c.hub_.timers.remove(c);
  if (q->abandoned) {
    delete q;
    return;
  }
  q->done = true;
  if (q->w != nullptr) q->w->wake();
}

void channel::sent(time_point before) noexcept {
  if (outstanding_ == 0) return;
  time_point due = before + first_try_;
  if (armed() && deadline_ <= due) return;
  deferred_ = false;
  hub_.timers.add(*this, due);
}

void channel::soon() noexcept {
  if (armed() && deferred_) return;
  deferred_ = true;
  hub_.timers.add(*this, time_point{});  // the earliest deadline there is: the next timer pass
}

void channel::fire() noexcept {
  if (!write_kicks_.empty()) {
    // A socket that starts wanting to write may already be writable, and
    // the edge-triggered poller will not say so again: try the write now.
    std::vector<int> kicks;
    kicks.swap(write_kicks_);
    for (int fd : kicks)
      if (sock* s = find(fd); s != nullptr && s->open && s->want_write) ares_process_fd(ch_, ARES_SOCKET_BAD, fd);
  }
  if (deferred_) deferred_ = false;
  else ares_process_fd(ch_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // a deadline passed: retries, timeouts
  rearm();
}

void channel::rearm() noexcept {
  if (!write_kicks_.empty()) {  // kicks queued while firing: another pass now
    deferred_ = true;
    hub_.timers.add(*this, time_point{});
    return;
  }
  deferred_ = false;
  timeval tv{};
  timeval* t = ares_timeout(ch_, nullptr, &tv);
  if (t == nullptr) {
    if (armed()) hub_.timers.remove(*this);
    return;
  }
  hub_.timers.add(*this, clock::now() + std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec));
}

void sock::ready(std::uint32_t events) noexcept {
  if (!open) return;
  channel& c = *owner;
  bool rd = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  bool wr = want_write && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
  if (!rd && !wr) return;
  int f = fd;
  time_point before = clock::now();
  ares_process_fd(c.get(), rd ? f : ARES_SOCKET_BAD, wr ? f : ARES_SOCKET_BAD);
  // c-ares drains a UDP socket in one call but reads a TCP stream one chunk
  // at a time, and the poller reports only edges: keep reading while bytes
  // wait (this record stays valid; `open` says whether c-ares closed it).
  for (int round = 0; rd && tcp && open && fd == f && round < 1024; ++round) {
    int avail = 0;
    if (sys::ioctl(f, FIONREAD, &avail) != 0 || avail <= 0) break;
    ares_process_fd(c.get(), f, ARES_SOCKET_BAD);
  }
  c.sent(before);
}

// The socket functions: raw system calls, never a libc name a patch layer
// may interpose. c-ares does not configure sockets it did not make itself,
// so they are made non-blocking and close-on-exec here.
ares_socket_t channel::on_socket(int domain, int type, int protocol, void* self) noexcept {
  auto* c = static_cast<channel*>(self);
  int fd = sys::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ARES_SOCKET_BAD;
  try {
    auto i = static_cast<std::size_t>(fd);
    if (i >= c->socks_.size()) c->socks_.resize(i + 1);
    if (!c->socks_[i]) c->socks_[i] = std::make_unique<sock>();
  } catch (const std::bad_alloc&) {
    sys::close(fd);
    errno = ENOMEM;
    return ARES_SOCKET_BAD;
  }
  if ((type & 0xf) == SOCK_DGRAM) {
    // All of a hub's queries to a server share one UDP socket, and a
    // thousand answers can arrive in one burst: the default buffer (about
    // 200 small datagrams) would drop some. The kernel caps the request at
    // net.core.rmem_max.
    int bytes = 4 << 20;
    sys::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  sock& s = *c->socks_[static_cast<std::size_t>(fd)];
  s.owner = c;
  s.fd = fd;
  s.open = true;
  s.tcp = (type & 0xf) == SOCK_STREAM;
  s.watched = false;
  s.want_write = false;
  return fd;
}

int channel::on_close(ares_socket_t fd, void* self) noexcept {
  auto* c = static_cast<channel*>(self);
  if (sock* s = c->find(fd); s != nullptr && s->open) {
    if (s->watched) c->hub_.events.remove(fd);
    s->open = s->watched = s->want_write = false;
  }
  return sys::close(fd);
}

int channel::on_connect(ares_socket_t fd, const sockaddr* addr, ares_socklen_t len, void*) noexcept {
  return sys::connect(fd, addr, len);
}

ares_ssize_t channel::on_recvfrom(ares_socket_t fd, void* buf, std::size_t n, int flags, sockaddr* from,
                                  ares_socklen_t* fromlen, void*) noexcept {
  return sys::recvfrom(fd, buf, n, flags, from, fromlen);
}

ares_ssize_t channel::on_sendv(ares_socket_t fd, const iovec* iov, int n, void*) noexcept {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(n);
  return sys::sendmsg(fd, &m, MSG_NOSIGNAL);  // a reset TCP connection must not raise SIGPIPE
}

void channel::on_sock_state(void* self, ares_socket_t fd, int readable, int writable) noexcept {
  auto* c = static_cast<channel*>(self);
  sock* s = c->find(fd);
  if (s == nullptr || !s->open) return;
  // Registered on c-ares' first interest, so the short-lived sockets it
  // makes to sort addresses never reach the poller. Adding reports the
  // current state, so nothing that arrived before is missed.
  if ((readable != 0 || writable != 0) && !s->watched && c->hub_.events.add(fd, s) == 0) s->watched = true;
  bool wanted = s->want_write;
  s->want_write = writable != 0;
  if (s->want_write && !wanted) {
    try {
      c->write_kicks_.push_back(fd);
    } catch (const std::bad_alloc&) {
      // The next EPOLLOUT edge (or the next timeout) drives it instead.
    }
    c->soon();
  }
}

// state: a hub's channel, plus channels built for older settings that
// still have lookups in flight. The hub's dns slot.
struct state final : hub_slot {
  std::unique_ptr<channel> active;
  std::vector<std::unique_ptr<channel>> retired;

  std::size_t after_fork() noexcept override {
    std::size_t lost = 0;
    auto leave = [&lost](std::unique_ptr<channel>& c) {
      if (!c) return;
      lost += c->waiting();
      c->abandon();
      (void)c.release();  // leaked: its requests live on the stacks of greenlets left behind
    };
    leave(active);
    for (auto& c : retired) leave(c);
    retired.clear();
    return lost;
  }
};

channel& current_channel() {
  hub_core& h = hub_core::current();
  if (h.slot(slot_kind::dns) == nullptr) h.set_slot(slot_kind::dns, new state);
  auto& st = static_cast<state&>(*h.slot(slot_kind::dns));
  if (!st.retired.empty()) std::erase_if(st.retired, [](const auto& c) { return c->outstanding() == 0; });
  std::uint64_t gen = generation();
  if (!st.active || st.active->generation() != gen) {
    if (st.active && st.active->outstanding() > 0) st.retired.push_back(std::move(st.active));
    st.active.reset();
    st.active = std::make_unique<channel>(h, current(), gen);
  }
  return *st.active;
}

// ---- glibc's conventions ---------------------------------------------------------

// Callbacks.
void on_addrinfo(void* arg, int status, int, ares_addrinfo* res) noexcept {
  auto* q = static_cast<request*>(arg);
  q->status = status;
  q->ai = res;
  channel::finish(q);
}

void copy_hostent(const hostent& h, host_entry& e) {
  e.name = h.h_name != nullptr ? h.h_name : "";
  e.family = h.h_addrtype;
  e.aliases.clear();
  e.addrs.clear();
  for (char** a = h.h_aliases; a != nullptr && *a != nullptr; ++a) e.aliases.emplace_back(*a);
  std::size_t len = addr_size(h.h_addrtype);
  for (char** a = h.h_addr_list; a != nullptr && *a != nullptr; ++a) {
    std::array<unsigned char, 16> bytes{};
    std::memcpy(bytes.data(), *a, len);
    e.addrs.push_back(bytes);
  }
}

bool temporary(int status) noexcept {
  switch (status) {
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
    case ARES_EOF:
    case ARES_EFILE:
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
      return true;
    default:
      return false;
  }
}

// What glibc's getaddrinfo returns for a failed name lookup (measured
// against glibc 2.36 and the same server): NXDOMAIN, a malformed or
// over-long name and FORMERR give EAI_NONAME; a name without addresses of
// the family EAI_NODATA; SERVFAIL, REFUSED, NOTIMP and silence EAI_AGAIN.
int eai_of(int status) noexcept {
  switch (status) {
    case ARES_ENODATA: return EAI_NODATA;
    case ARES_ENOMEM: return EAI_MEMORY;
    case ARES_EBADFAMILY: return EAI_FAMILY;
    default: return temporary(status) ? EAI_AGAIN : EAI_NONAME;
  }
}

// canonical_name() follows the CNAME chain from the name c-ares asked for
// (which includes a search domain it appended); a hosts-file answer names
// the entry's official name in a record without an alias. With aliases,
// the owner names along the chain, as glibc's h_aliases lists them.
std::string canonical_name(const ares_addrinfo& ai, const char* node, std::vector<std::string>* aliases) {
  // c-ares keeps the spelling of the name it was given while the question
  // names in the answers match it but for case; a lookup that read the
  // hosts file first had it set from there, one that did not has the
  // answers' spelling: take the caller's in both.
  std::string cur = ai.name != nullptr && strcasecmp(ai.name, node) != 0 ? ai.name : node;
  bool hopped = false;
  for (int hops = 0; hops < 16; ++hops) {
    const ares_addrinfo_cname* next = nullptr;
    for (const ares_addrinfo_cname* c = ai.cnames; c != nullptr && next == nullptr; c = c->next)
      if (c->alias != nullptr && c->name != nullptr && strcasecmp(c->alias, cur.c_str()) == 0) next = c;
    if (next == nullptr) break;
    if (aliases != nullptr) aliases->push_back(cur);
    cur = next->name;
    hopped = true;
  }
  if (!hopped)
    for (const ares_addrinfo_cname* c = ai.cnames; c != nullptr; c = c->next)
      if (c->alias == nullptr && c->name != nullptr) {
        cur = c->name;
        break;
      }
  return cur;
}

struct found_addr {
  int family;
  std::array<unsigned char, 16> bytes;
};

void on_file_addrinfo(void* arg, int status, int, ares_addrinfo* res) noexcept {
  auto* q = static_cast<request*>(arg);
  q->status = status;
  q->ai = res;
  q->done = true;
}

// lookup_name() asks c-ares for the addresses of a name that is not an
// address; status is c-ares'. With the hosts file apart, this is what
// c-ares' own "fb" order does: the file's answer if it has one, else DNS's.
std::unique_ptr<request> lookup_name(const char* name, int family, int flags) {
  channel& c = current_channel();
  ares_addrinfo_hints h{};
  h.ai_family = family;
  h.ai_flags = flags;
  if (c.hosts_apart() && c.hosts().may_list(name)) {
    // The files-only channel has no server to wait for: the callback runs
    // before ares_getaddrinfo returns.
    auto q = std::make_unique<request>();
    ares_getaddrinfo(c.files(), name, nullptr, &h, &on_file_addrinfo, q.get());
    if (q->done && q->status == ARES_SUCCESS) return q;
  }
  return c.run([&](request* q) { ares_getaddrinfo(c.get(), name, nullptr, &h, &on_addrinfo, q); });
}

std::vector<found_addr> addresses(const ares_addrinfo& ai, int family) {
  std::vector<found_addr> out;
  for (const ares_addrinfo_node* n = ai.nodes; n != nullptr; n = n->ai_next) {
    found_addr a{n->ai_family, {}};
    if (n->ai_family == AF_INET) std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr, 4);
    else if (n->ai_family == AF_INET6) std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr, 16);
    else continue;
    if (family == AF_UNSPEC || family == n->ai_family) out.push_back(a);
  }
  return out;
}

// maybe_numeric(): worth asking libc whether it parses node as an address
// (inet_aton's forms start with a digit; IPv6 literals contain a colon).
bool maybe_numeric(const char* node) noexcept {
  return (node[0] >= '0' && node[0] <= '9') || std::strchr(node, ':') != nullptr;
}

struct addrinfo_list {
  addrinfo* head = nullptr;
  ~addrinfo_list() {
    if (head != nullptr) libc::freeaddrinfo(head);
  }
};

// triple: what one address expands to in getaddrinfo's list.
struct triple {
  int socktype;
  int protocol;
  int port_be;
};

// shape_of() asks libc to check the arguments glibc checks before any
// lookup, and for the triples of one address: the entries of the first
// family libc gives for a stand-in host. Without a service, the stand-in is
// a literal address (a numeric stand-in service would drop the SOCK_RAW
// entries glibc gives). For no service or a numeric one the answer depends
// on nothing but the arguments, so it is kept per thread; a named service
// goes to libc each time, as /etc/services may change. A kept shape is
// shared, not copied: the caller holds it across its wait.
using shape_ptr = std::shared_ptr<const std::vector<triple>>;
int shape_of(const char* service, const addrinfo& h, shape_ptr& out) {
  struct key {
    std::string service;
    bool has_service;
    int family, socktype, protocol, flags;
    bool operator==(const key&) const = default;
  };
  struct entry {
    key k;
    int rc;
    shape_ptr shape;
  };
  thread_local std::vector<entry> cache;
  constexpr std::size_t cache_size = 32;

  int flags = (h.ai_flags & ~(AI_CANONNAME | AI_ADDRCONFIG)) | AI_PASSIVE;
  bool cacheable = service == nullptr ||
                   (*service != '\0' && std::all_of(service, service + std::strlen(service), [](char c) { return c >= '0' && c <= '9'; }));
  key k{service != nullptr ? service : "", service != nullptr, h.ai_family, h.ai_socktype, h.ai_protocol, flags};
  if (cacheable)
    for (const entry& e : cache)
      if (e.k == k) {
        out = e.shape;
        return e.rc;
      }

  addrinfo th{};
  th.ai_flags = flags;
  th.ai_family = h.ai_family;
  th.ai_socktype = h.ai_socktype;
  th.ai_protocol = h.ai_protocol;
  addrinfo_list got;
  int rc;
  if (service != nullptr) {
    rc = libc::getaddrinfo(nullptr, service, &th, &got.head);
  } else {
    th.ai_flags |= AI_NUMERICHOST;
    rc = libc::getaddrinfo(h.ai_family == AF_INET6 ? "::" : "0.0.0.0", nullptr, &th, &got.head);
  }
  auto shape = std::make_shared<std::vector<triple>>();
  if (rc == 0) {
    int first = got.head->ai_family;
    for (addrinfo* p = got.head; p != nullptr && p->ai_family == first; p = p->ai_next)
      shape->push_back({p->ai_socktype, p->ai_protocol, reinterpret_cast<const sockaddr_in*>(p->ai_addr)->sin_port});
  }
  out = std::move(shape);
  // EAI_SYSTEM and EAI_MEMORY describe this call, not the arguments.
  if (cacheable && rc != EAI_SYSTEM && rc != EAI_MEMORY) {
    if (cache.size() == cache_size) cache.erase(cache.begin());
    cache.push_back({std::move(k), rc, out});
  }
  return rc;
}

int ares_getaddrinfo_impl(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  // glibc's defaults when hints is null.
  addrinfo defaults{};
  defaults.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;
  defaults.ai_family = AF_UNSPEC;
  const addrinfo& h = hints != nullptr ? *hints : defaults;

  // No host, or only an address: libc answers without any lookup.
  if (node == nullptr || (h.ai_flags & AI_NUMERICHOST) != 0) return libc::getaddrinfo(node, service, hints, res);
  if (maybe_numeric(node)) {
    addrinfo nh = h;
    nh.ai_flags |= AI_NUMERICHOST;
    int rc = libc::getaddrinfo(node, service, &nh, res);
    if (rc != EAI_NONAME) {
      if (rc == 0)
        for (addrinfo* p = *res; p != nullptr; p = p->ai_next) p->ai_flags = h.ai_flags;
      return rc;
    }
  }

  // libc checks flags, family, socket type, protocol and service, and gives
  // the (socket type, protocol, port) triples each address expands to.
  shape_ptr shape;
  int rc = shape_of(service, h, shape);
  if (rc != 0) return rc;

  // AI_ADDRCONFIG: the families this host has addresses of, as libc sees them.
  int family = h.ai_family;
  if ((h.ai_flags & AI_ADDRCONFIG) != 0) {
    addrinfo ah{};
    ah.ai_flags = AI_ADDRCONFIG | AI_PASSIVE | AI_NUMERICSERV;
    ah.ai_family = h.ai_family;
    addrinfo_list configured;
    rc = libc::getaddrinfo(nullptr, "0", &ah, &configured.head);
    if (rc != 0) return rc;
    bool v4 = false, v6 = false;
    for (addrinfo* p = configured.head; p != nullptr; p = p->ai_next) {
      v4 = v4 || p->ai_family == AF_INET;
      v6 = v6 || p->ai_family == AF_INET6;
    }
    if (family == AF_UNSPEC && v4 != v6) family = v4 ? AF_INET : AF_INET6;
  }

  bool v4mapped = family == AF_INET6 && (h.ai_flags & AI_V4MAPPED) != 0;
  int flags = 0;
  if ((h.ai_flags & AI_CANONNAME) != 0) flags |= ARES_AI_CANONNAME;
  // c-ares sorts by RFC 6724 with a socket per address; glibc leaves a
  // lone family's order to DNS too, except for rules that rarely apply.
  if (family == AF_INET) flags |= ARES_AI_NOSORT;
  std::unique_ptr<request> q = lookup_name(node, v4mapped ? AF_UNSPEC : family, flags);
  if (q->status != ARES_SUCCESS || q->ai == nullptr) return eai_of(q->status);

  addrinfo_list out;
  addrinfo** tail = &out.head;
  // emit(): one address's entries, one per triple.
  auto emit = [&](int fam, const unsigned char* bytes) {
    for (const triple& t : *shape) {
      addrinfo* e = addrinfo_entry(fam, bytes, t.socktype, t.protocol, t.port_be, h.ai_flags);
      if (e == nullptr) return false;
      *tail = e;
      tail = &e->ai_next;
    }
    return true;
  };
  if (v4mapped) {
    // IPv6 addresses, and the IPv4 ones as ::ffff:a.b.c.d if there are no
    // IPv6 ones or AI_ALL asks for both; in c-ares' (RFC 6724) order, as
    // glibc sorts the mapped list too.
    std::vector<found_addr> found = addresses(*q->ai, AF_UNSPEC);
    bool any6 = std::any_of(found.begin(), found.end(), [](const found_addr& a) { return a.family == AF_INET6; });
    bool keep4 = !any6 || (h.ai_flags & AI_ALL) != 0;
    std::erase_if(found, [&](const found_addr& a) { return a.family == AF_INET && !keep4; });
    for (found_addr& a : found) {
      if (a.family == AF_INET) {
        std::array<unsigned char, 16> m{};
        m[10] = m[11] = 0xff;
        std::memcpy(m.data() + 12, a.bytes.data(), 4);
        a = {AF_INET6, m};
      }
      if (!emit(a.family, a.bytes.data())) return EAI_MEMORY;
    }
    if (found.empty()) return EAI_NODATA;
  } else {
    // Straight from c-ares' list: no copy of the addresses in between.
    bool any = false;
    for (const ares_addrinfo_node* n = q->ai->nodes; n != nullptr; n = n->ai_next) {
      if (family != AF_UNSPEC && family != n->ai_family) continue;
      const unsigned char* bytes;
      if (n->ai_family == AF_INET) bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr);
      else if (n->ai_family == AF_INET6) bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr);
      else continue;
      any = true;
      if (!emit(n->ai_family, bytes)) return EAI_MEMORY;
    }
    if (!any) return EAI_NODATA;
  }
  if ((h.ai_flags & AI_CANONNAME) != 0 && out.head != nullptr) {
    std::string canon = canonical_name(*q->ai, node, nullptr);
    out.head->ai_canonname = strdup(canon.c_str());  // freed on its own by freeaddrinfo, as glibc's is
    if (out.head->ai_canonname == nullptr) return EAI_MEMORY;
  }
  *res = std::exchange(out.head, nullptr);
  return 0;
}

void no_result(hostent** result, int* h_errnop, int herr) noexcept {
  *result = nullptr;
  *h_errnop = herr;
}

int ares_gethostbyname2_r_impl(const char* name, int af, hostent* ret, char* buf, std::size_t buflen,
                               hostent** result, int* h_errnop) {
  // Other families, and names glibc parses as addresses, never reach the
  // network in glibc either.
  if ((af != AF_INET && af != AF_INET6) || numeric_host_candidate(name))
    return libc::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
  if (*name == '\0') {  // glibc: no recovery possible
    no_result(result, h_errnop, NO_RECOVERY);
    return 0;
  }
  channel& c = current_channel();
  host_entry e;
  if (c.files_first() && c.hosts().may_list(name)) {
    hostent* file = nullptr;
    if (ares_gethostbyname_file(c.get(), name, af, &file) == ARES_SUCCESS && file != nullptr) {
      copy_hostent(*file, e);
      ares_free_hostent(file);
      return pack_hostent(e, ret, buf, buflen, result, h_errnop);
    }
  }
  std::unique_ptr<request> q = lookup_name(name, af, ARES_AI_CANONNAME | ARES_AI_NOSORT);
  int st = q->status;
  if (st == ARES_SUCCESS && q->ai != nullptr) {
    e.family = af;
    e.name = canonical_name(*q->ai, name, &e.aliases);
    for (const found_addr& a : addresses(*q->ai, af)) e.addrs.push_back(a.bytes);
    if (!e.addrs.empty()) return pack_hostent(e, ret, buf, buflen, result, h_errnop);
    st = ARES_ENODATA;
  }
  // glibc 2.36 against the same server: these return 0 with h_errno set,
  // except a temporary failure, which returns EAGAIN.
  if (st == ARES_ENOMEM) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = ENOMEM;
    return ENOMEM;
  }
  if (temporary(st)) {
    no_result(result, h_errnop, TRY_AGAIN);
    errno = EAGAIN;
    return EAGAIN;
  }
  no_result(result, h_errnop, st == ARES_ENODATA ? NO_DATA : st == ARES_EFORMERR ? NO_RECOVERY : HOST_NOT_FOUND);
  return 0;
}

// set_host(): a hostent from c-ares, as glibc would give it: without the
// name repeated among the aliases (c-ares lists every PTR name there).
void set_host(const hostent& h, host_entry& e) {
  copy_hostent(h, e);
  std::erase_if(e.aliases, [&](const std::string& a) { return strcasecmp(a.c_str(), e.name.c_str()) == 0; });
}

void on_ptr(void* arg, int status, int, unsigned char* abuf, int alen) noexcept {
  auto* q = static_cast<request*>(arg);
  q->status = status;
  if (status == ARES_SUCCESS && !q->abandoned) {
    hostent* h = nullptr;
    q->status = ares_parse_ptr_reply(abuf, alen, q->addr.data(), static_cast<int>(addr_size(q->family)), q->family, &h);
    if (q->status == ARES_SUCCESS && h != nullptr) {
      try {
        set_host(*h, q->host);
      } catch (const std::bad_alloc&) {
        q->status = ARES_ENOMEM;
      }
    }
    if (h != nullptr) ares_free_hostent(h);
  }
  channel::finish(q);
}

std::string reverse_name(const unsigned char* a, int family) {
  static const char hex[] = "0123456789abcdef";
  std::string n;
  if (family == AF_INET) {
    for (int i = 3; i >= 0; --i) n += std::to_string(a[i]) + ".";
    return n + "in-addr.arpa";
  }
  for (int i = 15; i >= 0; --i) {
    n += hex[a[i] & 0xf];
    n += '.';
    n += hex[a[i] >> 4];
    n += '.';
  }
  return n + "ip6.arpa";
}

struct file_answer {
  int status = ARES_ENOTFOUND;
  host_entry host;
};

void on_file_host(void* arg, int status, int, hostent* h) noexcept {
  auto* f = static_cast<file_answer*>(arg);
  f->status = status;
  if (status == ARES_SUCCESS && h != nullptr) {
    try {
      set_host(*h, f->host);
    } catch (const std::bad_alloc&) {
      f->status = ARES_ENOMEM;
    }
  }
}

// lookup_address(): the name of an address, from the sources in c-ares'
// order: /etc/hosts, and a PTR query whose failure is reported as such
// (ares_gethostbyaddr would turn a timeout into "not found").
std::unique_ptr<request> lookup_address(const unsigned char* addr, int family) {
  channel& c = current_channel();
  std::unique_ptr<request> last;
  for (char source : c.lookups()) {
    if (source == 'f') {
      file_answer f;
      ares_gethostbyaddr(c.files(), addr, static_cast<int>(addr_size(family)), family, &on_file_host, &f);
      if (f.status != ARES_ENOTFOUND || last == nullptr) {
        last = std::make_unique<request>();
        last->status = f.status;
        last->host = std::move(f.host);
      }
    } else if (source == 'b') {
      std::string name = reverse_name(addr, family);
      last = c.run([&](request* q) {
        q->family = family;
        std::memcpy(q->addr.data(), addr, addr_size(family));
        ares_query(c.get(), name.c_str(), ns_c_in, ns_t_ptr, &on_ptr, q);
      });
    } else {
      continue;
    }
    if (last->status == ARES_SUCCESS) break;
  }
  if (last == nullptr) {
    last = std::make_unique<request>();
    last->status = ARES_ENOTFOUND;
  }
  return last;
}

// unmap(): glibc looks up an IPv4-mapped IPv6 address as the IPv4 one.
void unmap(const unsigned char*& addr, int& family) noexcept {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::memcmp(addr, prefix, sizeof prefix) == 0) {
    addr += 12;
    family = AF_INET;
  }
}

int ares_gethostbyaddr_r_impl(const void* addr, socklen_t len, int type, hostent* ret, char* buf,
                              std::size_t buflen, hostent** result, int* h_errnop) {
  if ((type != AF_INET && type != AF_INET6) || len < addr_size(type)) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = EAFNOSUPPORT;
    return EAFNOSUPPORT;
  }
  const auto* bytes = static_cast<const unsigned char*>(addr);
  if (type == AF_INET6 && std::memcmp(bytes, &in6addr_any, 16) == 0) {  // glibc refuses "::" outright
    no_result(result, h_errnop, HOST_NOT_FOUND);
    return ENOENT;
  }
  unmap(bytes, type);
  std::unique_ptr<request> q = lookup_address(bytes, type);
  if (q->status == ARES_SUCCESS) return pack_hostent(q->host, ret, buf, buflen, result, h_errnop);
  if (q->status == ARES_ENOMEM) {
    no_result(result, h_errnop, NETDB_INTERNAL);
    errno = ENOMEM;
    return ENOMEM;
  }
  // Unlike gethostbyname_r, glibc's gethostbyaddr_r returns 0 even for a
  // temporary failure; h_errno tells.
  no_result(result, h_errnop,
            temporary(q->status) ? TRY_AGAIN : q->status == ARES_ENODATA ? NO_DATA : HOST_NOT_FOUND);
  return 0;
}

constexpr int known_ni_flags = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM | NI_IDN;

int ares_getnameinfo_impl(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                          socklen_t servlen, int flags) {
  bool want_host = host != nullptr && hostlen > 0;
  // Only a host name needs a lookup; everything else is libc's, and so is
  // checking the arguments (flags, family, lengths) the way glibc does.
  if (!want_host || (flags & NI_NUMERICHOST) != 0 || (flags & ~known_ni_flags) != 0 || sa == nullptr ||
      salen < static_cast<socklen_t>(sizeof(sa_family_t)) || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
    return libc::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  int rc = libc::getnameinfo(sa, salen, nullptr, 0, nullptr, 0, flags & ~NI_NAMEREQD);
  if (rc != 0) return rc;

  int family = sa->sa_family;
  const auto* bytes = family == AF_INET
                          ? reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr)
                          : reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
  unmap(bytes, family);
  std::unique_ptr<request> q = lookup_address(bytes, family);
  if (q->status == ARES_SUCCESS) {
    std::string name = q->host.name;
    if ((flags & NI_NOFQDN) != 0) {
      // glibc: cut at the first place the local domain appears after a dot.
      std::string domain = local_domain(ares_resolver());
      std::size_t at = domain.empty() ? std::string::npos : name.find(domain);
      if (at != std::string::npos && at > 0 && name[at - 1] == '.') name.resize(at - 1);
    }
    if (name.size() + 1 > hostlen) return EAI_OVERFLOW;
    std::memcpy(host, name.c_str(), name.size() + 1);
  } else if (q->status == ARES_ENOMEM) {
    return EAI_MEMORY;
  } else if (temporary(q->status)) {
    return EAI_AGAIN;  // glibc: even without NI_NAMEREQD
  } else if ((flags & NI_NAMEREQD) != 0) {
    return EAI_NONAME;
  } else {
    rc = libc::getnameinfo(sa, salen, host, hostlen, nullptr, 0, NI_NUMERICHOST);
    if (rc != 0) return rc;
  }
  if (serv != nullptr && servlen > 0)
    return libc::getnameinfo(sa, salen, nullptr, 0, serv, servlen, flags & (NI_NUMERICSERV | NI_DGRAM));
  return 0;
}

class ares_resolver_impl final : public resolver {
 public:
  int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) override {
    try {
      return ares_getaddrinfo_impl(node, service, hints, res);
    } catch (const std::bad_alloc&) {
      return EAI_MEMORY;
    }
  }
  int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv,
                  socklen_t servlen, int flags) override {
    try {
      return ares_getnameinfo_impl(sa, salen, host, hostlen, serv, servlen, flags);
    } catch (const std::bad_alloc&) {
      return EAI_MEMORY;
    }
  }
  int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, std::size_t buflen, hostent** result,
                       int* h_errnop) override {
    try {
      return ares_gethostbyname2_r_impl(name, af, ret, buf, buflen, result, h_errnop);
    } catch (const std::bad_alloc&) {
      no_result(result, h_errnop, NETDB_INTERNAL);
      errno = ENOMEM;
      return ENOMEM;
    }
  }
  int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, std::size_t buflen,
                      hostent** result, int* h_errnop) override {
    try {
      return ares_gethostbyaddr_r_impl(addr, len, type, ret, buf, buflen, result, h_errnop);
    } catch (const std::bad_alloc&) {
      no_result(result, h_errnop, NETDB_INTERNAL);
      errno = ENOMEM;
      return ENOMEM;
    }
  }
};

}  // namespace

std::size_t ares_in_flight() noexcept {
  hub_core* h = hub_core::current_if_any();
  if (h == nullptr || h->slot(slot_kind::dns) == nullptr) return 0;
  auto& st = static_cast<state&>(*h->slot(slot_kind::dns));
  std::size_t n = st.active ? st.active->outstanding() : 0;
  for (const auto& c : st.retired) n += c->outstanding();
  return n;
}

resolver& ares_resolver() {
  static ares_resolver_impl r;
  return r;
}

}  // namespace moss::detail::dns

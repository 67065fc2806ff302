// ares_channel.cpp: the c-ares plumbing of the `ares` resolver — one c-ares
// channel per hub.
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
// (hosts_index.hpp); a name the file cannot answer goes straight to DNS, and
// only the others make c-ares read the file.
//
// Fork: the channels are the hub's dns slot. A forked child leaves them as
// they are (their lookups belong to greenlets left behind, and c-ares must
// not send or read through sockets the parent still uses), closes its copies
// of their sockets, and makes a new channel at its first lookup.
#include "dns/ares_channel.hpp"

#include "core/hub.hpp"
#include "core/sys.hpp"
#include "dns/hosts_index.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <arpa/nameser.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace moss::detail::dns {
namespace {

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

}  // namespace

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

namespace {

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

void on_file_addrinfo(void* arg, int status, int, ares_addrinfo* res) noexcept {
  auto* q = static_cast<request*>(arg);
  q->status = status;
  q->ai = res;
  q->done = true;
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

}  // namespace

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

bool hosts_entry(const char* name, int af, host_entry& e) {
  channel& c = current_channel();
  if (!c.files_first() || !c.hosts().may_list(name)) return false;
  hostent* file = nullptr;
  if (ares_gethostbyname_file(c.get(), name, af, &file) != ARES_SUCCESS || file == nullptr) return false;
  copy_hostent(*file, e);
  ares_free_hostent(file);
  return true;
}

std::size_t ares_in_flight() noexcept {
  hub_core* h = hub_core::current_if_any();
  if (h == nullptr || h->slot(slot_kind::dns) == nullptr) return 0;
  auto& st = static_cast<state&>(*h->slot(slot_kind::dns));
  std::size_t n = st.active ? st.active->outstanding() : 0;
  for (const auto& c : st.retired) n += c->outstanding();
  return n;
}

}  // namespace moss::detail::dns

// dns_server.hpp: a small authoritative DNS responder for tests and
// benchmarks, on 127.0.0.1 (UDP and TCP on the same free port), run by its own
// OS thread with plain blocking-free libc calls.
//
// It answers from a table the test fills: A, AAAA, CNAME and PTR records, a
// wildcard ("*.bench.test"), names that fail with a chosen RCODE and names
// that are never answered; every answer can be delayed, without delaying the
// others. Unknown names get NXDOMAIN; a known name with no record of the asked
// type gets an empty NOERROR answer (NODATA). A UDP answer over 512 bytes is
// sent truncated (TC) so that clients retry over TCP.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace moss_test {

class dns_server {
 public:
  enum rcode : std::uint8_t { noerror = 0, formerr = 1, servfail = 2, nxdomain = 3, notimp = 4, refused = 5 };
  static constexpr std::uint16_t type_a = 1, type_cname = 5, type_ptr = 12, type_aaaa = 28;

  dns_server() {
    udp_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    tcp_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (udp_ < 0 || tcp_ < 0 || wake_ < 0) throw std::runtime_error("dns_server: cannot create sockets");
    int big = 4 << 20;
    ::setsockopt(udp_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    ::setsockopt(udp_, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    // Bind UDP to a free port, then TCP to the same one (retry if taken).
    for (int attempt = 0;; ++attempt) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(udp_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("dns_server: bind udp");
      socklen_t len = sizeof a;
      ::getsockname(udp_, reinterpret_cast<sockaddr*>(&a), &len);
      int one = 1;
      ::setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(tcp_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(tcp_, 64) == 0) {
        port_ = ntohs(a.sin_port);
        break;
      }
      if (attempt == 20) throw std::runtime_error("dns_server: no free port for UDP and TCP");
      ::close(udp_);
      udp_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    thread_ = std::thread([this] { serve(); });
    // Return only once the thread sits in poll(), so that a test that forks
    // next (fork_test's harness) forks while this thread holds no lock. Under
    // GCC 12's ASan a starting thread takes the allocator's locks on its own
    // (AsanThread::Init calls pthread_getattr_np, which reallocs, callocs
    // and frees; the free fills a new quarantine batch, 8 KiB), and that
    // libasan takes none of them around fork(): a fork in that window gave
    // the child a size class's lock held forever, and the first process of
    // the tree to refill that class hung (fork_test: the child of round 91,
    // in about half the runs under load). glibc's malloc locks around fork;
    // libasan does from LLVM 18 on (llvm/llvm-project#75290).
    serving_.wait(false);
  }

  ~dns_server() {
    stop_ = true;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    thread_.join();
    for (auto& c : conns_) ::close(c.fd);
    ::close(udp_);
    ::close(tcp_);
    ::close(wake_);
  }

  dns_server(const dns_server&) = delete;
  dns_server& operator=(const dns_server&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void add_a(const std::string& name, const std::string& ip) { add(name, type_a, addr_bytes(AF_INET, ip)); }
  void add_aaaa(const std::string& name, const std::string& ip) { add(name, type_aaaa, addr_bytes(AF_INET6, ip)); }
  void add_cname(const std::string& name, const std::string& target) { add(name, type_cname, encode_name(target)); }
  // add_ptr() answers the reverse lookup of ip (v4 or v6) with host.
  void add_ptr(const std::string& ip, const std::string& host) { add(reverse_name(ip), type_ptr, encode_name(host)); }
  // fail() answers every query for name with the given RCODE.
  void fail(const std::string& name, rcode r) {
    std::lock_guard lk(mu_);
    zone_[key(name)].rc = r;
  }
  // ignore() never answers queries for name.
  void ignore(const std::string& name) {
    std::lock_guard lk(mu_);
    zone_[key(name)].silent = true;
  }
  // set_delay() delays every answer sent from now on.
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }
  // set_tcp_delay() delays answers sent over TCP by d instead.
  void set_tcp_delay(std::chrono::milliseconds d) { tcp_delay_ms_ = static_cast<int>(d.count()); }
  std::size_t queries() const { return queries_; }
  std::size_t tcp_queries() const { return tcp_queries_; }

  static std::string reverse_name(const std::string& ip) {
    std::string out;
    char buf[16];
    if (ip.find(':') == std::string::npos) {
      in_addr a{};
      if (inet_pton(AF_INET, ip.c_str(), &a) != 1) throw std::invalid_argument("dns_server: bad IPv4 " + ip);
      auto* b = reinterpret_cast<unsigned char*>(&a);
      for (int i = 3; i >= 0; --i) out += std::to_string(b[i]) + ".";
      return out + "in-addr.arpa";
    }
    in6_addr a{};
    if (inet_pton(AF_INET6, ip.c_str(), &a) != 1) throw std::invalid_argument("dns_server: bad IPv6 " + ip);
    for (int i = 15; i >= 0; --i) {
      std::snprintf(buf, sizeof buf, "%x.%x.", a.s6_addr[i] & 0xf, a.s6_addr[i] >> 4);
      out += buf;
    }
    return out + "ip6.arpa";
  }

 private:
  struct entry {
    std::multimap<std::uint16_t, std::string> records;  // type -> rdata
    int rc = -1;
    bool silent = false;
  };
  struct pending {
    sockaddr_in to{};
    int tcp_fd = -1;
    std::string bytes;
  };
  struct conn {
    int fd;
    std::string in;
  };
  using clock = std::chrono::steady_clock;

  static std::string key(std::string name) {
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!name.empty() && name.back() == '.') name.pop_back();
    return name;
  }
  static std::string addr_bytes(int af, const std::string& ip) {
    unsigned char b[16];
    if (inet_pton(af, ip.c_str(), b) != 1) throw std::invalid_argument("dns_server: bad address " + ip);
    return std::string(reinterpret_cast<char*>(b), af == AF_INET ? 4 : 16);
  }
  static std::string encode_name(const std::string& name) {
    std::string out;
    std::size_t start = 0;
    std::string n = key(name);
    while (start < n.size()) {
      std::size_t dot = n.find('.', start);
      if (dot == std::string::npos) dot = n.size();
      out += static_cast<char>(dot - start);
      out += n.substr(start, dot - start);
      start = dot + 1;
    }
    return out + '\0';
  }
  void add(const std::string& name, std::uint16_t type, std::string rdata) {
    std::lock_guard lk(mu_);
    zone_[key(name)].records.emplace(type, std::move(rdata));
  }

  // find() returns the entry for name, or the wildcard entry covering it.
  const entry* find(const std::string& name) const {
    auto it = zone_.find(name);
    if (it != zone_.end()) return &it->second;
    for (std::size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
      std::string wildcard(1, '*');
      wildcard.append(name, dot, std::string::npos);
      auto w = zone_.find(wildcard);
      if (w != zone_.end()) return &w->second;
    }
    return nullptr;
  }

  static void put16(std::string& s, unsigned v) {
    s += static_cast<char>((v >> 8) & 0xff);
    s += static_cast<char>(v & 0xff);
  }

  // answer() builds the reply to one query; false means "stay silent".
  bool answer(const unsigned char* q, std::size_t n, bool tcp, std::string& out) {
    if (n < 12) return false;
    unsigned qd = (q[4] << 8) | q[5];
    if ((q[2] & 0x80) != 0 || qd != 1) return false;
    // Question name.
    std::size_t p = 12;
    std::string name;
    while (p < n && q[p] != 0) {
      unsigned len = q[p];
      if ((len & 0xc0) != 0 || p + 1 + len > n) return false;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + p + 1), len);
      p += 1 + len;
    }
    if (p + 5 > n) return false;
    std::size_t qend = p + 5;
    unsigned qtype = (q[p + 1] << 8) | q[p + 2];

    int rc = noerror;
    std::vector<std::pair<std::string, std::pair<unsigned, std::string>>> answers;  // owner, type, rdata
    {
      std::lock_guard lk(mu_);
      std::string cur = key(name);
      const entry* e = find(cur);
      if (e != nullptr && e->silent) return false;
      if (e != nullptr && e->rc >= 0) {
        rc = e->rc;
      } else if (e == nullptr) {
        rc = nxdomain;
      } else {
        for (int hops = 0; hops < 8 && e != nullptr; ++hops) {
          auto cn = e->records.find(type_cname);
          if (cn == e->records.end() || qtype == type_cname) break;
          answers.push_back({cur, {type_cname, cn->second}});
          // Decode the target back to text to continue the chain.
          std::string target;
          for (std::size_t i = 0; cn->second[i] != 0; i += 1 + static_cast<unsigned char>(cn->second[i])) {
            if (!target.empty()) target += '.';
            target += cn->second.substr(i + 1, static_cast<unsigned char>(cn->second[i]));
          }
          cur = target;
          e = find(cur);
          if (e == nullptr) rc = nxdomain;
        }
        if (e != nullptr) {
          auto [lo, hi] = e->records.equal_range(static_cast<std::uint16_t>(qtype));
          for (auto it = lo; it != hi; ++it) answers.push_back({cur, {qtype, it->second}});
        }
      }
    }

    out.clear();
    out.append(reinterpret_cast<const char*>(q), 2);  // id
    unsigned flags = 0x8000u | (q[2] & 0x78u) << 8 | 0x0400u | 0x0080u | static_cast<unsigned>(rc);
    flags |= (q[2] & 0x01u) << 8;  // RD
    put16(out, flags);
    put16(out, 1);
    put16(out, static_cast<unsigned>(answers.size()));
    put16(out, 0);
    put16(out, 0);
    out.append(reinterpret_cast<const char*>(q + 12), qend - 12);
    for (auto& [owner, rr] : answers) {
      if (owner == key(name)) put16(out, 0xc00c);  // pointer to the question's name
      else out += encode_name(owner);
      put16(out, rr.first);
      put16(out, 1);  // class IN
      put16(out, 0);
      put16(out, 60);  // TTL
      put16(out, static_cast<unsigned>(rr.second.size()));
      out += rr.second;
    }
    if (!tcp && out.size() > 512) {
      out.resize(12);
      out[2] = static_cast<char>(out[2] | 0x02);  // TC
      out[6] = out[7] = 0;                        // no answers
      out.append(reinterpret_cast<const char*>(q + 12), qend - 12);
    }
    return true;
  }

  // send_now() sends a TCP answer at once and queues a UDP one for flush().
  void send_now(pending m) {
    if (m.tcp_fd >= 0) {
      std::string framed;
      put16(framed, static_cast<unsigned>(m.bytes.size()));
      framed += m.bytes;
      std::size_t off = 0;
      while (off < framed.size()) {
        ssize_t w = ::send(m.tcp_fd, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
        if (w <= 0) break;  // the client went away: nothing to do
        off += static_cast<std::size_t>(w);
      }
      return;
    }
    outbox_.push_back(std::move(m));
  }

  // flush() sends the queued UDP answers, many per system call.
  void flush() {
    constexpr std::size_t batch = 64;
    for (std::size_t start = 0; start < outbox_.size(); start += batch) {
      std::size_t n = std::min(batch, outbox_.size() - start);
      mmsghdr msgs[batch] = {};
      iovec iov[batch];
      for (std::size_t i = 0; i < n; ++i) {
        pending& m = outbox_[start + i];
        iov[i] = {m.bytes.data(), m.bytes.size()};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &m.to;
        msgs[i].msg_hdr.msg_namelen = sizeof m.to;
      }
      for (std::size_t sent = 0; sent < n;) {
        int r = ::sendmmsg(udp_, msgs + sent, static_cast<unsigned>(n - sent), 0);
        if (r <= 0) break;  // a full buffer: the client retries, as over a real network
        sent += static_cast<std::size_t>(r);
      }
    }
    outbox_.clear();
  }

  void reply(pending m) {
    int d = m.tcp_fd >= 0 && tcp_delay_ms_ >= 0 ? tcp_delay_ms_.load() : delay_ms_.load();
    if (d <= 0) return send_now(std::move(m));
    delayed_.emplace(clock::now() + std::chrono::milliseconds(d), std::move(m));
  }

  void serve() {
    constexpr std::size_t batch = 64;
    static thread_local unsigned char bufs[batch][1024];
    unsigned char buf[4096];
    std::string out;
    while (!stop_) {
      std::vector<pollfd> fds{{wake_, POLLIN, 0}, {udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
      int timeout = -1;
      if (!delayed_.empty()) {
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(delayed_.begin()->first - clock::now()).count();
        timeout = ms < 0 ? 0 : static_cast<int>(ms);
      }
      if (!serving_.load()) {  // the constructor waits for this (no allocation from here to poll)
        serving_.store(true);
        serving_.notify_all();
      }
      ::poll(fds.data(), fds.size(), timeout);
      auto now = clock::now();
      while (!delayed_.empty() && delayed_.begin()->first <= now) {
        send_now(std::move(delayed_.begin()->second));
        delayed_.erase(delayed_.begin());
      }
      for (;;) {  // every datagram waiting, many per system call
        mmsghdr msgs[batch] = {};
        iovec iov[batch];
        sockaddr_in from[batch];
        for (std::size_t i = 0; i < batch; ++i) {
          iov[i] = {bufs[i], sizeof bufs[i]};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int got = ::recvmmsg(udp_, msgs, batch, MSG_DONTWAIT, nullptr);
        if (got <= 0) break;
        for (int i = 0; i < got; ++i) {
          ++queries_;
          if (answer(bufs[i], msgs[i].msg_len, false, out)) {
            pending m;
            m.to = from[i];
            m.bytes = out;
            reply(std::move(m));
          }
        }
      }
      flush();
      for (;;) {
        int c = ::accept4(tcp_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        conns_.push_back({c, {}});
      }
      for (std::size_t i = 0; i < conns_.size();) {
        conn& c = conns_[i];
        ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          ::close(c.fd);
          drop_pending(c.fd);
          conns_.erase(conns_.begin() + static_cast<long>(i));
          continue;
        }
        if (r > 0) c.in.append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(r));
        while (c.in.size() >= 2) {
          std::size_t len = (static_cast<unsigned char>(c.in[0]) << 8) | static_cast<unsigned char>(c.in[1]);
          if (c.in.size() < 2 + len) break;
          ++queries_;
          ++tcp_queries_;
          if (answer(reinterpret_cast<const unsigned char*>(c.in.data() + 2), len, true, out)) {
            pending m;
            m.tcp_fd = c.fd;
            m.bytes = out;
            reply(std::move(m));
          }
          c.in.erase(0, 2 + len);
        }
        ++i;
      }
      std::uint64_t drain;
      [[maybe_unused]] auto n = ::read(wake_, &drain, sizeof drain);
    }
  }

  void drop_pending(int fd) {
    for (auto it = delayed_.begin(); it != delayed_.end();) {
      if (it->second.tcp_fd == fd) it = delayed_.erase(it);
      else ++it;
    }
  }

  int udp_ = -1, tcp_ = -1, wake_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> serving_{false};  // the thread has reached its first poll()
  std::atomic<int> delay_ms_{0};
  std::atomic<int> tcp_delay_ms_{-1};  // -1: as delay_ms_
  std::atomic<std::size_t> queries_{0}, tcp_queries_{0};
  std::mutex mu_;
  std::map<std::string, entry> zone_;
  std::multimap<clock::time_point, pending> delayed_;  // touched by the server thread only
  std::vector<pending> outbox_;                        // UDP answers due now
  std::vector<conn> conns_;
  std::thread thread_;
};

}  // namespace moss_test

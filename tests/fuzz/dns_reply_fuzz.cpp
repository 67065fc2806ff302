// dns_reply_fuzz: arbitrary DNS replies, from a server on loopback, through
// moss's c-ares resolver into getaddrinfo, gethostbyname2_r and
// gethostbyaddr_r results in glibc's layout.
//
// The target goes in through the public lookups (moss::dns::getaddrinfo,
// gethostbyname2_r, gethostbyaddr_r) with the resolver set to ares, so it
// follows lib/dns/ however the resolver is split inside; what it exercises
// is c-ares' parsers (ares_addrinfo from A/AAAA/CNAME answers,
// ares_parse_ptr_reply) and the conversion of their output: the
// canonical-name walk, address filtering and IPv4 mapping, addrinfo_entry,
// host_entry and pack_hostent into a caller's buffer of a fuzzed size.
//
// Input: byte 0 picks the call and its arguments, bytes 1-2 are the reply's
// flags (QR is forced on and TC off: a truncated reply would be retried over
// TCP, which this server does not serve), bytes 3-8 the answer, authority
// and additional counts, the rest the records after the question. The
// server copies the ID and the question from each query, so c-ares accepts
// every reply as the answer to its query and never waits for a timeout.
//
// Checks, beyond what ASan and UBSan see: every result has the family asked
// for (or the IPv4-mapped form), a well-formed sockaddr and, with
// AI_CANONNAME, a canonical name; every hostent pointer lies in the
// caller's buffer, which is exactly as large as the result needs (one byte
// less gives ERANGE); every failure is one of the documented codes.
#include <moss/dns.hpp>
#include <moss/io.hpp>
#include <moss/moss.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "dns_reply_fuzz: check failed: %s\n", what);
  std::abort();
}
#define CHECK(c) ((c) ? (void)0 : fail(#c))

// The server's socket and the settings that point moss at it: made once.
int server_fd() {
  static int fd = [] {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      fail("cannot bind a UDP socket on 127.0.0.1");
    moss::dns::settings st;
    st.resolver = moss::dns::resolver_kind::ares;
    st.servers = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    // Long enough never to expire while the process waits for a CPU (the
    // checks compare lookups of one reply); c-ares takes every reply this
    // server sends, so no lookup waits for it.
    st.timeout = 5s;
    st.tries = 1;
    moss::dns::configure(st);
    return s;
  }();
  return fd;
}

// question_end(): the offset just past the question of query q, or 0.
std::size_t question_end(const std::uint8_t* q, std::size_t n) {
  std::size_t at = 12;
  while (at < n && q[at] != 0) {
    if ((q[at] & 0xc0) != 0) return 0;  // c-ares never compresses a question
    at += 1 + q[at];
  }
  at += 1 + 4;  // the root label, type and class
  return at <= n ? at : 0;
}

// serve() answers every query with the fuzzed reply until killed.
void serve(const std::uint8_t* data, std::size_t size) {
  int fd = server_fd();
  std::uint8_t query[1500];
  std::vector<std::uint8_t> reply;
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = moss::io::recvfrom(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;  // e.g. ECONNREFUSED: a reply went to a port c-ares had closed
    std::size_t qend = question_end(query, static_cast<std::size_t>(n));
    if (qend == 0) continue;
    reply.assign(query, query + qend);
    reply[2] = static_cast<std::uint8_t>(0x80 | ((size > 1 ? data[1] : 0) & 0x7d));  // QR on, TC off
    reply[3] = size > 2 ? data[2] : 0;
    reply[4] = 0;
    reply[5] = 1;  // one question
    for (std::size_t i = 0; i < 6; ++i) reply[6 + i] = 3 + i < size ? data[3 + i] : 0;
    if (size > 9) reply.insert(reply.end(), data + 9, data + size);
    if (reply.size() > 4096) reply.resize(4096);
    moss::io::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

bool in_buffer(const void* p, std::size_t n, const char* buf, std::size_t buflen) {
  auto* c = static_cast<const char*>(p);
  return c >= buf && c + n <= buf + buflen;
}

// used_extent(): how much of buf a hostent laid out in it reaches into.
std::size_t used_extent(const hostent& h, const char* buf) {
  const char* end = buf;
  auto reach = [&](const void* p, std::size_t n) { end = std::max(end, static_cast<const char*>(p) + n); };
  reach(h.h_name, std::strlen(h.h_name) + 1);
  char** a = h.h_aliases;
  for (; *a != nullptr; ++a) reach(*a, std::strlen(*a) + 1);
  reach(a, sizeof(char*));
  for (a = h.h_addr_list; *a != nullptr; ++a) reach(*a, static_cast<std::size_t>(h.h_length));
  reach(a, sizeof(char*));
  return static_cast<std::size_t>(end - buf);
}

void check_hostent(const hostent& h, int af, const char* buf, std::size_t buflen) {
  CHECK(h.h_addrtype == af);
  CHECK(h.h_length == (af == AF_INET ? 4 : 16));
  CHECK(h.h_name != nullptr && in_buffer(h.h_name, std::strlen(h.h_name) + 1, buf, buflen));
  CHECK(h.h_aliases != nullptr && in_buffer(h.h_aliases, sizeof(char*), buf, buflen));
  for (char** a = h.h_aliases; *a != nullptr; ++a) {
    CHECK(in_buffer(a + 1, sizeof(char*), buf, buflen));
    CHECK(in_buffer(*a, std::strlen(*a) + 1, buf, buflen));
  }
  CHECK(h.h_addr_list != nullptr && h.h_addr_list[0] != nullptr);
  for (char** a = h.h_addr_list; *a != nullptr; ++a) {
    CHECK(in_buffer(a + 1, sizeof(char*), buf, buflen));
    CHECK(in_buffer(*a, static_cast<std::size_t>(h.h_length), buf, buflen));
  }
}

void check_addrinfo(int rc, const addrinfo* res, int family, int flags) {
  if (rc != 0) {
    CHECK(res == nullptr);
    CHECK(rc == EAI_NONAME || rc == EAI_AGAIN || rc == EAI_NODATA || rc == EAI_FAIL || rc == EAI_MEMORY);
    return;
  }
  CHECK(res != nullptr);
  if ((flags & AI_CANONNAME) != 0) CHECK(res->ai_canonname != nullptr && std::strlen(res->ai_canonname) < 4096);
  for (const addrinfo* p = res; p != nullptr; p = p->ai_next) {
    CHECK(p->ai_addr != nullptr && p->ai_addr->sa_family == p->ai_family);
    CHECK(family == AF_UNSPEC || p->ai_family == family);
    if (p->ai_family == AF_INET) {
      CHECK(p->ai_addrlen == sizeof(sockaddr_in));
      CHECK(reinterpret_cast<const sockaddr_in*>(p->ai_addr)->sin_port == htons(80));
    } else {
      CHECK(p->ai_family == AF_INET6 && p->ai_addrlen == sizeof(sockaddr_in6));
      CHECK(reinterpret_cast<const sockaddr_in6*>(p->ai_addr)->sin6_port == htons(80));
    }
    CHECK(p->ai_socktype == SOCK_STREAM && p->ai_protocol == IPPROTO_TCP);
  }
}

void lookup(const std::uint8_t* data, std::size_t size) {
  std::uint8_t mode = size > 0 ? data[0] : 0;
  int call = mode & 7;
  bool canon = (mode & 8) != 0;
  std::size_t buflen = (mode >> 4) == 15 ? 8192 : static_cast<std::size_t>(mode >> 4) * 64 + 16;
  if (call <= 4) {
    static constexpr int families[] = {AF_UNSPEC, AF_INET, AF_INET6, AF_INET6, AF_INET6};
    static constexpr int extra[] = {0, 0, 0, AI_V4MAPPED, AI_V4MAPPED | AI_ALL};
    addrinfo hints{};
    hints.ai_family = families[call];
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = extra[call] | (canon ? AI_CANONNAME : 0);
    addrinfo* res = nullptr;
    int rc = moss::dns::getaddrinfo("fuzz.test", "80", &hints, &res);
    check_addrinfo(rc, res, hints.ai_family, hints.ai_flags);
    if (res != nullptr) moss::dns::freeaddrinfo(res);
    return;
  }
  hostent h{};
  hostent* result = nullptr;
  int herr = 0;
  int af = call == 6 ? AF_INET6 : AF_INET;
  // A buffer of exactly buflen bytes (a vector's: ASan sees past its end).
  auto call_r = [&](std::size_t buflen, std::vector<char>& buf) {
    buf.assign(buflen, 0);
    static const unsigned char addr[4] = {10, 1, 2, 3};
    return call == 7 ? moss::dns::gethostbyaddr_r(addr, sizeof addr, AF_INET, &h, buf.data(), buf.size(), &result, &herr)
                     : moss::dns::gethostbyname2_r("fuzz.test", af, &h, buf.data(), buf.size(), &result, &herr);
  };
  std::vector<char> buf;
  int rc = call_r(buflen, buf);
  if (rc == 0 && result != nullptr) {
    CHECK(result == &h && herr == NETDB_SUCCESS);
    check_hostent(h, af, buf.data(), buf.size());
    // The layout is as tight as the size check: what it uses is enough, and
    // one byte less is ERANGE (not an overflow).
    std::size_t used = used_extent(h, buf.data());
    // (Each size is a lookup of its own: one that failed for the moment
    // proves nothing either way. Where the target's EAGAIN comes from:
    // replies with RCODE SERVFAIL, NOTIMP or REFUSED, which c-ares 1.18
    // ends with ARES_ECONNREFUSED, and replies it cannot parse
    // (ARES_EBADRESP), both temporary as for glibc; at least a quarter of
    // the mutated inputs, every time, so the first lookup fails too and
    // this is not reached. A repeat lookup fails for the moment only when
    // it waits past `timeout` for a CPU: none did in 44,000 inputs (24,000
    // plain, 20,000 under ASan, 12,000 of those as three processes beside
    // four busy loops on 2 cores). Before f162723 it did: the server task
    // ended on its first recv error and the timeout was 50 ms.)
    auto temporary = [&](int rc) { return rc == EAGAIN || (rc == 0 && result == nullptr && herr == TRY_AGAIN); };
    if (used > 1) {
      int less = call_r(used - 1, buf);
      if (!temporary(less)) CHECK(less == ERANGE && result == nullptr);
      int exact = call_r(used, buf);
      if (!temporary(exact)) {
        CHECK(exact == 0 && result == &h);
        check_hostent(h, af, buf.data(), buf.size());
      }
    }
  } else {
    CHECK(result == nullptr);
    CHECK(rc == 0 || rc == ERANGE || rc == EAGAIN || rc == ENOMEM);
    CHECK(rc != ERANGE || herr == NETDB_INTERNAL);
    CHECK(rc != 0 || herr == HOST_NOT_FOUND || herr == NO_DATA || herr == NO_RECOVERY || herr == TRY_AGAIN);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  server_fd();
  moss::run([&] {
    auto server = moss::spawn([&] { serve(data, size); });
    lookup(data, size);
    server.kill();
  });
  return 0;
}

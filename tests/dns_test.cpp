// dns_test.cpp: the dns layer against a real DNS server on loopback
// (tests/dns_server.hpp), compared with glibc's own functions asking the same
// server: a plain thread points its resolver state (_res) at the server's
// port, which glibc's getaddrinfo and gethostbyname use as they are.
#include <moss/dns.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>
#include <moss/timeout.hpp>

#include "dns_server.hpp"
#include "core/hub.hpp"
#include "leak_check.hpp"
#include "dns/resolver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <resolv.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using moss_test::dns_server;

namespace {

using clock_type = std::chrono::steady_clock;

// describe() renders a getaddrinfo outcome field by field, the raw sockaddr
// bytes included, so that two outcomes compare as strings.
std::string describe(int rc, const addrinfo* res) {
  std::ostringstream o;
  o << "rc=" << rc;
  if (rc != 0) o << " (" << gai_strerror(rc) << ")";
  for (const addrinfo* p = res; p != nullptr; p = p->ai_next) {
    char host[INET6_ADDRSTRLEN] = "?";
    const void* a = p->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr)
                                             : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr);
    inet_ntop(p->ai_family, a, host, sizeof host);
    o << "\n  flags=" << p->ai_flags << " family=" << p->ai_family << " socktype=" << p->ai_socktype
      << " protocol=" << p->ai_protocol << " addrlen=" << p->ai_addrlen << " addr=" << host
      << " canon=" << (p->ai_canonname != nullptr ? p->ai_canonname : "(null)") << " bytes=";
    const auto* b = reinterpret_cast<const unsigned char*>(p->ai_addr);
    for (socklen_t i = 0; i < p->ai_addrlen; ++i) o << std::hex << int(b[i]) << std::dec << ".";
  }
  return o.str();
}

std::string describe_host(int rc, const hostent* h, int herr) {
  std::ostringstream o;
  o << "rc=" << rc << " result=" << (h != nullptr ? "set" : "null");
  if (h == nullptr) {
    o << " h_errno=" << herr;  // meaningful only without a result
    return o.str();
  }
  o << " name=" << h->h_name << " type=" << h->h_addrtype << " length=" << h->h_length;
  for (char** a = h->h_aliases; *a != nullptr; ++a) o << " alias=" << *a;
  for (char** a = h->h_addr_list; *a != nullptr; ++a) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(h->h_addrtype, *a, text, sizeof text);
    o << " addr=" << text;
  }
  return o.str();
}

// with_glibc() runs f on a plain thread whose glibc resolver asks `server`.
template <class F>
void with_glibc(const dns_server& server, F f) {
  std::thread t([&] {
    res_init();
    _res.nscount = 1;
    _res.nsaddr_list[0].sin_family = AF_INET;
    _res.nsaddr_list[0].sin_port = htons(static_cast<std::uint16_t>(server.port()));
    inet_pton(AF_INET, "127.0.0.1", &_res.nsaddr_list[0].sin_addr);
    _res.options |= RES_NORELOAD;  // keep these settings; do not reread resolv.conf
    _res.retrans = 1;
    _res.retry = 1;
    f();
  });
  t.join();
}

// A name in /etc/hosts other than localhost, if there is one.
std::string hosts_only_name() {
  std::ifstream in("/etc/hosts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string addr, name;
    if (!(words >> addr)) continue;
    while (words >> name)
      if (name.find("localhost") == std::string::npos && name.find('.') == std::string::npos) return name;
  }
  return "";
}

std::string long_name(std::size_t length) {
  std::string n;
  while (n.size() < length) n += std::string(50, 'b') + ".";
  return n + "test";
}

class WithDnsServer : public moss_test::WithHub {
 protected:
  void SetUp() override {
    WithHub::SetUp();
    server_ = std::make_unique<dns_server>();
    dns_server& s = *server_;
    s.add_a("a.test", "10.0.0.1");
    s.add_a("a.test", "10.0.0.2");
    s.add_aaaa("a.test", "2001:db8::1");
    s.add_a("v4only.test", "10.0.0.3");
    s.add_aaaa("v6only.test", "2001:db8::6");
    s.add_cname("alias.test", "alias2.test");
    s.add_cname("alias2.test", "a.test");
    s.add_cname("dangling.test", "nothere.test");
    s.fail("servfail.test", dns_server::servfail);
    s.fail("refused.test", dns_server::refused);
    s.fail("formerr.test", dns_server::formerr);
    s.fail("notimp.test", dns_server::notimp);
    s.ignore("silent.test");
    for (int i = 0; i < 40; ++i) s.add_a("big.test", "10.1.0." + std::to_string(i));
    s.add_a("*.bench.test", "10.9.9.9");
    s.add_ptr("10.0.0.1", "a.test");
    s.add_ptr("2001:db8::1", "six.test");
    s.fail(dns_server::reverse_name("10.0.0.2"), dns_server::servfail);
    s.ignore(dns_server::reverse_name("10.0.0.3"));
    saved_ = moss::dns::current_settings();
    use(s, 300ms, 1);
  }
  void TearDown() override {
    moss::dns::configure(saved_);
    server_.reset();
    WithHub::TearDown();
  }

  static void use(const dns_server& s, std::chrono::milliseconds timeout, int tries) {
    moss::dns::settings cfg;
    cfg.servers = s.address();
    cfg.timeout = timeout;
    cfg.tries = tries;
    moss::dns::configure(cfg);
  }

  dns_server& server() { return *server_; }

  std::unique_ptr<dns_server> server_;
  moss::dns::settings saved_;
};

struct gai_case {
  std::string node;
  const char* service;
  int family;
  int socktype;
  int flags;
  bool null_hints = false;
};

std::string run_gai(bool glibc, const gai_case& c) {
  addrinfo hints{};
  hints.ai_family = c.family;
  hints.ai_socktype = c.socktype;
  hints.ai_flags = c.flags;
  addrinfo* res = nullptr;
  const addrinfo* h = c.null_hints ? nullptr : &hints;
  int rc = glibc ? ::getaddrinfo(c.node.c_str(), c.service, h, &res) : moss::dns::getaddrinfo(c.node.c_str(), c.service, h, &res);
  std::string text = describe(rc, rc == 0 ? res : nullptr);
  if (rc == 0) ::freeaddrinfo(res);  // glibc's own freeaddrinfo, for both
  return text;
}

std::string label(const gai_case& c) {
  std::ostringstream o;
  o << "node=" << c.node.substr(0, 40) << " service=" << (c.service != nullptr ? c.service : "(null)")
    << " family=" << c.family << " socktype=" << c.socktype << " flags=" << c.flags << (c.null_hints ? " hints=null" : "");
  return o.str();
}

}  // namespace

TEST_F(WithDnsServer, GetaddrinfoMatchesGlibcFieldByField) {
  std::vector<gai_case> cases = {
      {"a.test", nullptr, AF_UNSPEC, 0, AI_CANONNAME},
      {"a.test", nullptr, AF_INET, SOCK_STREAM, 0},
      {"a.test", "80", AF_INET6, SOCK_DGRAM, AI_CANONNAME},
      {"a.test", "http", AF_UNSPEC, SOCK_STREAM, 0},
      {"a.test", "domain", AF_INET, 0, 0},
      {"a.test.", nullptr, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME},
      {"A.Test", nullptr, AF_INET, SOCK_STREAM, AI_CANONNAME},
      {"a.test", nullptr, AF_UNSPEC, 0, 0, true},
      {"a.test", nullptr, AF_UNSPEC, SOCK_STREAM, AI_ADDRCONFIG},
      {"a.test", nullptr, AF_INET, SOCK_RAW, 0},
      {"v4only.test", nullptr, AF_INET6, SOCK_STREAM, AI_V4MAPPED},
      {"a.test", nullptr, AF_INET6, SOCK_STREAM, AI_V4MAPPED | AI_ALL},
      {"v4only.test", nullptr, AF_INET6, SOCK_STREAM, 0},
      {"v4only.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"v6only.test", nullptr, AF_INET, SOCK_STREAM, 0},
      {"alias.test", nullptr, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME},
      {"dangling.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"nx.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"nx.test", nullptr, AF_INET, SOCK_STREAM, AI_CANONNAME},
      {"servfail.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"refused.test", nullptr, AF_INET, SOCK_STREAM, 0},
      {"formerr.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"notimp.test", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {"big.test", "443", AF_INET, SOCK_STREAM, 0},
      {"", nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {long_name(300), nullptr, AF_UNSPEC, SOCK_STREAM, 0},
      {long_name(254), nullptr, AF_INET, SOCK_STREAM, 0},
      {std::string(64, 'c') + ".test", nullptr, AF_INET, SOCK_STREAM, 0},
      {"localhost", nullptr, AF_UNSPEC, 0, AI_CANONNAME},
      {"localhost", "ssh", AF_INET, 0, 0},
      {"LOCALHOST", nullptr, AF_INET, SOCK_STREAM, AI_CANONNAME},
      // Argument errors glibc reports before any lookup.
      {"a.test", "no-such-service", AF_UNSPEC, SOCK_STREAM, 0},
      {"a.test", "80", AF_INET, SOCK_RAW, 0},
      {"a.test", nullptr, AF_UNIX, SOCK_STREAM, 0},
      {"a.test", nullptr, AF_INET, 12345, 0},
      {"a.test", nullptr, AF_INET, SOCK_STREAM, 0x10000},
      {"a.test", "80", AF_INET, SOCK_STREAM, AI_NUMERICSERV},
      {"a.test", "http", AF_INET, SOCK_STREAM, AI_NUMERICSERV},
      {"a.test", nullptr, AF_INET, SOCK_STREAM, AI_NUMERICHOST},
  };
  if (std::string h = hosts_only_name(); !h.empty()) {
    cases.push_back({h, nullptr, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME});
    cases.push_back({h, "80", AF_INET, 0, 0});
  }
  std::vector<std::string> expected(cases.size());
  with_glibc(server(), [&] {
    for (std::size_t i = 0; i < cases.size(); ++i) expected[i] = run_gai(true, cases[i]);
  });
  std::size_t before = server().queries();
  // Twice: the second pass reuses what the first learnt from libc about
  // each argument combination.
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t i = 0; i < cases.size(); ++i)
      EXPECT_EQ(run_gai(false, cases[i]), expected[i]) << label(cases[i]) << " pass " << pass;
  EXPECT_GT(server().queries(), before) << "moss asked the test server";
  EXPECT_GT(server().tcp_queries(), 0u) << "the truncated answer was fetched over TCP";
}

TEST_F(WithDnsServer, NumericHostsAndNullNodesNeverTouchTheNetwork) {
  std::vector<gai_case> cases = {
      {"127.0.0.1", nullptr, AF_UNSPEC, 0, AI_CANONNAME},
      {"10.1.2.3", "8080", AF_INET, SOCK_STREAM, 0},
      {"::1", "http", AF_UNSPEC, SOCK_STREAM, 0},
      {"2001:db8::5", nullptr, AF_INET6, 0, 0},
      {"1.2.3.4", nullptr, AF_INET6, SOCK_STREAM, AI_V4MAPPED},
      {"1.2.3.4", nullptr, AF_INET6, SOCK_STREAM, 0},
      {"127.1", nullptr, AF_INET, SOCK_STREAM, 0},
      {"0x7f.0.0.1", nullptr, AF_INET, SOCK_STREAM, 0},
      {"fe80::1%1", nullptr, AF_INET6, SOCK_STREAM, 0},
      {"a.test", nullptr, AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST},
      {"1.2.3.4", "80", AF_INET, SOCK_STREAM, AI_NUMERICHOST},
      {"1.2.3.4", nullptr, AF_INET, SOCK_STREAM, 0, true},
  };
  std::vector<std::string> expected(cases.size());
  with_glibc(server(), [&] {
    for (std::size_t i = 0; i < cases.size(); ++i) expected[i] = run_gai(true, cases[i]);
  });
  std::size_t before = server().queries();
  for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(run_gai(false, cases[i]), expected[i]) << label(cases[i]);
  // A null node: the wildcard with AI_PASSIVE, loopback without.
  for (int flags : {0, AI_PASSIVE}) {
    addrinfo hints{};
    hints.ai_flags = flags;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* a = nullptr;
    addrinfo* b = nullptr;
    ASSERT_EQ(moss::dns::getaddrinfo(nullptr, "80", &hints, &a), 0);
    ASSERT_EQ(::getaddrinfo(nullptr, "80", &hints, &b), 0);
    EXPECT_EQ(describe(0, a), describe(0, b));
    moss::dns::freeaddrinfo(a);
    ::freeaddrinfo(b);
  }
  EXPECT_EQ(server().queries(), before) << "a numeric host was sent to the DNS server";
}

TEST_F(WithDnsServer, ThousandLookupsFromThousandGreenletsRunConcurrently) {
  // 1,000 datagrams at once can overflow the loopback device's backlog
  // (net.core.netdev_max_backlog, 1,000) on a loaded machine, as on a real
  // network: a lost query is retried after 0.5 s, then 1 s, as a DNS client
  // should, and the test stays about concurrency.
  use(server(), 500ms, 4);
  server().set_delay(100ms);
  constexpr int n = 1000;
  std::vector<moss::task<int>> tasks;
  int succeeded = 0;
  auto start = clock_type::now();
  for (int i = 0; i < n; ++i) {
    tasks.push_back(moss::spawn([i, &succeeded] {
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      std::string name = "h" + std::to_string(i) + ".bench.test";
      int rc = moss::dns::getaddrinfo(name.c_str(), "80", &hints, &res);
      if (rc == 0) {
        auto* sin = reinterpret_cast<sockaddr_in*>(res->ai_addr);
        if (sin->sin_addr.s_addr == inet_addr("10.9.9.9") && ntohs(sin->sin_port) == 80) ++succeeded;
        moss::dns::freeaddrinfo(res);
      }
      return rc;
    }));
  }
  for (auto& t : tasks) EXPECT_EQ(t.get(), 0);
  auto elapsed = clock_type::now() - start;
  EXPECT_EQ(succeeded, n);
  EXPECT_GE(server().queries(), std::size_t{n});
  // One at a time this would take n * 100 ms = 100 s.
  EXPECT_LT(elapsed, 5s) << std::chrono::duration<double>(elapsed).count() << " s";
  EXPECT_EQ(moss::detail::dns::ares_in_flight(), 0u);
}

TEST_F(WithDnsServer, TruncatedAnswersQueuedOnAnOpenTcpConnectionAreSent) {
  // The second lookup's truncated UDP answer comes while the first one's TCP
  // query is still out, so c-ares queues it on the connected socket, which
  // is already writable: the poller may report no new edge before the first
  // TCP answer, 1 s later, and the second query would time out meanwhile.
  use(server(), 1500ms, 1);
  server().set_delay(100ms);
  server().set_tcp_delay(1s);
  auto lookup = [] {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = moss::dns::getaddrinfo("big.test", nullptr, &hints, &res);
    int n = 0;
    for (addrinfo* p = res; rc == 0 && p != nullptr; p = p->ai_next) ++n;
    if (rc == 0) moss::dns::freeaddrinfo(res);
    return rc == 0 ? n : rc;
  };
  auto first = moss::spawn(lookup);
  moss::sleep(50ms);
  auto second = moss::spawn(lookup);
  EXPECT_EQ(first.get(), 40);
  EXPECT_EQ(second.get(), 40);
  EXPECT_EQ(server().tcp_queries(), 2u);
}

TEST_F(WithDnsServer, NxdomainGivesEaiNonameAndHostNotFound) {
  addrinfo* res = nullptr;
  EXPECT_EQ(moss::dns::getaddrinfo("nx.test", nullptr, nullptr, &res), EAI_NONAME);
  EXPECT_EQ(moss::dns::gethostbyname("nx.test"), nullptr);
  EXPECT_EQ(h_errno, HOST_NOT_FOUND);
  EXPECT_THROW(
      {
        try {
          moss::dns::resolve("nx.test", "80");
        } catch (const moss::dns::error& e) {
          EXPECT_EQ(e.code(), EAI_NONAME);
          EXPECT_NE(std::string(e.what()).find("nx.test"), std::string::npos) << e.what();
          throw;
        }
      },
      moss::dns::error);
  auto found = moss::dns::resolve("a.test", "80", AF_INET);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(found[0].get())->sin_port), 80);
}

TEST_F(WithDnsServer, SilentServerGivesEaiAgainWithinTheConfiguredTimeout) {
  use(server(), 200ms, 2);  // c-ares waits 200 ms, then 400 ms
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  auto start = clock_type::now();
  EXPECT_EQ(moss::dns::getaddrinfo("silent.test", nullptr, &hints, &res), EAI_AGAIN);
  auto elapsed = clock_type::now() - start;
  EXPECT_GE(elapsed, 550ms);
  EXPECT_LT(elapsed, 3s);
  // glibc says the same against the same server.
  with_glibc(server(), [&] {
    addrinfo* r = nullptr;
    EXPECT_EQ(::getaddrinfo("silent.test", nullptr, &hints, &r), EAI_AGAIN);
  });
}

TEST_F(WithDnsServer, LookupWaitsInsteadOfRaisingLoopExit) {
  // Nothing else runs on the hub: only the pending lookup can wake us.
  use(server(), 2s, 1);
  server().set_delay(200ms);
  addrinfo* res = nullptr;
  ASSERT_EQ(moss::dns::getaddrinfo("v4only.test", nullptr, nullptr, &res), 0);
  moss::dns::freeaddrinfo(res);
}

TEST_F(WithDnsServer, OtherGreenletsRunWhileALookupWaits) {
  use(server(), 2s, 1);
  server().set_delay(300ms);
  int ticks = 0;
  auto ticker = moss::spawn([&] {
    for (int i = 0; i < 5; ++i) {
      moss::sleep(10ms);
      ++ticks;
    }
  });
  addrinfo* res = nullptr;
  ASSERT_EQ(moss::dns::getaddrinfo("v4only.test", nullptr, nullptr, &res), 0);
  moss::dns::freeaddrinfo(res);
  EXPECT_EQ(ticks, 5) << "the hub was blocked during the lookup";
  ticker.join();
}

TEST_F(WithDnsServer, KilledOrTimedOutLookupLeavesNothingBehind) {
  use(server(), 300ms, 1);
  std::size_t keepalive = moss::detail::hub_core::current().keepalive;
  auto victim = moss::spawn([] {
    addrinfo* res = nullptr;
    moss::dns::getaddrinfo("silent.test", nullptr, nullptr, &res);
    ADD_FAILURE() << "the lookup returned instead of being killed";
  });
  moss::sleep(50ms);
  EXPECT_EQ(moss::detail::dns::ares_in_flight(), 1u);
  victim.kill();
  EXPECT_TRUE(victim.killed());
  EXPECT_EQ(moss::detail::hub_core::current().keepalive, keepalive);

  EXPECT_THROW(
      {
        moss::timeout t(50ms);
        addrinfo* res = nullptr;
        moss::dns::getaddrinfo("silent.test", nullptr, nullptr, &res);
      },
      moss::timeout_error);
  EXPECT_EQ(moss::detail::hub_core::current().keepalive, keepalive);

  // The abandoned queries end when c-ares times them out; their requests
  // are freed then (ASan/valgrind check the memory; the fixture the fd).
  auto deadline = clock_type::now() + 5s;
  while (moss::detail::dns::ares_in_flight() > 0 && clock_type::now() < deadline) moss::sleep(10ms);
  EXPECT_EQ(moss::detail::dns::ares_in_flight(), 0u);
  addrinfo* res = nullptr;
  ASSERT_EQ(moss::dns::getaddrinfo("a.test", nullptr, nullptr, &res), 0) << "the channel still works";
  moss::dns::freeaddrinfo(res);
}

TEST_F(WithDnsServer, ResultsAreFreedByGlibcFreeaddrinfoWithoutLeaking) {
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  auto once = [&] {
    addrinfo* res = nullptr;
    ASSERT_EQ(moss::dns::getaddrinfo("alias.test", nullptr, &hints, &res), 0);
    ASSERT_NE(res->ai_canonname, nullptr);
    ::freeaddrinfo(res);  // glibc's, not ours
  };
  for (int i = 0; i < 20; ++i) once();  // warm up: the channel, c-ares' own caches
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < 500; ++i) once();
  struct mallinfo2 after = mallinfo2();
  // Each result holds 9 entries and a name; a leak would be ~0.5 MB.
  EXPECT_LT(after.uordblks, before.uordblks + 16 * 1024) << "glibc's freeaddrinfo did not free everything";
}

TEST_F(WithDnsServer, GethostbynameFamilyMatchesGlibc) {
  struct ghbn_case {
    std::string name;
    int af;
    std::size_t buflen;
  };
  std::vector<ghbn_case> cases = {
      {"a.test", AF_INET, 1024},       {"a.test", AF_INET6, 1024},       {"alias.test", AF_INET, 1024},
      {"v4only.test", AF_INET6, 1024}, {"v6only.test", AF_INET, 1024},   {"nx.test", AF_INET, 1024},
      {"dangling.test", AF_INET, 1024}, {"servfail.test", AF_INET, 1024}, {"formerr.test", AF_INET, 1024},
      {"silent.test", AF_INET, 1024},  {"big.test", AF_INET, 4096},      {"a.test", AF_INET, 16},
      {"localhost", AF_INET, 1024},    {"1.2.3.4", AF_INET, 1024},       {"1.2.3.4", AF_INET6, 1024},
      {"999.1.1.1", AF_INET, 1024},    {"::1", AF_INET6, 1024},          {"", AF_INET, 1024},
      {long_name(300), AF_INET, 1024}, {"a.test", AF_UNIX, 1024},
  };
  auto run = [](bool glibc, const ghbn_case& c) {
    hostent ent{};
    hostent* result = nullptr;
    int herr = 0;
    std::vector<char> buf(c.buflen);
    int rc = glibc ? ::gethostbyname2_r(c.name.c_str(), c.af, &ent, buf.data(), buf.size(), &result, &herr)
                   : moss::dns::gethostbyname2_r(c.name.c_str(), c.af, &ent, buf.data(), buf.size(), &result, &herr);
    return describe_host(rc, result, herr);
  };
  std::vector<std::string> expected(cases.size());
  std::string expected_static, expected_r;
  with_glibc(server(), [&] {
    for (std::size_t i = 0; i < cases.size(); ++i) expected[i] = run(true, cases[i]);
    hostent* h = ::gethostbyname("alias.test");
    expected_static = describe_host(0, h, h_errno);
    hostent ent{};
    hostent* result = nullptr;
    int herr = 0;
    char buf[1024];
    int rc = ::gethostbyname_r("a.test", &ent, buf, sizeof buf, &result, &herr);
    expected_r = describe_host(rc, result, herr);
  });
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(run(false, cases[i]), expected[i]) << cases[i].name.substr(0, 40) << " af=" << cases[i].af << " buflen=" << cases[i].buflen;
  hostent* h = moss::dns::gethostbyname("alias.test");
  EXPECT_EQ(describe_host(0, h, h_errno), expected_static);
  hostent ent{};
  hostent* result = nullptr;
  int herr = 0;
  char buf[1024];
  int rc = moss::dns::gethostbyname_r("a.test", &ent, buf, sizeof buf, &result, &herr);
  EXPECT_EQ(describe_host(rc, result, herr), expected_r);
}

TEST_F(WithDnsServer, GethostbyaddrAndGetnameinfoMatchGlibc) {
  auto bytes = [](const char* ip) {
    std::array<unsigned char, 16> b{};
    inet_pton(std::strchr(ip, ':') != nullptr ? AF_INET6 : AF_INET, ip, b.data());
    return b;
  };
  struct ghba_case {
    const char* ip;
    int type;
    socklen_t len;
    std::size_t buflen;
  };
  std::vector<ghba_case> hcases = {
      {"10.0.0.1", AF_INET, 4, 1024},     {"2001:db8::1", AF_INET6, 16, 1024}, {"::ffff:10.0.0.1", AF_INET6, 16, 1024},
      {"127.0.0.1", AF_INET, 4, 1024},    {"10.0.0.2", AF_INET, 4, 1024},      {"10.0.0.3", AF_INET, 4, 1024},
      {"10.0.0.4", AF_INET, 4, 1024},     {"10.0.0.1", AF_INET, 4, 8},         {"10.0.0.1", AF_UNIX, 4, 1024},
      {"::", AF_INET6, 16, 1024},         {"10.0.0.1", AF_INET6, 4, 1024},
  };
  auto run_h = [&](bool glibc, const ghba_case& c) {
    auto b = bytes(c.ip);
    hostent ent{};
    hostent* result = nullptr;
    int herr = 0;
    std::vector<char> buf(c.buflen);
    int rc = glibc ? ::gethostbyaddr_r(b.data(), c.len, c.type, &ent, buf.data(), buf.size(), &result, &herr)
                   : moss::dns::gethostbyaddr_r(b.data(), c.len, c.type, &ent, buf.data(), buf.size(), &result, &herr);
    return describe_host(rc, result, herr);
  };
  struct gni_case {
    const char* ip;
    int flags;
    socklen_t hostlen;
    socklen_t servlen;
    bool host = true;
    bool serv = true;
  };
  std::vector<gni_case> ncases = {
      {"10.0.0.1", 0, 256, 32},          {"2001:db8::1", 0, 256, 32},       {"10.0.0.4", 0, 256, 32},
      {"10.0.0.4", NI_NAMEREQD, 256, 32}, {"10.0.0.2", 0, 256, 32},          {"10.0.0.2", NI_NAMEREQD, 256, 32},
      {"10.0.0.3", 0, 256, 32},          {"127.0.0.1", 0, 256, 32},         {"10.0.0.1", NI_NOFQDN, 256, 32},
      {"10.0.0.1", 0, 4, 32},            {"10.0.0.4", 0, 4, 32},            {"10.0.0.1", 0, 256, 1},
      {"10.0.0.1", 0, 256, 32, false, false}, {"10.0.0.1", NI_NAMEREQD, 256, 32, false, false},
      {"10.0.0.1", 0x1000, 256, 32},     {"10.0.0.1", NI_NUMERICSERV | NI_DGRAM, 256, 32},
      {"10.0.0.1", 0, 0, 32},            {"::ffff:10.0.0.1", 0, 256, 32},   {"10.0.0.1", NI_NUMERICHOST, 256, 32},
  };
  auto run_n = [&](bool glibc, const gni_case& c) {
    sockaddr_storage ss{};
    socklen_t len;
    if (std::strchr(c.ip, ':') != nullptr) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      inet_pton(AF_INET6, c.ip, &s6->sin6_addr);
      s6->sin6_port = htons(80);
      len = sizeof *s6;
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      inet_pton(AF_INET, c.ip, &s4->sin_addr);
      s4->sin_port = htons(80);
      len = sizeof *s4;
    }
    char host[256] = "untouched";
    char serv[32] = "untouched";
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    int rc = glibc ? ::getnameinfo(sa, len, c.host ? host : nullptr, c.hostlen, c.serv ? serv : nullptr, c.servlen, c.flags)
                   : moss::dns::getnameinfo(sa, len, c.host ? host : nullptr, c.hostlen, c.serv ? serv : nullptr, c.servlen, c.flags);
    // After EAI_OVERFLOW the buffer's content is unspecified.
    if (rc == EAI_OVERFLOW) return std::string("rc=EAI_OVERFLOW");
    return "rc=" + std::to_string(rc) + " host=" + host + " serv=" + serv;
  };
  std::vector<std::string> hexpected(hcases.size()), nexpected(ncases.size());
  with_glibc(server(), [&] {
    for (std::size_t i = 0; i < hcases.size(); ++i) hexpected[i] = run_h(true, hcases[i]);
    for (std::size_t i = 0; i < ncases.size(); ++i) nexpected[i] = run_n(true, ncases[i]);
  });
  for (std::size_t i = 0; i < hcases.size(); ++i)
    EXPECT_EQ(run_h(false, hcases[i]), hexpected[i]) << hcases[i].ip << " type=" << hcases[i].type << " len=" << hcases[i].len;
  for (std::size_t i = 0; i < ncases.size(); ++i)
    EXPECT_EQ(run_n(false, ncases[i]), nexpected[i]) << ncases[i].ip << " flags=" << ncases[i].flags << " hostlen=" << ncases[i].hostlen;
}

TEST_F(WithDnsServer, ConfigureSwitchesServersWhileOldLookupsFinish) {
  dns_server other;
  other.add_a("a.test", "10.7.7.7");
  use(server(), 2s, 1);
  server().set_delay(200ms);
  auto first = moss::spawn([] {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    int rc = moss::dns::getaddrinfo("v4only.test", nullptr, &hints, &res);
    std::string got = rc == 0 ? inet_ntoa(reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr) : "error";
    if (rc == 0) moss::dns::freeaddrinfo(res);
    return got;
  });
  moss::sleep(20ms);  // the first lookup is in flight on the old channel
  use(other, 300ms, 1);
  auto found = moss::dns::resolve("a.test", "", AF_INET);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(std::string(inet_ntoa(reinterpret_cast<const sockaddr_in*>(found[0].get())->sin_addr)), "10.7.7.7");
  EXPECT_EQ(first.get(), "10.0.0.3") << "the lookup made before configure() finished on the old server";
  EXPECT_EQ(moss::detail::dns::ares_in_flight(), 0u);
}

TEST_F(WithDnsServer, PlainThreadsPassThroughToLibc) {
  std::size_t before = server().queries();
  std::string ours, theirs;
  bool made_hub = true;
  std::thread([&] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    addrinfo* res = nullptr;
    int rc = moss::dns::getaddrinfo("localhost", "80", &hints, &res);
    ours = describe(rc, rc == 0 ? res : nullptr);
    if (rc == 0) moss::dns::freeaddrinfo(res);
    rc = ::getaddrinfo("localhost", "80", &hints, &res);
    theirs = describe(rc, rc == 0 ? res : nullptr);
    if (rc == 0) ::freeaddrinfo(res);
    made_hub = moss::detail::hub_core::current_if_any() != nullptr;
  }).join();
  EXPECT_EQ(ours, theirs);
  EXPECT_FALSE(made_hub) << "a lookup from a plain thread created a hub";
  EXPECT_EQ(server().queries(), before);
}

TEST_F(WithDnsServer, ThreadAndBlockResolversGiveLibcsAnswers) {
  // Pool threads use the system's resolver configuration, so only names
  // that need no server are compared here.
  std::vector<gai_case> cases = {
      {"localhost", nullptr, AF_UNSPEC, 0, AI_CANONNAME},
      {"127.0.0.1", "http", AF_INET, 0, 0},
      {"a.test", nullptr, AF_INET, SOCK_STREAM, AI_NUMERICHOST},
  };
  for (auto kind : {moss::dns::resolver_kind::thread, moss::dns::resolver_kind::block}) {
    moss::dns::settings s = moss::dns::current_settings();
    s.resolver = kind;
    moss::dns::configure(s);
    for (const auto& c : cases) EXPECT_EQ(run_gai(false, c), run_gai(true, c)) << label(c);
    hostent ent{};
    hostent* result = nullptr;
    int herr = 0;
    char buf[1024];
    int rc = moss::dns::gethostbyname2_r("localhost", AF_INET, &ent, buf, sizeof buf, &result, &herr);
    std::string ours = describe_host(rc, result, herr);
    rc = ::gethostbyname2_r("localhost", AF_INET, &ent, buf, sizeof buf, &result, &herr);
    EXPECT_EQ(ours, describe_host(rc, result, herr));
  }
}

TEST(DnsSettings, EnvironmentIsValidatedWithTheAcceptedForms) {
  struct env_case {
    const char* name;
    const char* value;
    const char* mentions;  // in the message, or null if the value is good
  };
  const env_case cases[] = {
      {"MOSS_RESOLVER", "thread", nullptr},
      {"MOSS_RESOLVER", "dnsmasq", "ares, thread, block"},
      {"MOSS_DNS_SERVERS", "127.0.0.1:5353,[::1]:53,::1,10.0.0.1", nullptr},
      {"MOSS_DNS_SERVERS", "127.0.0.1:0", "ip[:port]"},
      {"MOSS_DNS_SERVERS", "localhost", "ip[:port]"},
      {"MOSS_DNS_SERVERS", "127.0.0.1,", "ip[:port]"},
      {"MOSS_DNS_SERVERS", "[::1", "ip[:port]"},
      {"MOSS_DNS_SERVERS", "1.2.3.4:99999", "ip[:port]"},
      {"MOSS_DNS_TIMEOUT_MS", "500", nullptr},
      {"MOSS_DNS_TIMEOUT_MS", "0", "1 to 3600000"},
      {"MOSS_DNS_TIMEOUT_MS", "2s", "1 to 3600000"},
      {"MOSS_DNS_TRIES", "3", nullptr},
      {"MOSS_DNS_TRIES", "-1", "1 to 100"},
      {"MOSS_DNS_TRIES", "1000", "1 to 100"},
  };
  for (const auto& c : cases) {
    setenv(c.name, c.value, 1);
    if (c.mentions == nullptr) {
      EXPECT_NO_THROW(moss::detail::dns::settings_from_environment()) << c.name << "=" << c.value;
    } else {
      try {
        moss::detail::dns::settings_from_environment();
        ADD_FAILURE() << c.name << "=" << c.value << " was accepted";
      } catch (const moss::error& e) {
        EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << e.what();
      }
    }
    unsetenv(c.name);
  }
  setenv("MOSS_RESOLVER", "block", 1);
  setenv("MOSS_DNS_SERVERS", "[::1]:5353", 1);
  setenv("MOSS_DNS_TIMEOUT_MS", "750", 1);
  setenv("MOSS_DNS_TRIES", "4", 1);
  auto s = moss::detail::dns::settings_from_environment();
  EXPECT_EQ(s.resolver, moss::dns::resolver_kind::block);
  EXPECT_EQ(s.servers, "[::1]:5353");
  EXPECT_EQ(s.timeout, 750ms);
  EXPECT_EQ(s.tries, 4);
  for (const char* n : {"MOSS_RESOLVER", "MOSS_DNS_SERVERS", "MOSS_DNS_TIMEOUT_MS", "MOSS_DNS_TRIES"}) unsetenv(n);
  auto d = moss::detail::dns::settings_from_environment();
  EXPECT_EQ(d.resolver, moss::dns::resolver_kind::ares);
  EXPECT_EQ(d.timeout, 2000ms);
  EXPECT_EQ(d.tries, 2);

  auto servers = moss::detail::dns::parse_servers("127.0.0.1:5353, [::1]:53", "test");
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0].family, AF_INET);
  EXPECT_EQ(servers[0].port, 5353);
  EXPECT_EQ(servers[1].family, AF_INET6);
  EXPECT_EQ(servers[1].port, 53);
}

TEST(DnsSettings, ConfigureRejectsBadValuesAndChangesNothing) {
  moss::dns::settings before = moss::dns::current_settings();
  moss::dns::settings bad = before;
  bad.timeout = 0ms;
  EXPECT_THROW(moss::dns::configure(bad), moss::error);
  bad = before;
  bad.tries = 0;
  EXPECT_THROW(moss::dns::configure(bad), moss::error);
  bad = before;
  bad.servers = "not-an-address";
  try {
    moss::dns::configure(bad);
    ADD_FAILURE() << "a bad server list was accepted";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("not-an-address"), std::string::npos) << e.what();
  }
  moss::dns::settings after = moss::dns::current_settings();
  EXPECT_EQ(after.servers, before.servers);
  EXPECT_EQ(after.timeout, before.timeout);
  EXPECT_EQ(after.tries, before.tries);
}

namespace {

// ipv4_of(): the first IPv4 address getaddrinfo gives for name, or the
// error, as text.
std::string ipv4_of(const char* name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = moss::dns::getaddrinfo(name, nullptr, &hints, &res);
  if (rc != 0) return std::string("error ") + gai_strerror(rc);
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof text);
  moss::dns::freeaddrinfo(res);
  return text;
}

bool rewrite(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  return close(fd) == 0 && ok;
}

// hosts_child(): the body of HostsFileChangesAreSeen, in a child process
// whose /etc/hosts is `path` (a bind mount in a mount namespace of its
// own). Returns the number of failed checks; 77 if the namespace cannot
// be had.
int hosts_child(const std::string& path) {
  // A user namespace makes the mount namespace's mounts private to it, so
  // nothing done here can reach the machine's own /etc/hosts.
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 77;
  // (The kernel ignores the type of these two; "none" rather than null keeps
  // Valgrind quiet.)
  if (mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
  if (mount(path.c_str(), "/etc/hosts", "none", MS_BIND, nullptr) != 0) return 77;
  {
    std::ifstream in("/etc/hosts");
    std::string first;
    if (!std::getline(in, first) || first.find("listed.hosts-test") == std::string::npos) return 77;
  }
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::fprintf(stderr, "hosts child: %s\n", what.c_str());
      ++failures;
    }
  };
  // The hub of a thread of its own: this process's main thread is a fork
  // of one whose hub's epoll instance the parent still uses.
  std::thread t([&] {
    dns_server server;
    server.add_a("*.hosts-test", "10.8.8.8");
    moss::dns::settings cfg;
    cfg.servers = server.address();
    cfg.timeout = 1000ms;
    cfg.tries = 2;
    moss::dns::configure(cfg);
    moss::spawn([&] {
      std::string got = ipv4_of("listed.hosts-test");
      check(got == "10.7.7.7", "the hosts file's name gave " + got);
      got = ipv4_of("added.hosts-test");
      check(got == "10.8.8.8", "a name only DNS has gave " + got);

      // Readdressing a listed name is seen at once; a new name within the
      // index's one-second check (allow five).
      if (!rewrite(path, "10.5.5.5 listed.hosts-test\n10.6.6.6 added.hosts-test # added\n")) {
        check(false, "cannot rewrite the hosts file");
        return;
      }
      got = ipv4_of("LISTED.hosts-test");
      check(got == "10.5.5.5", "the readdressed name gave " + got);
      auto start = clock_type::now();
      while ((got = ipv4_of("added.hosts-test")) != "10.6.6.6" && clock_type::now() - start < 5s) moss::sleep(50ms);
      check(got == "10.6.6.6", "the added name still gave " + got + " after 5 s");
      hostent* h = moss::dns::gethostbyname("Added.Hosts-Test");
      check(h != nullptr && h->h_length == 4 && std::memcmp(h->h_addr_list[0], "\x0a\x06\x06\x06", 4) == 0,
            "gethostbyname did not take the added name from the file");

      // A name dropped from the file goes back to DNS at once.
      if (!rewrite(path, "10.5.5.5 listed.hosts-test\n")) {
        check(false, "cannot rewrite the hosts file");
        return;
      }
      got = ipv4_of("added.hosts-test");
      check(got == "10.8.8.8", "the dropped name gave " + got);
    }).join();
  });
  t.join();
  return failures;
}

}  // namespace

// The ares resolver keeps an index of /etc/hosts' names between lookups;
// it must notice the file changing. Run in a child with a mount namespace
// of its own, where /etc/hosts is a temporary file.
TEST(DnsHostsFile, HostsFileChangesAreSeen) {
  char path[] = "/tmp/moss-hosts-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "10.7.7.7 listed.hosts-test\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(hosts_child(path));
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  unlink(path);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no user and mount namespaces here to give a child its own /etc/hosts";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "checks failed in the child (its messages are above)";
}

// dns_hook_test: plain getaddrinfo()/gethostbyname_r() calls in greenlets of
// a program linked with libmoss_patch run concurrently on one thread.
#include <moss/dns.hpp>
#include <moss/moss.hpp>

#include "dns_server.hpp"
#include "leak_check.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

class WithDnsServer : public moss_test::WithHub {
 protected:
  void SetUp() override {
    WithHub::SetUp();
    saved_ = moss::dns::current_settings();
    server_.add_a("slow.test", "10.1.2.3");
    server_.fail("missing.test", moss_test::dns_server::nxdomain);
    moss::dns::settings cfg;
    cfg.servers = server_.address();
    cfg.timeout = 3s;
    cfg.tries = 2;
    moss::dns::configure(cfg);
  }
  void TearDown() override {
    moss::dns::configure(saved_);
    WithHub::TearDown();
  }
  moss_test::dns_server server_;
  moss::dns::settings saved_;
};

// Exactly what a program without moss writes.
std::string lookup(const char* name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(name, "80", &hints, &res);
  if (rc != 0) return std::string("error: ") + gai_strerror(rc);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  freeaddrinfo(res);
  return buf;
}

}  // namespace

TEST_F(WithDnsServer, AThousandPlainGetaddrinfoCallsRunConcurrently) {
  // 1,000 datagrams at once can overflow the loopback device's backlog
  // (net.core.netdev_max_backlog, 1,000) on a loaded machine: a lost query
  // is retried after 0.5 s, then 1 s, as a DNS client should.
  moss::dns::settings cfg = moss::dns::current_settings();
  cfg.timeout = 500ms;
  cfg.tries = 4;
  moss::dns::configure(cfg);
  server_.set_delay(100ms);
  constexpr int n = 1000;
  auto t0 = clk::now();
  std::vector<moss::task<std::string>> ts;
  for (int i = 0; i < n; ++i) ts.push_back(moss::spawn([] { return lookup("slow.test"); }));
  for (auto& t : ts) EXPECT_EQ(t.get(), "10.1.2.3");
  EXPECT_LT(clk::now() - t0, 5s) << "each lookup waits 100 ms: sequential would be 100 s";
}

TEST_F(WithDnsServer, NxdomainIsEaiNonameAsInGlibc) {
  auto t = moss::spawn([] { return lookup("missing.test"); });
  EXPECT_EQ(t.get(), std::string("error: ") + gai_strerror(EAI_NONAME));
}

TEST_F(WithDnsServer, GethostbynameRWorksInAGreenlet) {
  auto t = moss::spawn([] {
    hostent he{};
    hostent* result = nullptr;
    char buf[1024];
    int herr = 0;
    int rc = gethostbyname_r("slow.test", &he, buf, sizeof buf, &result, &herr);
    if (rc != 0 || result == nullptr) return std::string("error");
    char out[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, result->h_addr_list[0], out, sizeof out);
    return std::string(out);
  });
  EXPECT_EQ(t.get(), "10.1.2.3");
}

TEST_F(WithDnsServer, NumericHostsNeverReachTheServer) {
  std::size_t before = server_.queries();
  auto t = moss::spawn([] { return lookup("192.0.2.7"); });
  EXPECT_EQ(t.get(), "192.0.2.7");
  EXPECT_EQ(server_.queries(), before);
}

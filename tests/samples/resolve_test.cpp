// resolve_test: the built moss-resolve binary, run as a user would, against a
// DNS responder on loopback that the test starts (tests/dns_server.hpp).
#include "../dns_server.hpp"

#include <gtest/gtest.h>

#include <netdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct result {
  int status;
  std::string out;
  std::string err;
};

// run() runs cmd through the shell, stdout and stderr captured apart.
result run(const std::string& cmd) {
  char errname[] = "/tmp/moss_resolve_test_err_XXXXXX";
  int efd = mkstemp(errname);
  ::close(efd);
  result r{};
  FILE* p = popen((cmd + " 2>" + errname).c_str(), "r");
  std::array<char, 65536> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(errname);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  ::unlink(errname);
  return r;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

std::string tool(const moss_test::dns_server& dns) {
  return std::string(MOSS_RESOLVE) + " --server " + dns.address();
}

}  // namespace

TEST(Resolve, PrintsEveryAddressOfEachNameInInputOrder) {
  moss_test::dns_server dns;
  dns.add_a("one.test", "10.0.0.1");
  dns.add_a("two.test", "10.0.0.2");
  dns.add_a("two.test", "10.0.0.3");
  dns.add_aaaa("two.test", "fd00::2");
  auto r = run(tool(dns) + " two.test one.test");
  EXPECT_EQ(r.status, 0) << r.err;
  auto l = lines_of(r.out);
  ASSERT_EQ(l.size(), 2u) << r.out;
  EXPECT_EQ(l[1], "one.test\t10.0.0.1");
  EXPECT_EQ(l[0].rfind("two.test\t", 0), 0u) << l[0];
  for (const char* a : {"10.0.0.2", "10.0.0.3", "fd00::2"}) EXPECT_NE(l[0].find(a), std::string::npos) << l[0];
}

TEST(Resolve, FamilyOptionsKeepOnlyThatFamily) {
  moss_test::dns_server dns;
  dns.add_a("dual.test", "10.0.0.9");
  dns.add_aaaa("dual.test", "fd00::9");
  auto r4 = run(tool(dns) + " -4 dual.test");
  EXPECT_EQ(r4.out, "dual.test\t10.0.0.9\n");
  auto r6 = run(tool(dns) + " -6 dual.test");
  EXPECT_EQ(r6.out, "dual.test\tfd00::9\n");
}

TEST(Resolve, AFailedNameIsReportedAndTheExitStatusIsOne) {
  moss_test::dns_server dns;
  dns.add_a("good.test", "10.0.0.1");
  auto r = run(tool(dns) + " -4 nosuch.test good.test");
  EXPECT_EQ(r.status, 1);
  auto l = lines_of(r.out);
  ASSERT_EQ(l.size(), 2u) << r.out;
  EXPECT_EQ(l[0], std::string("nosuch.test\tERROR ") + gai_strerror(EAI_NONAME));
  EXPECT_EQ(l[1], "good.test\t10.0.0.1");
}

TEST(Resolve, AMalformedDnsSettingIsAnErrorNotAnAnswer) {
  // Exit status 2 and one line naming the variable (lib/core/config.hpp), never
  // "resolved" with status 0.
  auto r = run("MOSS_DNS_SERVERS=999.1.1.1:99999 " + std::string(MOSS_RESOLVE) + " localhost");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("MOSS_DNS_SERVERS: \"999.1.1.1:99999\" is not a server"), std::string::npos) << r.err;
  auto t = run("MOSS_DNS_TRIES=0 " + std::string(MOSS_RESOLVE) + " --server 127.0.0.1 localhost");
  EXPECT_EQ(t.status, 2) << t.err;
  EXPECT_NE(t.err.find("MOSS_DNS_TRIES=\"0\""), std::string::npos) << t.err;
}

TEST(Resolve, TenThousandNamesFromStdinResolveConcurrentlyInUnderTwoSeconds) {
  moss_test::dns_server dns;
  dns.add_a("*.bulk.test", "10.1.2.3");
  // Every answer waits 20 ms: one at a time 10,000 names would take 200 s.
  dns.set_delay(std::chrono::milliseconds(20));
  char name[] = "/tmp/moss_resolve_names_XXXXXX";
  int fd = mkstemp(name);
  ::close(fd);
  {
    std::ofstream f(name);
    for (int i = 0; i < 10000; ++i) f << "host" << i << ".bulk.test\n";
  }
  auto t0 = std::chrono::steady_clock::now();
  // A lost UDP answer is retried after the timeout: keep that short, and
  // allow a few tries (a burst of 1,000 datagrams can overflow the loopback
  // backlog of a loaded machine twice for the same name; moss-resolve then,
  // rightly, exits 1).
  auto r = run("MOSS_DNS_TIMEOUT_MS=400 MOSS_DNS_TRIES=4 " + tool(dns) + " -4 -c 1000 < " + name);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::unlink(name);
  std::printf("10,000 names (20 ms answers, -c 1000): %.3f s\n", took);
  auto l = lines_of(r.out);
  std::string failed;
  for (const auto& line : l)
    if (line.find("10.1.2.3") == std::string::npos) failed += line + "\n";
  EXPECT_EQ(r.status, 0) << r.err << failed;
  ASSERT_EQ(l.size(), 10000u);
  EXPECT_EQ(l[0], "host0.bulk.test\t10.1.2.3");
  EXPECT_EQ(l[9999], "host9999.bulk.test\t10.1.2.3");
  EXPECT_LT(took, 2.0);
}

TEST(Resolve, HelpVersionAndUsageErrors) {
  EXPECT_EQ(run(std::string(MOSS_RESOLVE) + " --help").status, 0);
  auto v = run(std::string(MOSS_RESOLVE) + " --version");
  EXPECT_EQ(v.out, "moss-resolve 0.1.0\n");
  auto bad = run(std::string(MOSS_RESOLVE) + " --frob");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("unknown option \"--frob\""), std::string::npos) << bad.err;
  auto badc = run(std::string(MOSS_RESOLVE) + " -c 0 x");
  EXPECT_EQ(badc.status, 2);
  auto bads = run(std::string(MOSS_RESOLVE) + " --server nonsense x");
  EXPECT_EQ(bads.status, 2) << bads.err;
  EXPECT_NE(bads.err.find("bad value \"nonsense\" for --server"), std::string::npos) << bads.err;
}

TEST(Resolve, CtrlCStopsPendingLookups) {
  moss_test::dns_server dns;
  dns.add_a("fast.test", "10.0.0.1");
  dns.ignore("never.test");  // its lookup would wait for the resolver's timeouts
  auto t0 = std::chrono::steady_clock::now();
  auto r = run("sh -c '" + tool(dns) + " -4 fast.test never.test & pid=$!; sleep 0.3; kill -INT $pid; wait $pid; echo \"exit=$?\"'");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 1.5);
  EXPECT_NE(r.out.find("fast.test\t10.0.0.1\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("never.test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exit=1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("moss-resolve: interrupted"), std::string::npos) << r.err;
}

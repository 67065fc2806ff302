// scan_test: the built moss-scan, run against loopback listeners opened here.
#include "leak_check.hpp"
#include "sample_process.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using moss_test::WithHub;
using namespace sample_test;

namespace {

const std::string scan_bin = MOSS_SCAN;

// listeners: a few open loopback ports, closed at the end of the test.
struct listeners {
  std::vector<int> fds, ports;
  explicit listeners(int n) {
    for (int i = 0; i < n; ++i) {
      int port = 0;
      fds.push_back(listen_any(&port));
      ports.push_back(port);
    }
    std::sort(ports.begin(), ports.end());
  }
  ~listeners() {
    for (int fd : fds) close(fd);
  }
};

std::string expected_lines(const std::vector<int>& ports) {
  std::string s;
  for (int p : ports) s += std::to_string(p) + " open\n";
  return s;
}

}  // namespace

TEST_F(WithHub, OpenLoopbackPortsAreFoundSortedAndClosedOnesAreNot) {
  listeners open(3);
  std::vector<int> closed{free_port(), free_port()};
  std::string list;
  for (int p : closed) list += std::to_string(p) + ",";
  for (auto it = open.ports.rbegin(); it != open.ports.rend(); ++it) list += std::to_string(*it) + ",";
  list.pop_back();
  auto r = run({scan_bin, "127.0.0.1", list});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, expected_lines(open.ports));
}

TEST_F(WithHub, ARangeAroundAnOpenPortFindsItByName) {
  listeners open(1);
  int p = open.ports[0];
  std::string range = std::to_string(std::max(1, p - 50)) + "-" + std::to_string(std::min(65535, p + 50));
  auto r = run({scan_bin, "localhost", range, "--timeout", "2000"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(p) + " open\n"), std::string::npos) << r.out;
}

TEST_F(WithHub, OneAtATimeGivesTheSameAnswer) {
  listeners open(2);
  std::string list = std::to_string(open.ports[0]) + "," + std::to_string(free_port()) + "," + std::to_string(open.ports[1]);
  auto r = run({scan_bin, "-c", "1", "127.0.0.1", list});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, expected_lines(open.ports));
}

TEST_F(WithHub, AThousandPortsAreScannedQuickly) {
  listeners open(1);
  int p = open.ports[0];
  int lo = std::max(1, p - 500);
  auto t0 = clk::now();
  auto r = run({scan_bin, "-c", "200", "127.0.0.1", std::to_string(lo) + "-" + std::to_string(lo + 999)});
  EXPECT_LT(clk::now() - t0, 10s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(p) + " open\n"), std::string::npos) << r.out;
}

// silent: a listener whose accept queue is full, so the kernel drops
// further SYNs and a connect to it hangs until the scanner's timeout.
struct silent {
  int port = 0;
  int fd = -1;
  std::vector<int> fillers;
  silent() {
    fd = listen_any(&port, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 3; ++i) {
      int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers.push_back(f);
    }
    std::this_thread::sleep_for(50ms);  // let the handshakes that fit complete
  }
  ~silent() {
    for (int f : fillers) close(f);
    close(fd);
  }
};

TEST_F(WithHub, APortThatNeverAnswersCountsAsClosedAfterTheTimeout) {
  silent s;
  listeners open(1);
  auto t0 = clk::now();
  auto r = run({scan_bin, "--timeout", "300", "127.0.0.1", std::to_string(s.port) + "," + std::to_string(open.ports[0])});
  auto took = clk::now() - t0;
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, expected_lines(open.ports));
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 5s);
}

TEST_F(WithHub, ConcurrencyBoundsHowManyAttemptsWaitAtOnce) {
  std::vector<std::unique_ptr<silent>> quiet;
  std::string list;
  for (int i = 0; i < 4; ++i) {
    quiet.push_back(std::make_unique<silent>());
    list += (i ? "," : "") + std::to_string(quiet.back()->port);
  }
  auto timed = [&](const char* c) {
    auto t0 = clk::now();
    auto r = run({scan_bin, "-c", c, "--timeout", "400", "127.0.0.1", list});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    return clk::now() - t0;
  };
  EXPECT_GE(timed("1"), 1550ms);  // four 400 ms timeouts one after another
  EXPECT_LT(timed("4"), 1500ms);  // all four at once: ~400 ms
}

// catches() is true once pid has a handler for sig (its SigCgt mask in
// /proc), i.e. once a signal would reach moss rather than kill it.
bool catches(pid_t pid, int sig) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f == nullptr) return false;
  char line[256];
  unsigned long long mask = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "SigCgt: %llx", &mask) == 1) break;
  std::fclose(f);
  return (mask >> (sig - 1)) & 1;
}

TEST_F(WithHub, CtrlCStopsAScanThatIsWaitingAndExitsOne) {
  silent s;
  child c({scan_bin, "--timeout", "60000", "127.0.0.1", std::to_string(s.port)});
  auto deadline = clk::now() + 10s;
  while (!catches(c.pid(), SIGINT) && clk::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(catches(c.pid(), SIGINT));
  auto t0 = clk::now();
  c.signal(SIGINT);
  EXPECT_EQ(c.exit_code(), 1);
  EXPECT_LT(clk::now() - t0, 5s);
  EXPECT_NE(c.rest_of_stderr().find("moss-scan: interrupted"), std::string::npos);
}

TEST_F(WithHub, ABadRangeIsAUsageErrorNamingThePart) {
  auto a = run({scan_bin, "127.0.0.1", "22,90-80,443"});
  EXPECT_EQ(a.status, 2);
  EXPECT_NE(a.err.find("bad port range \"90-80\""), std::string::npos) << a.err;
  auto b = run({scan_bin, "127.0.0.1", "22,http"});
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("bad port range \"http\""), std::string::npos) << b.err;
  auto c = run({scan_bin, "127.0.0.1", "1-70000"});
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.err.find("bad port range \"1-70000\""), std::string::npos) << c.err;
  EXPECT_EQ(c.out, "");
}

TEST_F(WithHub, BadConcurrencyAndUnknownFlagsAreUsageErrors) {
  auto a = run({scan_bin, "-c", "0", "127.0.0.1", "80"});
  EXPECT_EQ(a.status, 2);
  EXPECT_NE(a.err.find("bad value \"0\" for -c"), std::string::npos) << a.err;
  auto b = run({scan_bin, "--frobnicate", "127.0.0.1", "80"});
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("moss-scan: unknown option \"--frobnicate\" (try --help)"), std::string::npos) << b.err;
  auto c = run({scan_bin, "127.0.0.1"});
  EXPECT_EQ(c.status, 2);
}

TEST_F(WithHub, AnUnknownHostIsReportedAndExitsOne) {
  auto r = run({scan_bin, "no-such-host.invalid", "80"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot resolve \"no-such-host.invalid\""), std::string::npos) << r.err;
}

TEST_F(WithHub, HelpAndVersionExitZero) {
  auto h = run({scan_bin, "--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("usage: moss-scan"), std::string::npos);
  auto v = run({scan_bin, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, "moss-scan 0.1.0\n");
}

TEST_F(WithHub, ASummaryFollowsOnStderrAndNoProgressWhenItIsNotATerminal) {
  listeners open(1);
  std::string list = std::to_string(open.ports[0]) + "," + std::to_string(free_port());
  auto r = run({scan_bin, "127.0.0.1", list});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, expected_lines(open.ports));
  EXPECT_EQ(r.err.rfind("moss-scan: 2 ports of 127.0.0.1 (127.0.0.1) scanned in ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(" s: 1 open, 1 closed\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
}

TEST_F(WithHub, ProgressIsDrawnOnStderrWhenItIsATerminal) {
  listeners open(1);
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  int slave = ::open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(slave, 2);
    std::string port = std::to_string(open.ports[0]);
    execl(scan_bin.c_str(), scan_bin.c_str(), "127.0.0.1", port.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(slave);
  ::close(out[1]);
  std::string tty;
  char buf[4096];
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child is gone
    tty.append(buf, static_cast<std::size_t>(n));
  }
  int st = 0;
  waitpid(pid, &st, 0);
  ::close(master);
  ::close(out[0]);
  EXPECT_NE(tty.find("\r\033[Kmoss-scan: 0/1 ports, 0 open"), std::string::npos) << tty;
  EXPECT_NE(tty.find("\r\033[Kmoss-scan: 1 port of 127.0.0.1 (127.0.0.1) scanned in "), std::string::npos) << tty;
}

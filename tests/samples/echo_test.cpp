// echo_test: the built moss-echo, run as a user would, against loopback
// clients opened here.
#include "leak_check.hpp"
#include "sample_process.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using moss_test::WithHub;
using namespace sample_test;

namespace {

const std::string echo_bin = MOSS_ECHO;

// start() runs moss-echo on a free port with extra args; *port is where.
std::unique_ptr<child> start(std::vector<std::string> extra, int* port) {
  std::vector<std::string> args{echo_bin, "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto c = std::make_unique<child>(args);
  auto l = c->line();
  *port = l ? port_in(*l) : -1;
  return c;
}

// echo_many() opens n connections at once, sends each its own bytes, and
// checks every one gets exactly its bytes back.
void echo_many(int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = connect_to(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  for (int i = 0; i < n; ++i) ASSERT_TRUE(send_all(fds[i], "client " + std::to_string(i) + std::string(3000, 'x')));
  for (int i = 0; i < n; ++i) {
    std::string want = "client " + std::to_string(i) + std::string(3000, 'x');
    EXPECT_EQ(recv_n(fds[i], want.size()), want) << "connection " << i;
  }
  for (int fd : fds) close(fd);
}

}  // namespace

TEST_F(WithHub, ManyConcurrentClientsGetTheirOwnBytesBack) {
  int port = 0;
  auto c = start({}, &port);
  ASSERT_GT(port, 0);
  echo_many(port, 200);
}

TEST_F(WithHub, AMegabyteComesBackWhileItIsStillBeingSent) {
  int port = 0;
  auto c = start({}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  // Far more than the socket buffers hold: the server must echo while we
  // send, so the sending runs on its own thread.
  std::thread sender([&] { send_all(fd, data); });
  std::string got = recv_n(fd, data.size());
  sender.join();
  EXPECT_TRUE(got == data) << "got " << got.size() << " bytes";
  close(fd);
}

TEST_F(WithHub, TwoWorkersRunOnTwoThreadsAndBothServe) {
  int port = 0;
  auto c = start({"--workers", "2"}, &port);
  ASSERT_GT(port, 0);
  echo_many(port, 100);
  // The main thread and one more, each with its hub.
  int threads = 0;
  std::string path = "/proc/" + std::to_string(c->pid()) + "/task";
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++threads;
    closedir(d);
  }
  EXPECT_GE(threads, 2);
  c->signal(SIGTERM);
  EXPECT_EQ(c->exit_code(), 0);
}

TEST_F(WithHub, SigtermStopsAcceptingButLetsAnOpenConnectionFinish) {
  int port = 0;
  auto c = start({"--grace", "30"}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "before"));
  ASSERT_EQ(recv_n(fd, 6), "before");
  c->signal(SIGTERM);
  // The listener goes away: new connections are refused.
  bool refused = false;
  for (auto deadline = clk::now() + 5s; clk::now() < deadline && !refused;) {
    int probe = connect_to(port);
    if (probe < 0) refused = true;
    else close(probe);
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(c->exit_code(200ms).has_value()) << "exited with a connection still open";
  ASSERT_TRUE(send_all(fd, "after"));
  EXPECT_EQ(recv_n(fd, 5), "after");
  close(fd);
  EXPECT_EQ(c->exit_code(), 0);
}

TEST_F(WithHub, AConnectionStillOpenAtTheEndOfTheGracePeriodIsCut) {
  int port = 0;
  auto c = start({"--grace", "0.3"}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "x"));
  ASSERT_EQ(recv_n(fd, 1), "x");
  auto t0 = clk::now();
  c->signal(SIGINT);
  std::string rest;
  EXPECT_TRUE(recv_to_eof(fd, &rest));  // the server closed it
  EXPECT_EQ(c->exit_code(), 0);
  EXPECT_GE(clk::now() - t0, 250ms);
  EXPECT_LT(clk::now() - t0, 8s);
  EXPECT_NE(c->rest_of_stderr().find("grace period over"), std::string::npos);
  close(fd);
}

TEST_F(WithHub, HelpAndVersionExitZero) {
  auto h = run({echo_bin, "--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("usage: moss-echo"), std::string::npos) << h.out;
  auto v = run({echo_bin, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, "moss-echo 0.1.0\n");
}

TEST_F(WithHub, BadFlagsAreUsageErrorsNamingTheFlag) {
  auto a = run({echo_bin, "--frobnicate"});
  EXPECT_EQ(a.status, 2);
  EXPECT_NE(a.err.find("moss-echo: unknown option \"--frobnicate\" (try --help)"), std::string::npos) << a.err;
  auto b = run({echo_bin, "--workers", "zero"});
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("bad value \"zero\" for --workers"), std::string::npos) << b.err;
  auto p = run({echo_bin, "--port", "70000"});
  EXPECT_EQ(p.status, 2);
  EXPECT_NE(p.err.find("bad value \"70000\" for --port"), std::string::npos) << p.err;
}

TEST_F(WithHub, APortInUseIsReportedAndExitsOne) {
  int port = 0;
  int busy = listen_any(&port);
  auto r = run({echo_bin, "--port", std::to_string(port)});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
  close(busy);
}

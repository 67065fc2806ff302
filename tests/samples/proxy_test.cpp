// proxy_test: the built moss-proxy between loopback clients and a small
// upstream server run here on a thread.
#include "leak_check.hpp"
#include "sample_process.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using moss_test::WithHub;
using namespace sample_test;

namespace {

const std::string proxy_bin = MOSS_PROXY;

// upstream: a thread per connection, which echoes what arrives and, once
// the client's side ends (EOF), sends "<eof>" and closes.
class upstream {
 public:
  upstream() : fd_(listen_any(&port_)), thread_([this] { loop(); }) {}
  ~upstream() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept
    thread_.join();
    for (auto& t : conns_) t.join();  // each ends at EOF or its 10 s timeout
    close(fd_);
  }
  int port() const { return port_; }

 private:
  void loop() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      conns_.emplace_back([c] {
        set_timeouts(c, 10s);
        char buf[16384];
        ssize_t n;
        while ((n = recv(c, buf, sizeof buf, 0)) > 0)
          if (!send_all(c, std::string(buf, static_cast<std::size_t>(n)))) break;
        if (n == 0) send_all(c, "<eof>");
        close(c);
      });
    }
  }
  int port_ = 0;
  int fd_;
  std::vector<std::thread> conns_;  // touched by the accept thread only, until it is joined
  std::thread thread_;
};

std::unique_ptr<child> start(std::vector<std::string> args, int* port) {
  args.insert(args.begin(), proxy_bin);
  auto c = std::make_unique<child>(args);
  auto l = c->line();
  *port = l ? port_in(*l) : -1;
  return c;
}

}  // namespace

TEST_F(WithHub, BytesGoBothWaysAndAHalfCloseReachesUpstream) {
  upstream up;
  int port = 0;
  auto p = start({"0", "127.0.0.1:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "hello"));
  EXPECT_EQ(recv_n(fd, 5), "hello");
  // Our side ends; upstream must see EOF, and its reply still reach us.
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  std::string rest;
  EXPECT_TRUE(recv_to_eof(fd, &rest));
  EXPECT_EQ(rest, "<eof>");
  close(fd);
  p->signal(SIGTERM);
  EXPECT_EQ(p->exit_code(), 0);
}

TEST_F(WithHub, AMegabyteGoesThroughIntactWithTheLongFlags) {
  upstream up;
  int port = 0;
  auto p = start({"--listen", "127.0.0.1:0", "--upstream", "localhost:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + i / 1000);
  std::thread sender([&] {
    send_all(fd, data);
    shutdown(fd, SHUT_WR);
  });
  std::string got;
  EXPECT_TRUE(recv_to_eof(fd, &got));
  sender.join();
  EXPECT_TRUE(got == data + "<eof>") << "got " << got.size() << " bytes";
  close(fd);
}

TEST_F(WithHub, AnIdleConnectionIsClosed) {
  upstream up;
  int port = 0;
  auto p = start({"--idle-timeout", "0.3", "0", "127.0.0.1:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "x"));
  ASSERT_EQ(recv_n(fd, 1), "x");
  auto t0 = clk::now();
  std::string rest;
  EXPECT_TRUE(recv_to_eof(fd, &rest));  // closed by the proxy, not our 10 s timeout
  EXPECT_GE(clk::now() - t0, 250ms);
  EXPECT_LT(clk::now() - t0, 5s);
  close(fd);
}

TEST_F(WithHub, AClientThatStopsReadingIsClosedAtTheIdleTimeout) {
  upstream up;
  int port = 0;
  auto p = start({"--idle-timeout", "0.3", "0", "127.0.0.1:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  int small = 65536;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  // Send without reading until every buffer on the way is full and nothing
  // moves for 100 ms: the echo back towards us stalls, and with it the rest.
  std::string chunk(65536, 'z');
  std::size_t sent = 0;
  for (auto deadline = clk::now() + 20s; clk::now() < deadline;) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    pollfd pf{fd, POLLOUT, 0};
    if (poll(&pf, 1, 100) == 0) break;
  }
  std::this_thread::sleep_for(1s);  // longer than the idle timeout
  // What was echoed before the stall is still ours to read; then the
  // connection ends (EOF, or a reset for the bytes the proxy never read).
  std::size_t got = 0;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got += static_cast<std::size_t>(n);
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << std::strerror(errno);
  EXPECT_LT(got, sent);
  close(fd);
}

TEST_F(WithHub, AnUpstreamResetReachesTheClientAsAReset) {
  // An upstream that sends part of an answer, then resets the connection.
  int up_port = 0;
  int up = listen_any(&up_port);
  ASSERT_GE(up, 0);
  std::thread upstream_thread([up] {
    int c = accept4(up, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    send_all(c, "partial");
    std::this_thread::sleep_for(100ms);  // the proxy forwards it before the reset
    linger l{1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c);
  });
  int port = 0;
  auto p = start({"0", "127.0.0.1:" + std::to_string(up_port)}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(recv_n(fd, 7), "partial");
  // Then the reset, not the end of file a complete answer ends with.
  char c;
  errno = 0;
  ssize_t r = recv(fd, &c, 1, 0);
  EXPECT_EQ(r, -1);
  EXPECT_EQ(errno, ECONNRESET) << std::strerror(errno);
  close(fd);
  upstream_thread.join();
  close(up);
  p->signal(SIGTERM);
  EXPECT_EQ(p->exit_code(), 0);
}

TEST_F(WithHub, ARefusedUpstreamClosesTheClientAndSaysSoOnOneLine) {
  int dead = free_port();
  ASSERT_LT(connect_to(dead), 0) << "port " << dead << " was meant to be closed";
  int port = 0;
  auto p = start({"0", "127.0.0.1:" + std::to_string(dead)}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  std::string rest;
  EXPECT_TRUE(recv_to_eof(fd, &rest));
  EXPECT_EQ(rest, "");
  close(fd);
  auto l = p->err_line();
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(*l, "moss-proxy: cannot connect to upstream 127.0.0.1:" + std::to_string(dead) + ": Connection refused");
}

TEST_F(WithHub, PastMaxConnectionsAClientWaitsForASlot) {
  upstream up;
  int port = 0;
  auto p = start({"--max-connections", "1", "0", "127.0.0.1:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int first = connect_to(port);
  ASSERT_GE(first, 0);
  ASSERT_TRUE(send_all(first, "one"));
  ASSERT_EQ(recv_n(first, 3), "one");
  int second = connect_to(port, 300ms);  // the kernel's backlog takes it
  ASSERT_GE(second, 0);
  ASSERT_TRUE(send_all(second, "two"));
  EXPECT_EQ(recv_n(second, 3), "") << "served while the only slot was taken";
  set_timeouts(second, 10s);
  close(first);
  EXPECT_EQ(recv_n(second, 3), "two");
  close(second);
}

TEST_F(WithHub, SigintClosesOpenConnectionsAndExitsZero) {
  upstream up;
  int port = 0;
  auto p = start({"0", "127.0.0.1:" + std::to_string(up.port())}, &port);
  ASSERT_GT(port, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "hi"));
  ASSERT_EQ(recv_n(fd, 2), "hi");
  p->signal(SIGINT);
  EXPECT_EQ(p->exit_code(), 0);
  char c;
  errno = 0;
  ssize_t r = recv(fd, &c, 1, 0);
  EXPECT_TRUE(r == 0 || (r < 0 && errno == ECONNRESET)) << r << " " << std::strerror(errno);  // not our 10 s timeout
  close(fd);
}

TEST_F(WithHub, AnIPv6ListenAddressWorks) {
  upstream up;
  auto p = std::make_unique<child>(std::vector<std::string>{proxy_bin, "--listen", "[::1]:0", "--upstream",
                                                            "127.0.0.1:" + std::to_string(up.port())});
  auto l = p->line();
  ASSERT_TRUE(l.has_value());
  auto pos = l->find("::1:");
  ASSERT_NE(pos, std::string::npos) << *l;
  int port = std::atoi(l->c_str() + pos + 4);
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  set_timeouts(fd, 10s);
  ASSERT_TRUE(send_all(fd, "six"));
  EXPECT_EQ(recv_n(fd, 3), "six");
  close(fd);
}

TEST_F(WithHub, HelpVersionAndBadArguments) {
  auto h = run({proxy_bin, "--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("usage: moss-proxy"), std::string::npos);
  auto v = run({proxy_bin, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, "moss-proxy 0.1.0\n");
  auto a = run({proxy_bin, "8080", "nowhere"});
  EXPECT_EQ(a.status, 2);
  EXPECT_NE(a.err.find("bad value \"nowhere\" for UPSTREAM"), std::string::npos) << a.err;
  auto b = run({proxy_bin, "--idle-timeout", "soon", "8080", "h:1"});
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("bad value \"soon\" for --idle-timeout"), std::string::npos) << b.err;
  auto c = run({proxy_bin, "--frobnicate"});
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.err.find("moss-proxy: unknown option \"--frobnicate\" (try --help)"), std::string::npos) << c.err;
}

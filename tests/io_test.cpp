// io_test: moss::io on real sockets, pipes and files — echo between tasks,
// many TCP clients on one thread, accept/connect, timeouts, the user's
// O_NONBLOCK, closing fds under waiters, poll, bad input, resets, and
// pass-through outside greenlets.
#include <moss/io.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

// unique_fd closes through moss::io::close, as code using moss should.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) moss::io::close(fd_);
    fd_ = fd;
  }
  int release() { return std::exchange(fd_, -1); }
  int get() const { return fd_; }
  operator int() const { return fd_; }

 private:
  int fd_ = -1;
};

std::pair<unique_fd, unique_fd> socket_pair(int type = SOCK_STREAM) {
  int sv[2];
  if (moss::io::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

std::pair<unique_fd, unique_fd> pipe_pair() {
  int p[2];
  if (moss::io::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  return {unique_fd(p[0]), unique_fd(p[1])};
}

// A TCP listener on 127.0.0.1 and an ephemeral port.
struct listener {
  unique_fd fd;
  sockaddr_in addr{};
  explicit listener(int backlog = 128) {
    fd = unique_fd(moss::io::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    if (listen(fd, backlog) != 0) throw std::runtime_error("listen");
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

unique_fd tcp_socket() { return unique_fd(moss::io::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

// read_exactly() reads n bytes or fails the test.
std::string read_exactly(int fd, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t k = moss::io::read(fd, out.data() + got, n - got);
    if (k <= 0) {
      ADD_FAILURE() << "read returned " << k << " (" << std::strerror(errno) << ") after " << got << " of " << n;
      out.resize(got);
      return out;
    }
    got += static_cast<std::size_t>(k);
  }
  return out;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

// A task that counts while others wait: proof that a wait let it run.
struct ticker {
  int ticks = 0;
  bool stop = false;
  moss::task<void> t = moss::spawn([this] {
    while (!stop) {
      ++ticks;
      moss::sleep(2ms);
    }
  });
  ~ticker() {
    stop = true;
    t.join();
  }
};

}  // namespace

TEST_F(WithHub, EchoBetweenTwoTasksOverASocketpair) {
  auto [a, b] = socket_pair();
  auto echo = moss::spawn([fd = b.get()] {
    char buf[512];
    for (;;) {
      ssize_t n = moss::io::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      ASSERT_EQ(moss::io::write(fd, buf, static_cast<std::size_t>(n)), n);
    }
  });
  for (int i = 0; i < 500; ++i) {
    std::string msg = "ping " + std::to_string(i);
    ASSERT_EQ(moss::io::write(a, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    EXPECT_EQ(read_exactly(a, msg.size()), msg);
  }
  ::shutdown(a, SHUT_WR);
  echo.join();
}

TEST_F(WithHub, ABlockingWriteLargerThanTheSocketBufferSendsEverything) {
  auto [a, b] = socket_pair();
  const std::string big = pattern(4 << 20, 3);
  std::string got;
  auto reader = moss::spawn([&, fd = b.get()] { got = read_exactly(fd, big.size()); });
  // One call, far more than the socket buffer holds: it parks in between
  // while the reader drains, and returns the full count.
  EXPECT_EQ(moss::io::write(a, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  reader.join();
  EXPECT_TRUE(got == big);
}

TEST_F(WithHub, EchoOverTcpLoopbackWithManyConcurrentClients) {
  listener l;
  constexpr int clients = 60;
  constexpr int rounds = 20;
  std::vector<moss::task<void>> handlers;
  auto server = moss::spawn([&] {
    for (int i = 0; i < clients; ++i) {
      int c = moss::io::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
      ASSERT_GE(c, 0) << std::strerror(errno);
      handlers.push_back(moss::spawn([c] {
        unique_fd fd(c);
        char buf[256];
        for (;;) {
          ssize_t n = moss::io::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) return;
          ASSERT_EQ(moss::io::send(fd, buf, static_cast<std::size_t>(n), 0), n);
        }
      }));
    }
  });
  int finished = 0;
  std::vector<moss::task<void>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(moss::spawn([&, i] {
      unique_fd fd = tcp_socket();
      ASSERT_EQ(moss::io::connect(fd, l.sa(), sizeof l.addr), 0) << std::strerror(errno);
      for (int r = 0; r < rounds; ++r) {
        std::string msg = "client " + std::to_string(i) + " round " + std::to_string(r);
        ASSERT_EQ(moss::io::send(fd, msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
        ASSERT_EQ(read_exactly(fd, msg.size()), msg);
      }
      ++finished;
    }));
  }
  for (auto& c : cs) c.join();
  server.join();
  for (auto& h : handlers) h.join();
  EXPECT_EQ(finished, clients);
}

TEST_F(WithHub, AcceptAndConnectLetOtherTasksRun) {
  listener l;
  ticker tick;
  unique_fd accepted;
  auto server = moss::spawn([&] { accepted = unique_fd(moss::io::accept(l.fd, nullptr, nullptr)); });
  moss::sleep(30ms);  // the server sits in accept meanwhile; the ticker runs
  EXPECT_FALSE(server.ready());
  EXPECT_GT(tick.ticks, 3);
  unique_fd c = tcp_socket();
  ASSERT_EQ(moss::io::connect(c, l.sa(), sizeof l.addr), 0);
  server.join();
  ASSERT_GE(accepted.get(), 0);
  ASSERT_EQ(moss::io::write(c, "hi", 2), 2);
  EXPECT_EQ(read_exactly(accepted, 2), "hi");
}

TEST_F(WithHub, ConnectToAListenerWithAFullBacklogTimesOut) {
  // With backlog 0 the accept queue holds one connection; further SYNs are
  // dropped (the client would retry after a second), so connect hangs in
  // SYN_SENT: a reliable, loopback-only way to make connect wait.
  listener l(0);
  unique_fd first = tcp_socket();
  ASSERT_EQ(moss::io::connect(first, l.sa(), sizeof l.addr), 0);
  ticker tick;
  unique_fd second = tcp_socket();
  auto t0 = clk::now();
  int rc = moss::io::connect(second, l.sa(), sizeof l.addr, 200ms);
  int err = errno;
  auto took = clk::now() - t0;
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ETIMEDOUT) << std::strerror(err);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 900ms);  // the SYN retry comes at 1 s
  EXPECT_GT(tick.ticks, 5);
  // The socket is left blocking, as it was.
  EXPECT_EQ(fcntl(second, F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(WithHub, ConnectWithoutATimeoutHonoursSoSndtimeoAndReportsEinprogress) {
  listener l(0);
  unique_fd first = tcp_socket();
  ASSERT_EQ(moss::io::connect(first, l.sa(), sizeof l.addr), 0);
  unique_fd second = tcp_socket();
  timeval tv{0, 150'000};
  ASSERT_EQ(setsockopt(second, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::connect(second, l.sa(), sizeof l.addr), -1);
  EXPECT_EQ(errno, EINPROGRESS);  // what the kernel's own timed-out connect says
  EXPECT_GE(clk::now() - t0, 150ms);
}

TEST_F(WithHub, ConnectFailureIsReported) {
  unique_fd probe = tcp_socket();
  sockaddr_in a{};
  {
    listener l;  // grab a free port, then close it
    a = l.addr;
  }
  EXPECT_EQ(moss::io::connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a, 5s), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
}

TEST_F(WithHub, SoRcvtimeoEndsAReadWithEagain) {
  auto [a, b] = socket_pair();
  timeval tv{0, 100'000};
  ASSERT_EQ(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  ticker tick;
  char c;
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::read(a, &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  auto took = clk::now() - t0;
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s);
  EXPECT_GT(tick.ticks, 3);  // waited cooperatively
}

TEST_F(WithHub, NoteTimeoutChangesTheTimeoutOfAKnownSocket) {
  auto [a, b] = socket_pair();
  char c;
  auto w = moss::spawn([fd = b.get()] { moss::sleep(20ms); moss::io::write(fd, "x", 1); });
  ASSERT_EQ(moss::io::read(a, &c, 1), 1);  // parked once: the timeouts are known (none)
  w.join();
  timeval tv{0, 50'000};
  ASSERT_EQ(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  moss::io::note_timeout(a, SO_RCVTIMEO, tv);
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::read(a, &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(clk::now() - t0, 50ms);
}

TEST_F(WithHub, AUserNonblockingFdReturnsEagainWithoutParking) {
  auto [a, b] = socket_pair();
  ASSERT_EQ(fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK), 0);
  bool other_ran = false;
  auto other = moss::spawn([&] { other_ran = true; });
  char c;
  EXPECT_EQ(moss::io::read(a, &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(moss::io::recv(a, &c, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_FALSE(other_ran);  // nothing parked, so nothing else ran
  other.join();
}

TEST_F(WithHub, NoteNonblockingIsRespectedAfterTheFdIsKnown) {
  auto [a, b] = socket_pair();
  char c;
  auto w = moss::spawn([fd = b.get()] { moss::sleep(10ms); moss::io::write(fd, "x", 1); });
  ASSERT_EQ(moss::io::read(a, &c, 1), 1);  // blocking: parked until the write
  w.join();
  ASSERT_EQ(fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK), 0);
  moss::io::note_nonblocking(a, true);
  EXPECT_EQ(moss::io::read(a, &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(fcntl(a, F_SETFL, fcntl(a, F_GETFL) & ~O_NONBLOCK), 0);
  moss::io::note_nonblocking(a, false);
  auto w2 = moss::spawn([fd = b.get()] { moss::sleep(10ms); moss::io::write(fd, "y", 1); });
  ASSERT_EQ(moss::io::read(a, &c, 1), 1);
  EXPECT_EQ(c, 'y');
  w2.join();
}

TEST_F(WithHub, MsgDontwaitNeverParks) {
  auto [a, b] = socket_pair();
  char c;
  EXPECT_EQ(moss::io::recv(a, &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(WithHub, ClosingAFdWakesEveryWaiterWithEbadf) {
  auto [a, b] = socket_pair();
  int fd = a.release();
  std::vector<std::pair<ssize_t, int>> results;
  auto reader = [&] {
    char c;
    ssize_t n = moss::io::read(fd, &c, 1);
    results.emplace_back(n, errno);
  };
  auto r1 = moss::spawn(reader);
  auto r2 = moss::spawn(reader);
  moss::yield();  // both run until they park in read
  ASSERT_TRUE(results.empty());
  EXPECT_EQ(moss::io::close(fd), 0);
  r1.join();
  r2.join();
  ASSERT_EQ(results.size(), 2u);
  for (auto [n, e] : results) {
    EXPECT_EQ(n, -1);
    EXPECT_EQ(e, EBADF);
  }
}

TEST_F(WithHub, AReusedFdNumberDoesNotWakeTheOldWaiter) {
  auto [a, b] = socket_pair();
  int fd = a.release();
  ssize_t n = 0;
  int err = 0;
  std::string seen;
  auto reader = moss::spawn([&] {
    char buf[16];
    n = moss::io::read(fd, buf, sizeof buf);
    err = errno;
    if (n > 0) seen.assign(buf, static_cast<std::size_t>(n));
  });
  moss::yield();  // parked in read
  moss::io::close(fd);  // schedules the reader, which has not run yet
  // Before it runs, the number is reused and the new fd has data.
  auto [c, d] = socket_pair();
  ASSERT_EQ(c.get(), fd) << "the kernel gives the lowest free number";
  ASSERT_EQ(moss::io::write(d, "new", 3), 3);
  reader.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EBADF);
  EXPECT_EQ(seen, "");
  EXPECT_EQ(read_exactly(c, 3), "new");  // still there for its owner
}

TEST_F(WithHub, PollWaitsUntilAnyOfSeveralFdsIsReady) {
  auto [a0, b0] = socket_pair();
  auto [a1, b1] = socket_pair();
  auto [p0, p1] = pipe_pair();
  auto writer = moss::spawn([fd = b1.get()] {
    moss::sleep(30ms);
    moss::io::write(fd, "!", 1);
  });
  ticker tick;
  pollfd fds[3] = {{a0, POLLIN, 0}, {a1, POLLIN, 0}, {p0, POLLIN, 0}};
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::poll(fds, 3, 5000), 1);
  EXPECT_GE(clk::now() - t0, 30ms);
  EXPECT_EQ(fds[0].revents, 0);
  EXPECT_EQ(fds[1].revents, POLLIN);
  EXPECT_EQ(fds[2].revents, 0);
  EXPECT_GT(tick.ticks, 3);
  writer.join();
}

TEST_F(WithHub, PollTimesOutAndReportsReadyFdsAtOnce) {
  auto [a, b] = socket_pair();
  pollfd in{a, POLLIN, 0};
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::poll(&in, 1, 50), 0);
  EXPECT_GE(clk::now() - t0, 50ms);
  pollfd both[2] = {{a, POLLIN, 0}, {a, POLLOUT, 0}};
  EXPECT_EQ(moss::io::poll(both, 2, -1), 1);  // writable now: no wait
  EXPECT_EQ(both[1].revents, POLLOUT);
}

TEST_F(WithHub, PollSeesAHangUp) {
  auto [a, b] = socket_pair();
  auto closer = moss::spawn([&b] {
    moss::sleep(10ms);
    b.reset();
  });
  pollfd p{a, 0, 0};  // no events asked: hang-up is always reported
  EXPECT_EQ(moss::io::poll(&p, 1, 5000), 1);
  EXPECT_NE(p.revents & POLLHUP, 0);
  closer.join();
}

TEST_F(WithHub, PollManyFdsAtOnce) {
  std::vector<std::pair<unique_fd, unique_fd>> pairs;
  for (int i = 0; i < 40; ++i) pairs.push_back(socket_pair());
  std::vector<pollfd> fds;
  for (auto& p : pairs) fds.push_back({p.first, POLLIN, 0});
  auto writer = moss::spawn([&] {
    moss::sleep(10ms);
    moss::io::write(pairs[37].second, "x", 1);
  });
  EXPECT_EQ(moss::io::poll(fds.data(), fds.size(), 5000), 1);
  EXPECT_EQ(fds[37].revents, POLLIN);
  writer.join();
}

TEST_F(WithHub, WaitReadableAndWritable) {
  auto [a, b] = socket_pair();
  EXPECT_EQ(moss::io::wait_writable(a, 1s), 0);
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::wait_readable(a, 40ms), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  EXPECT_GE(clk::now() - t0, 40ms);
  auto w = moss::spawn([fd = b.get()] {
    moss::sleep(10ms);
    moss::io::write(fd, "x", 1);
  });
  EXPECT_EQ(moss::io::wait_readable(a), 0);
  // Readable stays readable until read: a second wait returns at once, even
  // though epoll (edge-triggered) will not report it again.
  EXPECT_EQ(moss::io::wait_readable(a, 0ms), 0);
  char c;
  EXPECT_EQ(moss::io::read(a, &c, 1), 1);
  EXPECT_EQ(moss::io::wait_readable(a, 0ms), -1);
  w.join();
}

TEST_F(WithHub, InvalidFdsGiveEbadfLikeTheRealCalls) {
  char c = 0;
  int closed_fd;
  {
    auto [a, b] = socket_pair();
    closed_fd = a.get();
  }
  for (int fd : {-1, closed_fd, 1 << 20, INT_MAX}) {
    SCOPED_TRACE(fd);
    errno = 0;
    EXPECT_EQ(moss::io::read(fd, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::write(fd, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::recv(fd, &c, 1, 0), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::send(fd, &c, 1, 0), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::accept(fd, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EBADF);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    EXPECT_EQ(moss::io::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a, 1s), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::wait_readable(fd, 1s), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(moss::io::close(fd), -1);
    EXPECT_EQ(errno, EBADF);
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      EXPECT_EQ(moss::io::poll(&p, 1, 1000), 1);
      EXPECT_EQ(p.revents, POLLNVAL);
    }
  }
  // Bad arguments fail like the kernel's.
  {
    auto [a, b] = socket_pair();
    std::vector<iovec> many(IOV_MAX + 1, iovec{&c, 1});
    EXPECT_EQ(moss::io::writev(a, many.data(), static_cast<int>(many.size())), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(moss::io::readv(a, many.data(), -1), -1);
    EXPECT_EQ(errno, EINVAL);
  }
  // A call that is wrong for the kind of fd fails like the kernel's.
  auto [p0, p1] = pipe_pair();
  EXPECT_EQ(moss::io::recv(p0, &c, 1, 0), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  EXPECT_EQ(moss::io::accept(p0, nullptr, nullptr), -1);
  EXPECT_EQ(errno, ENOTSOCK);
}

TEST_F(WithHub, NegativeAndHugeTimeouts) {
  auto [a, b] = socket_pair();
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::wait_readable(a, -5s), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  pollfd p{a, POLLIN, 0};
  EXPECT_EQ(moss::io::poll(&p, 1, 0), 0);
  EXPECT_LT(clk::now() - t0, 100ms);  // checked once, no wait
  auto w = moss::spawn([fd = b.get()] {
    moss::sleep(20ms);
    moss::io::write(fd, "ab", 2);
  });
  EXPECT_EQ(moss::io::wait_readable(a, std::chrono::hours(24 * 365 * 1000)), 0);
  EXPECT_EQ(moss::io::poll(&p, 1, INT_MAX), 1);
  EXPECT_EQ(moss::io::poll(&p, 1, -7), 1);  // any negative: forever
  EXPECT_EQ(moss::io::connect(b, nullptr, 0, std::chrono::nanoseconds::max()), -1);  // bad address, not a hang
  w.join();
}

TEST_F(WithHub, APeerThatResetsMidReadGivesEconnreset) {
  listener l;
  unique_fd server_side;
  auto server = moss::spawn([&] {
    server_side = unique_fd(moss::io::accept(l.fd, nullptr, nullptr));
    moss::io::write(server_side, "part", 4);
    moss::sleep(20ms);
    linger lg{1, 0};  // close with RST
    setsockopt(server_side, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    server_side.reset();
  });
  unique_fd c = tcp_socket();
  ASSERT_EQ(moss::io::connect(c, l.sa(), sizeof l.addr), 0);
  EXPECT_EQ(read_exactly(c, 4), "part");
  char buf[16];
  EXPECT_EQ(moss::io::read(c, buf, sizeof buf), -1);  // parked until the reset
  EXPECT_EQ(errno, ECONNRESET);
  server.join();
}

TEST_F(WithHub, PlainThreadsPassThroughToTheKernel) {
  auto [a, b] = socket_pair();
  std::string got;
  bool coop = true;
  std::atomic<bool> started{false};
  std::thread t([&, fd = a.get()] {
    coop = moss::io::cooperative();
    started = true;
    char buf[8];
    ssize_t n = moss::io::read(fd, buf, sizeof buf);  // blocks this thread
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
  });
  while (!started) moss::sleep(1ms);
  moss::sleep(20ms);
  ASSERT_EQ(moss::io::write(b, "plain", 5), 5);
  t.join();
  EXPECT_FALSE(coop);
  EXPECT_EQ(got, "plain");
  EXPECT_TRUE(moss::io::cooperative());  // the test body is the main greenlet of a hub
}

TEST_F(WithHub, AConnectTimeoutWorksOnAPlainThreadToo) {
  listener l(0);
  unique_fd first = tcp_socket();
  ASSERT_EQ(moss::io::connect(first, l.sa(), sizeof l.addr), 0);
  int rc = 0, err = 0, flags = 0;
  std::chrono::nanoseconds took{};
  std::thread t([&] {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto t0 = clk::now();
    rc = moss::io::connect(s, l.sa(), sizeof l.addr, 150ms);  // blocks this thread, within the timeout
    err = errno;
    took = clk::now() - t0;
    flags = fcntl(s, F_GETFL);
    ::close(s);
  });
  t.join();
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ETIMEDOUT);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 900ms);
  EXPECT_EQ(flags & O_NONBLOCK, 0);
}

TEST_F(WithHub, AcceptHonoursSoRcvtimeo) {
  listener l;
  timeval tv{0, 60'000};
  ASSERT_EQ(setsockopt(l.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::accept(l.fd, nullptr, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(clk::now() - t0, 60ms);
}

namespace {
struct probe_node final : moss::detail::posted {
  bool* out;
  explicit probe_node(bool* o) : out(o) {}
  void dispatch() noexcept override {
    std::unique_ptr<probe_node> self(this);
    *out = moss::io::cooperative();
  }
};
}  // namespace

TEST_F(WithHub, CodeRunByTheHubItselfPassesThrough) {
  bool coop = true;
  moss::detail::hub_access::post(moss::hub::current(), std::make_unique<probe_node>(&coop), "test");
  moss::sleep(5ms);
  EXPECT_FALSE(coop);
}

TEST_F(WithHub, PipesCarryLargeTransfersBetweenTasks) {
  auto [r, w] = pipe_pair();
  const std::string big = pattern(1 << 20, 5);
  std::string got;
  auto reader = moss::spawn([&, fd = r.get()] { got = read_exactly(fd, big.size()); });
  EXPECT_EQ(moss::io::write(w, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  reader.join();
  EXPECT_TRUE(got == big);
  w.reset();
  char c;
  EXPECT_EQ(moss::io::read(r, &c, 1), 0);  // end of file once the writer is gone
}

TEST_F(WithHub, ReadvAndWritevMoveScatteredBuffers) {
  auto [a, b] = socket_pair();
  const std::string big = pattern(3 << 20, 9);
  iovec out[3] = {{const_cast<char*>(big.data()), 1 << 20},
                  {const_cast<char*>(big.data()) + (1 << 20), 1},
                  {const_cast<char*>(big.data()) + (1 << 20) + 1, big.size() - (1 << 20) - 1}};
  std::string got(big.size(), '\0');
  auto reader = moss::spawn([&, fd = b.get()] {
    std::size_t done = 0;
    while (done < got.size()) {
      iovec in[2] = {{got.data() + done, (got.size() - done) / 2}, {got.data() + done + (got.size() - done) / 2, got.size() - done - (got.size() - done) / 2}};
      ssize_t n = moss::io::readv(fd, in, 2);
      ASSERT_GT(n, 0);
      done += static_cast<std::size_t>(n);
    }
  });
  EXPECT_EQ(moss::io::writev(a, out, 3), static_cast<ssize_t>(big.size()));
  reader.join();
  EXPECT_TRUE(got == big);
}

TEST_F(WithHub, RecvWithMsgWaitallFillsTheBuffer) {
  auto [a, b] = socket_pair();
  auto w = moss::spawn([fd = b.get()] {
    for (const char* part : {"ab", "cd", "ef"}) {
      moss::io::write(fd, part, 2);
      moss::sleep(5ms);
    }
  });
  char buf[6];
  EXPECT_EQ(moss::io::recv(a, buf, 6, MSG_WAITALL), 6);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
  w.join();
}

TEST_F(WithHub, SendmsgAndRecvmsgCarryDataAndAddresses) {
  auto [a, b] = socket_pair(SOCK_DGRAM);
  auto w = moss::spawn([fd = b.get()] {
    moss::sleep(5ms);
    char msg[] = "datagram";
    iovec v{msg, 8};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    moss::io::sendmsg(fd, &m, 0);
  });
  char buf[32];
  iovec v{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  EXPECT_EQ(moss::io::recvmsg(a, &m, 0), 8);
  EXPECT_EQ(std::string(buf, 8), "datagram");
  w.join();
}

TEST_F(WithHub, RecvmmsgAndSendmmsgMoveBatches) {
  auto [a, b] = socket_pair(SOCK_DGRAM);
  char out[3][4] = {"one", "two", "six"};
  mmsghdr send_vec[3]{};
  iovec send_iov[3];
  for (int i = 0; i < 3; ++i) {
    send_iov[i] = {out[i], 3};
    send_vec[i].msg_hdr.msg_iov = &send_iov[i];
    send_vec[i].msg_hdr.msg_iovlen = 1;
  }
  auto w = moss::spawn([&, fd = b.get()] {
    moss::sleep(5ms);
    EXPECT_EQ(moss::io::sendmmsg(fd, send_vec, 3, 0), 3);
  });
  char in[3][8];
  mmsghdr recv_vec[3]{};
  iovec recv_iov[3];
  for (int i = 0; i < 3; ++i) {
    recv_iov[i] = {in[i], 8};
    recv_vec[i].msg_hdr.msg_iov = &recv_iov[i];
    recv_vec[i].msg_hdr.msg_iovlen = 1;
  }
  EXPECT_EQ(moss::io::recvmmsg(a, recv_vec, 3, 0, nullptr), 3);  // waits for all three
  EXPECT_EQ(std::string(in[2], recv_vec[2].msg_len), "six");
  w.join();
}

TEST_F(WithHub, SendfileFromAFileIntoASocketSendsEverything) {
  char path[] = "/tmp/moss-io-test-XXXXXX";
  int f = mkstemp(path);
  ASSERT_GE(f, 0);
  unlink(path);
  unique_fd file(f);
  const std::string body = pattern(2 << 20, 11);
  ASSERT_EQ(moss::io::write(file, body.data(), body.size()), static_cast<ssize_t>(body.size()));  // a regular file: passes through
  auto [a, b] = socket_pair();
  std::string got;
  auto reader = moss::spawn([&, fd = b.get()] { got = read_exactly(fd, body.size()); });
  off_t off = 0;
  EXPECT_EQ(moss::io::sendfile(a, file, &off, body.size()), static_cast<ssize_t>(body.size()));
  EXPECT_EQ(off, static_cast<off_t>(body.size()));
  reader.join();
  EXPECT_TRUE(got == body);
  EXPECT_EQ(fcntl(a, F_GETFL) & O_NONBLOCK, 0);  // restored
}

TEST_F(WithHub, SendfileIntoAPipeWaitsForRoom) {
  char path[] = "/tmp/moss-io-test-XXXXXX";
  unique_fd file(mkstemp(path));
  ASSERT_GE(file.get(), 0);
  unlink(path);
  const std::string body = pattern(1 << 20, 13);
  ASSERT_EQ(moss::io::write(file, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  auto [r, w] = pipe_pair();
  std::string got;
  auto reader = moss::spawn([&, fd = r.get()] { got = read_exactly(fd, body.size()); });
  off_t off = 0;
  EXPECT_EQ(moss::io::sendfile(w, file, &off, body.size()), static_cast<ssize_t>(body.size()));
  reader.join();
  EXPECT_TRUE(got == body);
}

TEST_F(WithHub, ConnectToAUnixListenerWithAFullBacklogWaitsForRoom) {
  // A unix socket's connect fails with EAGAIN (no readiness to wait for)
  // while the listener's queue is full: moss retries on a timer.
  std::string path = "/tmp/moss-io-test-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  auto* sa = reinterpret_cast<sockaddr*>(&a);
  unique_fd l(moss::io::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(bind(l, sa, sizeof a), 0);
  ASSERT_EQ(listen(l, 0), 0);
  std::vector<unique_fd> clients;
  // Fill the queue: connects succeed until one would wait.
  for (int i = 0; i < 8; ++i) {
    unique_fd c(moss::io::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (moss::io::connect(c, sa, sizeof a, 20ms) != 0) {
      ASSERT_EQ(errno, ETIMEDOUT);
      break;
    }
    clients.push_back(std::move(c));
  }
  ASSERT_FALSE(clients.empty());
  ASSERT_LT(clients.size(), 8u) << "the backlog never filled";
  auto server = moss::spawn([&] {
    moss::sleep(30ms);
    unique_fd accepted(moss::io::accept(l, nullptr, nullptr));  // makes room
    ASSERT_GE(accepted.get(), 0);
  });
  unique_fd last(moss::io::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto t0 = clk::now();
  EXPECT_EQ(moss::io::connect(last, sa, sizeof a), 0) << std::strerror(errno);
  EXPECT_GE(clk::now() - t0, 25ms);
  server.join();
  unlink(path.c_str());
}

TEST_F(WithHub, RegularFilesPassStraightThrough) {
  char path[] = "/tmp/moss-io-test-XXXXXX";
  unique_fd f(mkstemp(path));
  ASSERT_GE(f.get(), 0);
  unlink(path);
  ASSERT_EQ(moss::io::write(f, "file data", 9), 9);
  ASSERT_EQ(lseek(f, 0, SEEK_SET), 0);
  char buf[16];
  EXPECT_EQ(moss::io::read(f, buf, sizeof buf), 9);
  EXPECT_EQ(moss::io::read(f, buf, sizeof buf), 0);
  EXPECT_EQ(moss::io::wait_readable(f, 0ms), 0);  // always ready, like poll says
}

TEST_F(WithHub, AKilledReaderUnwindsAndLeavesTheFdUsable) {
  auto [a, b] = socket_pair();
  bool unwound = false;
  auto reader = moss::spawn([&, fd = a.get()] {
    struct mark {
      bool* b;
      ~mark() { *b = true; }
    } m{&unwound};
    char c;
    moss::io::read(fd, &c, 1);
  });
  moss::yield();
  reader.kill();
  EXPECT_TRUE(unwound);
  // The next reader of the same fd parks and wakes normally.
  auto w = moss::spawn([fd = b.get()] {
    moss::sleep(5ms);
    moss::io::write(fd, "z", 1);
  });
  char c;
  EXPECT_EQ(moss::io::read(a, &c, 1), 1);
  w.join();
}

TEST_F(WithHub, Dup2OverAWatchedFdWakesItsWaitersWithEbadf) {
  auto [a, b] = socket_pair();
  auto [c, d] = socket_pair();
  ssize_t n = 0;
  int err = 0;
  auto reader = moss::spawn([&, fd = a.get()] {
    char x;
    n = moss::io::read(fd, &x, 1);
    err = errno;
  });
  moss::yield();
  ASSERT_EQ(moss::io::dup2(c, a), a.get());
  reader.join();
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EBADF);
  // a now names c's socket: data written to d arrives on it.
  ASSERT_EQ(moss::io::write(d, "q", 1), 1);
  EXPECT_EQ(read_exactly(a, 1), "q");
}

TEST_F(WithHub, EventfdAndOtherPollableFdsWaitCooperatively) {
  unique_fd e(eventfd(0, EFD_CLOEXEC));
  ASSERT_GE(e.get(), 0);
  auto w = moss::spawn([fd = e.get()] {
    moss::sleep(10ms);
    std::uint64_t one = 3;
    moss::io::write(fd, &one, sizeof one);
  });
  ticker tick;
  std::uint64_t v = 0;
  EXPECT_EQ(moss::io::read(e, &v, sizeof v), 8);
  EXPECT_EQ(v, 3u);
  w.join();
}

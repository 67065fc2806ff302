// io_hook_test: plain blocking POSIX socket code becomes concurrent in a
// program linked with libmoss_patch.
#include <moss/detail/greenlet_impl.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"
#include "patch/hooks.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

// Written as anyone would without moss: blocking calls, no moss API.
int listen_on_loopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(fd, 128);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A slow echo handler: waits 100 ms with usleep, then echoes one line.
void slow_echo(int c) {
  char buf[256];
  ssize_t n = read(c, buf, sizeof buf);
  usleep(100'000);
  if (n > 0) write(c, buf, static_cast<size_t>(n));
  close(c);
}

}  // namespace

TEST_F(WithHub, TwentyBlockingClientsOfASlowServerRunConcurrently) {
  int port = 0;
  int lfd = listen_on_loopback(&port);
  constexpr int clients = 20;
  auto server = moss::spawn([&] {
    std::vector<moss::task<void>> handlers;
    for (int i = 0; i < clients; ++i) {
      int c = accept(lfd, nullptr, nullptr);
      ASSERT_GE(c, 0);
      handlers.push_back(moss::spawn(slow_echo, c));
    }
    for (auto& h : handlers) h.join();
  });
  auto t0 = clk::now();
  std::vector<moss::task<std::string>> ts;
  for (int i = 0; i < clients; ++i)
    ts.push_back(moss::spawn([port](int id) {
      int fd = connect_to(port);
      std::string msg = "hello " + std::to_string(id);
      write(fd, msg.data(), msg.size());
      char buf[256];
      ssize_t n = read(fd, buf, sizeof buf);
      close(fd);
      return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("error");
    }, i));
  for (int i = 0; i < clients; ++i) EXPECT_EQ(ts[i].get(), "hello " + std::to_string(i));
  server.join();
  close(lfd);
  EXPECT_LT(clk::now() - t0, 1s);  // 2 s if the handlers ran one after another
}

TEST_F(WithHub, ClosingAFdWakesAGreenletBlockedReadingItWithEbadf) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int err = 0;
  ssize_t r = 0;
  auto reader = moss::spawn([&] {
    char c;
    r = read(sv[0], &c, 1);
    err = errno;
  });
  moss::yield();
  close(sv[0]);
  reader.join();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, EBADF);
  close(sv[1]);
}

TEST_F(WithHub, AFdTheUserMadeNonBlockingStillReturnsEagain) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  char c;
  errno = 0;
  EXPECT_EQ(read(sv[0], &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  int on = 1;
  ioctl(sv[1], FIONBIO, &on);
  errno = 0;
  EXPECT_EQ(recv(sv[1], &c, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  close(sv[0]);
  close(sv[1]);
}

TEST_F(WithHub, SoRcvtimeoIsHonouredWhileOthersRun) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  timeval tv{0, 50'000};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int ticks = 0;
  auto ticker = moss::spawn([&] {
    for (int i = 0; i < 5; ++i) {
      ++ticks;
      usleep(1000);
    }
  });
  auto t0 = clk::now();
  char c;
  errno = 0;
  EXPECT_EQ(read(sv[0], &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(clk::now() - t0, 45ms);
  EXPECT_EQ(ticks, 5);
  ticker.join();
  close(sv[0]);
  close(sv[1]);
}

TEST_F(WithHub, PollSelectAndEpollWaitParkInsteadOfBlocking) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  auto writer = moss::spawn([&] {
    usleep(20'000);
    write(p[1], "x", 1);
  });
  pollfd pf{p[0], POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_TRUE(pf.revents & POLLIN);
  writer.join();
  char c;
  read(p[0], &c, 1);

  writer = moss::spawn([&] {
    usleep(20'000);
    write(p[1], "y", 1);
  });
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  timeval tv{5, 0};
  EXPECT_EQ(select(p[0] + 1, &rs, nullptr, nullptr, &tv), 1);
  EXPECT_TRUE(FD_ISSET(p[0], &rs));
  EXPECT_LT(tv.tv_sec, 5);  // the time left was written back
  writer.join();
  read(p[0], &c, 1);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = p[0];
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  writer = moss::spawn([&] {
    usleep(20'000);
    write(p[1], "z", 1);
  });
  epoll_event out{};
  EXPECT_EQ(epoll_wait(ep, &out, 1, 5000), 1);
  EXPECT_EQ(out.data.fd, p[0]);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 1);  // level-triggered: still readable
  writer.join();
  EXPECT_EQ(poll(&pf, 1, 10), 1);
  read(p[0], &c, 1);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 20), 0);  // times out
  close(ep);
  close(p[0]);
  close(p[1]);
}

TEST_F(WithHub, AKillInsideAHookedReadReturnsEcanceled) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ssize_t r = 0;
  int err = 0;
  auto t = moss::spawn([&] {
    char c;
    r = read(sv[0], &c, 1);
    err = errno;
  });
  moss::yield();
  t.kill();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECANCELED);
  close(sv[0]);
  close(sv[1]);
}

TEST_F(WithHub, AKilledTaskThatReturnsWithoutWaitingAgainEndsKilled) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int err = 0;
  auto t = moss::spawn([&] {
    char c;
    ssize_t r = read(sv[0], &c, 1);  // the kill lands here
    err = errno;
    return r;                        // and the C code returns without waiting again
  });
  moss::yield();
  t.kill();
  EXPECT_EQ(err, ECANCELED);
  EXPECT_TRUE(t.killed());
  EXPECT_FALSE(t.successful());
  EXPECT_THROW(t.get(), moss::greenlet_exit);
  close(sv[0]);
  close(sv[1]);
}

// A C loop that retries whatever fails must not pin the hub after a kill:
// each later hooked call that would wait fails again, but lets the others
// run first.
TEST_F(WithHub, ACRetryLoopAfterAKillFailsEveryWaitButLetsOthersRun) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  long ticks = 0;
  bool stop = false;
  auto ticker = moss::spawn([&] {
    while (!stop) {
      ++ticks;
      moss::yield();
    }
  });
  int failures = 0, other_errors = 0;
  long ticks_at_first_failure = -1, ticks_at_last = -1;
  auto t = moss::spawn([&] {
    char c;
    for (int i = 0; i < 200; ++i) {
      if (read(sv[0], &c, 1) == -1 && errno == ECANCELED) ++failures;
      else ++other_errors;
      if (i == 0) ticks_at_first_failure = ticks;
    }
    ticks_at_last = ticks;
  });
  moss::sleep(5ms);
  t.kill();
  stop = true;
  ticker.join();
  EXPECT_EQ(failures, 200);
  EXPECT_EQ(other_errors, 0);
  EXPECT_GE(ticks_at_last - ticks_at_first_failure, 150) << "the retry loop ran without letting the ticker run";
  EXPECT_TRUE(t.killed());
  close(sv[0]);
  close(sv[1]);
}

TEST_F(WithHub, AFiredTimeoutFailsHookedWaitsWithEtimedoutUntilItsScopeEnds) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  char c;
  auto t0 = clk::now();
  {
    moss::timeout limit(30ms);
    EXPECT_EQ(read(sv[0], &c, 1), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_GE(clk::now() - t0, 25ms);
    EXPECT_EQ(read(sv[0], &c, 1), -1);  // still inside the expired scope
    EXPECT_EQ(errno, ETIMEDOUT);
  }
  // Out of the scope the timeout is withdrawn: calls wait and work again.
  auto writer = moss::spawn([&] {
    moss::sleep(10ms);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
  });
  EXPECT_EQ(read(sv[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  writer.join();
  moss::sleep(1ms);  // no stale timeout_error is raised
  close(sv[0]);
  close(sv[1]);
}

// What C code sees for each exception that can end a hooked wait.
TEST_F(WithHub, OnlyATimeoutErrorBecomesEtimedout) {
  auto t = moss::spawn([] {
    using moss::patch::interrupted;
    moss::detail::greenlet_impl* self = moss::detail::current_impl();
    EXPECT_EQ(interrupted(std::make_exception_ptr(moss::timeout_error("t"))), ETIMEDOUT);
    self->pending_ = nullptr;
    EXPECT_EQ(interrupted(std::make_exception_ptr(moss::greenlet_exit{})), ECANCELED);
    self->pending_ = nullptr;
    EXPECT_EQ(interrupted(std::make_exception_ptr(moss::loop_exit{})), EDEADLK);
    EXPECT_FALSE(self->pending_) << "loop_exit concerns that wait only";
    EXPECT_EQ(interrupted(std::make_exception_ptr(moss::error("some other failure"))), ECANCELED);
    self->pending_ = nullptr;
    EXPECT_EQ(interrupted(std::make_exception_ptr(std::bad_alloc())), ENOMEM);
    EXPECT_FALSE(self->pending_) << "an error of the call itself is not re-raised later";
    self->pending_ = nullptr;
  });
  t.join();
  EXPECT_TRUE(t.successful());
}

TEST_F(WithHub, InvalidFdsGiveTheRealErrors) {
  char c;
  errno = 0;
  EXPECT_EQ(read(-1, &c, 1), -1);
  EXPECT_EQ(errno, EBADF);
  errno = 0;
  EXPECT_EQ(recv(9999, &c, 1, 0), -1);
  EXPECT_EQ(errno, EBADF);
  pollfd pf{9999, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 10), 1);
  EXPECT_EQ(pf.revents, POLLNVAL);
}

TEST_F(WithHub, PlainThreadsUseTheRealCalls) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread t([&] {
    char c = 0;
    EXPECT_EQ(read(sv[0], &c, 1), 1);  // blocks this plain thread
    EXPECT_EQ(c, 'q');
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(write(sv[1], "q", 1), 1);
  t.join();
  close(sv[0]);
  close(sv[1]);
}

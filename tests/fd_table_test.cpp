// fd_table_test: the io layer's per-fd records — lazy classification, one
// epoll registration per fd, generations, keepalive while parked, the
// readiness-then-call path for fds without RWF_NOWAIT, closes from other
// threads, and the table's end at thread exit.
#include <moss/io.hpp>
#include <moss/moss.hpp>

#include "io/fd_table.hpp"
#include "core/hub.hpp"
#include "leak_check.hpp"

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pty.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

using namespace std::chrono_literals;
using moss::detail::fd_kind;
using moss::detail::fd_record;
using moss::detail::fd_table;
using moss::detail::tri;
using moss_test::WithHub;

namespace {

fd_table& table() {
  fd_table* t = fd_table::for_call();
  if (t == nullptr) throw std::runtime_error("no fd table on this thread");
  return *t;
}

// epoll_registrations() counts fd's entries in this hub's epoll, as the
// kernel lists them in /proc/self/fdinfo.
int epoll_registrations(int fd) {
  int epfd = moss::detail::hub_core::current().events.epoll_fd();
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(epfd));
  std::string word;
  int n = 0;
  while (in >> word)
    if (word == "tfd:") {
      int t = -1;
      in >> t;
      if (t == fd) ++n;
    }
  return n;
}

// epoll_events() is the event mask fd is registered for in this hub's
// epoll (0 if it is not), from /proc/self/fdinfo.
unsigned epoll_events(int fd) {
  int epfd = moss::detail::hub_core::current().events.epoll_fd();
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(epfd));
  std::string word;
  while (in >> word)
    if (word == "tfd:") {
      int t = -1;
      std::string label;
      unsigned events = 0;
      in >> t >> label >> std::hex >> events >> std::dec;
      if (t == fd && label == "events:") return events;
    }
  return 0;
}

struct sock_pair {
  int a = -1, b = -1;
  sock_pair() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
    a = sv[0];
    b = sv[1];
  }
  ~sock_pair() {
    if (a >= 0) moss::io::close(a);
    if (b >= 0) moss::io::close(b);
  }
};

// tcp_pair: a connected TCP pair on loopback, `client` made by
// moss::io::socket, `server` by moss::io::accept.
struct tcp_pair {
  int client = -1, server = -1;
  tcp_pair() {
    int l = moss::io::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("tcp listener");
    client = moss::io::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (moss::io::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    server = moss::io::accept(l, nullptr, nullptr);
    moss::io::close(l);
    if (server < 0) throw std::runtime_error("accept");
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A read that wrongly parks fails after a second instead of hanging.
    timeval tv{1, 0};
    setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    moss::io::note_timeout(server, SO_RCVTIMEO, tv);
  }
  ~tcp_pair() {
    moss::io::close(client);
    moss::io::close(server);
  }
};

}  // namespace

TEST_F(WithHub, FdsAreClassifiedByKindOnFirstUse) {
  sock_pair s;  // made by libc: moss has never seen them
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int file = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  int ev = eventfd(0, EFD_CLOEXEC);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  fd_table& t = table();
  EXPECT_EQ(t.get(s.a)->kind, fd_kind::socket);
  EXPECT_EQ(t.get(p[0])->kind, fd_kind::pipe);
  EXPECT_EQ(t.get(p[1])->kind, fd_kind::pipe);
  EXPECT_EQ(t.get(file)->kind, fd_kind::file);
  EXPECT_EQ(t.get(ev)->kind, fd_kind::other);
  EXPECT_EQ(t.get(null)->kind, fd_kind::other);
  EXPECT_EQ(t.get(-1), nullptr);
  EXPECT_EQ(t.get(1 << 20), nullptr);  // not open
  // Reading /dev/null never waits; waiting on it finds it cannot be polled.
  char c;
  EXPECT_EQ(moss::io::read(null, &c, 1), 0);
  EXPECT_EQ(moss::io::wait_readable(null, 1s), 0);
  for (int fd : {p[0], p[1], file, ev, null}) moss::io::close(fd);
}

TEST_F(WithHub, AFdIsRegisteredWithEpollOnceForAllItsWaits) {
  sock_pair s;
  EXPECT_EQ(epoll_registrations(s.a), 0);  // a fast call that never waited registers nothing
  char c;
  ASSERT_EQ(moss::io::write(s.b, "x", 1), 1);
  ASSERT_EQ(moss::io::read(s.a, &c, 1), 1);
  EXPECT_EQ(epoll_registrations(s.a), 0);
  for (int i = 0; i < 5; ++i) {
    auto w = moss::spawn([&] {
      moss::sleep(2ms);
      moss::io::write(s.b, "z", 1);
    });
    ASSERT_EQ(moss::io::read(s.a, &c, 1), 1);  // parks until the write
    w.join();
  }
  EXPECT_EQ(epoll_registrations(s.a), 1);
  EXPECT_TRUE(table().get(s.a)->registered);
}

TEST_F(WithHub, AFdIsWatchedForOutputOnlyOnceAGreenletWaitsToWrite) {
  sock_pair s;
  char c;
  auto w = moss::spawn([&] {
    moss::sleep(2ms);
    moss::io::write(s.b, "z", 1);
  });
  ASSERT_EQ(moss::io::read(s.a, &c, 1), 1);  // parks: registers
  w.join();
  EXPECT_NE(epoll_events(s.a) & EPOLLIN, 0u);
  EXPECT_EQ(epoll_events(s.a) & EPOLLOUT, 0u) << "only read so far";

  // Fill s.a's send buffer, so the next write parks; a greenlet draining the
  // other end must then wake it. A write that wrongly waits for an edge
  // nobody watches fails after a second instead of hanging.
  timeval tv{1, 0};
  setsockopt(s.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  moss::io::note_timeout(s.a, SO_SNDTIMEO, tv);
  std::string chunk(1 << 16, 'x');
  while (send(s.a, chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  std::size_t drained = 0;
  auto drain = moss::spawn([&] {
    moss::sleep(5ms);
    ssize_t n;
    while ((n = recv(s.b, chunk.data(), chunk.size(), MSG_DONTWAIT)) > 0) drained += static_cast<std::size_t>(n);
  });
  EXPECT_EQ(moss::io::write(s.a, "y", 1), 1);
  drain.join();
  EXPECT_GT(drained, 0u);
  EXPECT_NE(epoll_events(s.a) & EPOLLOUT, 0u);
  EXPECT_EQ(epoll_registrations(s.a), 1);
  EXPECT_TRUE(table().get(s.a)->watching_output);
}

TEST_F(WithHub, NotifyCloseDeregistersAndStartsANewGeneration) {
  sock_pair s;
  auto w = moss::spawn([&] {
    moss::sleep(2ms);
    moss::io::write(s.b, "z", 1);
  });
  char c;
  ASSERT_EQ(moss::io::read(s.a, &c, 1), 1);
  w.join();
  ASSERT_EQ(epoll_registrations(s.a), 1);
  std::uint32_t gen = fd_table::generation(s.a);
  moss::io::notify_close(s.a);
  EXPECT_EQ(epoll_registrations(s.a), 0);
  EXPECT_NE(fd_table::generation(s.a), gen);
  EXPECT_EQ(table().existing(s.a)->kind, fd_kind::unknown);
  // Still open (notify_close made no close): the record comes back on use.
  EXPECT_EQ(table().get(s.a)->kind, fd_kind::socket);
}

TEST_F(WithHub, AGreenletParkedOnAFdKeepsTheHubPollingInsteadOfLoopExit) {
  sock_pair s;
  std::string got;
  auto reader = moss::spawn([&] {
    char buf[8];
    ssize_t n = moss::io::read(s.a, buf, sizeof buf);
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
  });
  moss::yield();
  EXPECT_EQ(moss::detail::hub_core::current().keepalive, 1u);
  // Only another thread can wake the reader; while the main greenlet joins
  // it, no timer is armed and nothing else is ready.
  std::thread writer([fd = s.b] {
    std::this_thread::sleep_for(50ms);
    ::write(fd, "late", 4);
  });
  reader.join();  // without keepalive: moss::loop_exit
  writer.join();
  EXPECT_EQ(got, "late");
  EXPECT_EQ(moss::detail::hub_core::current().keepalive, 0u);
}

TEST_F(WithHub, AKilledWaiterLeavesNoNodeAndNoKeepaliveBehind) {
  sock_pair s;
  auto reader = moss::spawn([&] {
    char c;
    moss::io::read(s.a, &c, 1);
  });
  auto writer_side = moss::spawn([&] {
    // Fill the socket so a write waits too.
    std::string big(1 << 20, 'w');
    moss::io::write(s.b, big.data(), big.size());
  });
  moss::yield();
  fd_record* ra = table().get(s.a);
  fd_record* rb = table().get(s.b);
  EXPECT_EQ(ra->readers.size(), 1u);
  EXPECT_EQ(rb->writers.size(), 1u);
  reader.kill();
  writer_side.kill();
  EXPECT_TRUE(ra->readers.empty());
  EXPECT_TRUE(rb->writers.empty());
  EXPECT_EQ(moss::detail::hub_core::current().keepalive, 0u);
}

TEST_F(WithHub, ReadinessThatNobodyWaitedForIsNotLost) {
  // Edge-triggered epoll reports a readiness once. Here it is reported
  // while nobody waits; the next wait must still see it.
  sock_pair s;
  auto w = moss::spawn([&] {
    moss::sleep(2ms);
    moss::io::write(s.b, "1", 1);
  });
  char c;
  ASSERT_EQ(moss::io::read(s.a, &c, 1), 1);  // registers the fd
  w.join();
  ASSERT_EQ(moss::io::write(s.b, "2", 1), 1);
  moss::sleep(5ms);  // the hub polls: the edge arrives, no one is parked
  EXPECT_TRUE(table().get(s.a)->maybe_readable);
  EXPECT_EQ(moss::io::wait_readable(s.a, 0ms), 0);
  EXPECT_EQ(moss::io::read(s.a, &c, 1), 1);
  EXPECT_EQ(c, '2');
  // Then not ready: the bit clears, and a second reader parks without a try.
  auto w2 = moss::spawn([&] {
    moss::sleep(5ms);
    moss::io::write(s.b, "3", 1);
  });
  EXPECT_EQ(moss::io::read(s.a, &c, 1), 1);
  EXPECT_EQ(c, '3');
  w2.join();
}

TEST_F(WithHub, PipesWithoutRwfNowaitWaitForReadinessThenCall) {
  int p[2];
  ASSERT_EQ(moss::io::pipe2(p, O_CLOEXEC), 0);
  // As on kernels whose pipes refuse RWF_NOWAIT.
  table().get(p[0])->nowait_read = tri::no;
  table().get(p[1])->nowait_write = tri::no;
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  std::string got(big.size(), '\0');
  int reads = 0;
  auto reader = moss::spawn([&] {
    std::size_t done = 0;
    while (done < got.size()) {
      ssize_t n = moss::io::read(p[0], got.data() + done, got.size() - done);
      ASSERT_GT(n, 0);
      done += static_cast<std::size_t>(n);
      ++reads;
    }
  });
  EXPECT_EQ(moss::io::write(p[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
  reader.join();
  EXPECT_TRUE(got == big);
  EXPECT_GT(reads, 1);  // partial reads of what was there, never a block
  EXPECT_EQ(table().get(p[0])->nowait_read, tri::no);
  moss::io::close(p[0]);
  moss::io::close(p[1]);
}

TEST_F(WithHub, APtyWorksThroughTheReadinessPath) {
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  termios tio;
  tcgetattr(slave, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave, TCSANOW, &tio);
  auto w = moss::spawn([&] {
    moss::sleep(10ms);
    moss::io::write(master, "tty!", 4);
  });
  char buf[8];
  std::size_t done = 0;
  while (done < 4) {
    ssize_t n = moss::io::read(slave, buf + done, sizeof buf - done);
    ASSERT_GT(n, 0);
    done += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(std::string(buf, 4), "tty!");
  EXPECT_EQ(table().get(slave)->kind, fd_kind::other);
  EXPECT_EQ(table().get(slave)->nowait_read, tri::no);  // ttys refuse RWF_NOWAIT
  w.join();
  moss::io::close(master);
  moss::io::close(slave);
}

TEST_F(WithHub, ACloseOnAnotherThreadWakesAWaiterHereWithEbadf) {
  sock_pair s;
  int fd = std::exchange(s.a, -1);
  ssize_t n = 0;
  int err = 0;
  auto reader = moss::spawn([&] {
    char c;
    n = moss::io::read(fd, &c, 1);
    err = errno;
  });
  moss::yield();
  ASSERT_EQ(table().get(fd)->readers.size(), 1u);
  std::thread closer([fd] { moss::io::close(fd); });  // a plain thread: no table of its own
  closer.join();
  reader.join();  // woken through the hub's cross-thread queue
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EBADF);
  EXPECT_EQ(epoll_registrations(fd), 0);
}

TEST_F(WithHub, AFdClosedBehindMossBackIsNotTrustedWhenItsNumberComesBack) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(table().get(p[0])->kind, fd_kind::pipe);
  ::close(p[0]);  // unseen by moss
  int sv[2];
  ASSERT_EQ(moss::io::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(sv[0], p[0]);
  EXPECT_EQ(table().get(sv[0])->kind, fd_kind::socket);
  for (int fd : {p[1], sv[0], sv[1]}) moss::io::close(fd);
}

TEST_F(WithHub, AThreadThatExitsWithATaskParkedOnAFdCleansUp) {
  sock_pair s;
  std::atomic<bool> killed{false};
  std::size_t tables = fd_table::live_tables();
  std::thread t([&] {
    moss::spawn([&] {
      struct mark {
        std::atomic<bool>* k;
        ~mark() { *k = true; }
      } m{&killed};
      char c;
      moss::io::read(s.a, &c, 1);
    });
    moss::sleep(5ms);  // the task parks on s.a; then the thread exits
  });
  t.join();
  EXPECT_TRUE(killed);
  EXPECT_EQ(fd_table::live_tables(), tables);  // freed, not leaked
  // Its hub is gone, with its epoll: a close here has nobody to tell.
  moss::io::close(std::exchange(s.a, -1));
}

TEST_F(WithHub, EachThreadHasItsOwnTable) {
  fd_table* mine = &table();
  fd_table* theirs = nullptr;
  bool none_without_hub = false;
  std::thread([&] {
    none_without_hub = fd_table::for_call() == nullptr;
    moss::hub::current();
    theirs = fd_table::for_call();
  }).join();
  EXPECT_TRUE(none_without_hub);
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
}

TEST_F(WithHub, AShortTcpReadMarksTheSocketNotReadySoTheNextReadParksAtOnce) {
  table();  // made now, so socket() records what it makes
  tcp_pair p;
  fd_record* r = table().get(p.server);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->tcp, tri::yes);  // from the listener, and from socket()'s arguments
  EXPECT_EQ(table().get(p.client)->tcp, tri::yes);
  char buf[64];
  // A read that fills the buffer proves nothing: more may be queued.
  ASSERT_EQ(moss::io::write(p.client, "0123456789", 10), 10);
  moss::sleep(1ms);
  ASSERT_EQ(moss::io::read(p.server, buf, 4), 4);
  EXPECT_TRUE(r->maybe_readable);
  // A short one emptied the queue.
  ASSERT_EQ(moss::io::read(p.server, buf, sizeof buf), 6);
  EXPECT_FALSE(r->maybe_readable);
  // The next read parks without trying, and the data that comes later wakes it.
  auto w = moss::spawn([&] {
    moss::sleep(5ms);
    moss::io::write(p.client, "later", 5);
  });
  ASSERT_EQ(moss::io::read(p.server, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "later");
  w.join();
  // Unix stream sockets can end a read early with data left (passed fds,
  // credentials): a short read there proves nothing.
  sock_pair s;
  ASSERT_EQ(moss::io::write(s.b, "x", 1), 1);
  ASSERT_EQ(moss::io::read(s.a, buf, sizeof buf), 1);
  EXPECT_TRUE(table().get(s.a)->maybe_readable);
}

TEST_F(WithHub, AShortReadThatStopsAtUrgentDataDoesNotStrandTheRest) {
  tcp_pair p;
  char buf[64];
  auto reader = moss::spawn([&] {
    std::string got;
    ssize_t k = moss::io::read(p.server, buf, sizeof buf);  // parks, then stops at the urgent mark
    if (k > 0) got.append(buf, static_cast<std::size_t>(k));
    k = moss::io::read(p.server, buf, sizeof buf);  // the rest is queued, and no new edge will come
    if (k > 0) got.append(buf, static_cast<std::size_t>(k));
    else got += "<" + std::string(std::strerror(errno)) + ">";
    return got;
  });
  moss::sleep(2ms);  // the reader is parked
  ASSERT_EQ(moss::io::send(p.client, "abc", 3, 0), 3);
  ASSERT_EQ(moss::io::send(p.client, "X", 1, MSG_OOB), 1);
  ASSERT_EQ(moss::io::send(p.client, "def", 3, 0), 3);
  EXPECT_EQ(reader.get(), "abcdef");
}

TEST_F(WithHub, AShortReadBeforeThePeersFinStillSeesTheEnd) {
  tcp_pair p;
  char buf[64];
  auto reader = moss::spawn([&] {
    std::string got;
    ssize_t k = moss::io::read(p.server, buf, sizeof buf);  // parks; data and FIN arrive together
    if (k > 0) got.append(buf, static_cast<std::size_t>(k));
    k = moss::io::read(p.server, buf, sizeof buf);  // end of file, and no new edge will come
    got += k == 0 ? "<eof>" : "<" + std::to_string(k) + " " + std::strerror(errno) + ">";
    return got;
  });
  moss::sleep(2ms);
  ASSERT_EQ(moss::io::write(p.client, "abc", 3), 3);
  ASSERT_EQ(shutdown(p.client, SHUT_WR), 0);
  EXPECT_EQ(reader.get(), "abc<eof>");
}

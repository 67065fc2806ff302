// fault_test: the kernel's calls fail under moss, and moss returns the error a
// real call gives while the hub keeps running.
//
// The faults are real: each scenario runs in a forked child that installs a
// seccomp filter (the kernel itself answers chosen system calls with an
// errno, whatever code makes them, moss's raw calls included), lowers a
// resource limit, or takes a storm of real signals. After each fault the
// child proves its hub still works: a task sleeps, and two tasks do a socket
// round trip.
#include "forked_child.hpp"

#include <moss/moss.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// A failed expectation in the child: one line on stderr (the test prints it)
// and exit status 1.
void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// loopback_listener() listens on 127.0.0.1, port 0, and gives the socket
// and the address it got.
std::pair<int, sockaddr_in> loopback_listener() {
  int lfd = moss::io::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  check(bind(lfd, reinterpret_cast<sockaddr*>(&a), len) == 0 && listen(lfd, 8) == 0, "listen");
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  return {lfd, a};
}

// fail_syscall() makes the kernel answer system call nr with -err from now on
// in this process, when `arg` (an argument index, or -1 for any call) passes
// `how` against `value` (on the argument's low 32 bits).
struct syscall_fault {
  enum test : std::uint16_t { equal = BPF_JEQ, any_bit = BPF_JSET, at_least = BPF_JGE };
  long nr;
  int arg = -1;
  std::uint32_t value = 0;
  test how = equal;
  int err = EIO;
};

void fail_syscall(const syscall_fault& f) {
  std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(f.nr), 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  if (f.arg >= 0) {
    prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                            static_cast<std::uint32_t>(offsetof(seccomp_data, args) + 8 * f.arg)));
    prog.push_back(BPF_JUMP(BPF_JMP | f.how | BPF_K, f.value, 1, 0));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<std::uint32_t>(f.err)));
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno));
  check(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0,
        std::string("seccomp: ") + std::strerror(errno));
}

// high_fd() moves fd to a number no later socket of the scenario gets, so a
// filter aimed at it by number hits nothing else (fds are reused lowest
// first).
int high_fd(int fd) {
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 900);
  check(h >= 900, std::string("F_DUPFD: ") + std::strerror(errno));
  close(fd);
  return h;
}

// still_working() is the proof after a fault: a sleep ends, and a message
// makes a round trip between two tasks over a fresh socket pair.
void still_working() {
  auto t0 = std::chrono::steady_clock::now();
  moss::sleep(5ms);
  check(std::chrono::steady_clock::now() - t0 >= 5ms, "sleep returned early");
  int sv[2];
  check(moss::io::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair after the fault");
  auto echo = moss::spawn([fd = sv[1]] {
    char c;
    if (moss::io::read(fd, &c, 1) != 1) return false;
    return moss::io::write(fd, &c, 1) == 1;
  });
  char c = 'x';
  check(moss::io::write(sv[0], &c, 1) == 1, "write after the fault");
  c = 0;
  check(moss::io::read(sv[0], &c, 1) == 1 && c == 'x', "round trip after the fault");
  check(echo.get(), "echo task after the fault");
  moss::io::close(sv[0]);
  moss::io::close(sv[1]);
}

// in_child() runs body on a hub in a forked child; the test fails with the
// child's message if body (or still_working after it) throws.
void in_child(const std::function<void()>& body) {
  auto r = moss_test::run_in_child("MOSS_TEST_UNUSED", nullptr, [&] {
    alarm(60);  // a scenario that hangs ends the child (SIGALRM) and fails the test
    try {
      body();
      still_working();
    } catch (const std::exception& e) {
      std::string line = std::string("child: ") + e.what() + "\n";
      [[maybe_unused]] auto n = write(STDERR_FILENO, line.data(), line.size());
      _exit(1);
    }
  });
  EXPECT_EQ(r.status, 0) << r.err;
}

std::string errno_name(int e) { return std::to_string(e) + " (" + std::strerror(e) + ")"; }

TEST(Fault, EpollCtlFailureIsTheCallsError) {
  in_child([] {
    int sv[2];
    check(moss::io::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    sv[0] = high_fd(sv[0]);
    fail_syscall({SYS_epoll_ctl, 2, static_cast<std::uint32_t>(sv[0]), syscall_fault::equal, ENOMEM});
    char c;
    errno = 0;
    // Nothing to read: the read must wait, and registering the fd fails.
    check(moss::io::read(sv[0], &c, 1) == -1 && errno == ENOMEM, "read got errno " + errno_name(errno));
    check(moss::io::wait_readable(sv[0], 10ms) == -1 && errno == ENOMEM, "wait_readable got " + errno_name(errno));
    pollfd p{sv[0], POLLIN, 0};
    errno = 0;
    check(moss::io::poll(&p, 1, 10) == -1 && errno == ENOMEM, "poll got " + errno_name(errno));
    // The other end is untouched.
    moss::io::close(sv[0]);
    moss::io::close(sv[1]);
  });
}

TEST(Fault, StackMmapFailureFailsSpawnOnly) {
  in_child([] {
    // Every mapping of 8 MiB or more is denied: a 16 MiB stack cannot be
    // had. Tasks already running, and spawns of default-size stacks, go on.
    fail_syscall({SYS_mmap, 1, 8u << 20, syscall_fault::at_least, ENOMEM});
    std::vector<moss::task<int>> running;
    for (int i = 0; i < 100; ++i)
      running.push_back(moss::spawn([i] {
        moss::sleep(1ms);
        return i;
      }));
    moss::spawn_options big;
    big.stack_size = 16u << 20;
    int denied = 0;
    try {
      moss::spawn(big, [] { return 0; }).join();
    } catch (const std::system_error& e) {
      check(e.code().value() == ENOMEM, std::string("spawn failed with ") + e.what());
      ++denied;
    }
    check(denied == 1, "a 16 MiB stack was mapped despite the fault");
    for (int i = 0; i < 100; ++i) check(running[i].get() == i, "a running task lost its result");
  });
}

TEST(Fault, AcceptEmfileIsReturnedNotSpun) {
  in_child([] {
    auto [lfd, a] = loopback_listener();
    socklen_t len = sizeof a;
    lfd = high_fd(lfd);
    int cfd = moss::io::socket(AF_INET, SOCK_STREAM, 0);
    check(moss::io::connect(cfd, reinterpret_cast<sockaddr*>(&a), len) == 0, "connect");
    fail_syscall({SYS_accept4, 0, static_cast<std::uint32_t>(lfd), syscall_fault::equal, EMFILE});
    std::atomic<int> ticks{0};
    auto ticker = moss::spawn([&] {
      for (int i = 0; i < 5; ++i) {
        moss::sleep(1ms);
        ++ticks;
      }
    });
    errno = 0;
    check(moss::io::accept(lfd, nullptr, nullptr) == -1 && errno == EMFILE, "accept got " + errno_name(errno));
    ticker.get();
    check(ticks == 5, "the hub stalled while accept failed");
    moss::io::close(cfd);
    moss::io::close(lfd);
  });
}

TEST(Fault, EagainStormEndsAtTheTimeout) {
  in_child([] {
    int sv[2];
    check(moss::io::socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
    char c = 'x';
    check(moss::io::write(sv[1], &c, 1) == 1, "write");
    sv[0] = high_fd(sv[0]);
    // The fd is readable, yet every receive says EAGAIN (a spurious wake-up
    // that never ends). A receive with a timeout must end at it, and other
    // tasks must run meanwhile: no spinning on the hub.
    fail_syscall({SYS_recvfrom, 0, static_cast<std::uint32_t>(sv[0]), syscall_fault::equal, EAGAIN});
    timeval tv{0, 50000};
    check(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
    moss::io::note_timeout(sv[0], SO_RCVTIMEO, tv);
    int ticks = 0;
    auto ticker = moss::spawn([&] {
      for (int i = 0; i < 10; ++i) {
        moss::sleep(2ms);
        ++ticks;
      }
    });
    auto t0 = std::chrono::steady_clock::now();
    errno = 0;
    ssize_t n = moss::io::recv(sv[0], &c, 1, 0);
    auto took = std::chrono::steady_clock::now() - t0;
    check(n == -1 && errno == EAGAIN, "recv got " + std::to_string(n) + ", errno " + errno_name(errno));
    check(took >= 45ms, "recv returned before its SO_RCVTIMEO");
    ticker.get();
    check(ticks == 10, "the hub stalled during the storm");
    moss::io::close(sv[0]);
    moss::io::close(sv[1]);
  });
}

std::atomic<long> alarms{0};

TEST(Fault, EintrStormLosesNothing) {
  in_child([] {
    // SIGALRM every 100 µs, without SA_RESTART: epoll waits and socket calls
    // are interrupted again and again. Every byte must arrive once and in
    // order, and every sleep last its time.
    struct sigaction sa{};
    sa.sa_handler = [](int) { alarms.fetch_add(1, std::memory_order_relaxed); };
    sigemptyset(&sa.sa_mask);
    check(sigaction(SIGALRM, &sa, nullptr) == 0, "sigaction");
    itimerval it{{0, 100}, {0, 100}};
    check(setitimer(ITIMER_REAL, &it, nullptr) == 0, "setitimer");
    int sv[2];
    check(moss::io::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    constexpr int n = 20000;
    auto writer = moss::spawn([fd = sv[1]] {
      for (int i = 0; i < n; ++i) {
        unsigned char b = static_cast<unsigned char>(i);
        if (moss::io::write(fd, &b, 1) != 1) return false;
        if (i % 1000 == 0) moss::sleep(200us);
      }
      return true;
    });
    for (int i = 0; i < n; ++i) {
      unsigned char b;
      ssize_t got = moss::io::read(sv[0], &b, 1);
      check(got == 1, "read " + std::to_string(i) + " got " + std::to_string(got) + ", errno " + errno_name(errno));
      check(b == static_cast<unsigned char>(i), "byte " + std::to_string(i) + " out of order");
    }
    check(writer.get(), "writer failed");
    auto t0 = std::chrono::steady_clock::now();
    moss::sleep(20ms);
    check(std::chrono::steady_clock::now() - t0 >= 20ms, "sleep cut short by EINTR");
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    check(alarms.load() > 50, "the storm did not happen: " + std::to_string(alarms.load()) + " signals");
    moss::io::close(sv[0]);
    moss::io::close(sv[1]);
  });
}

TEST(Fault, ResetMidTransferIsEconnreset) {
  in_child([] {
    auto [lfd, a] = loopback_listener();
    socklen_t len = sizeof a;
    // The peer sends half a message, then resets (SO_LINGER 0 and close).
    auto peer = moss::spawn([&] {
      int s = moss::io::accept(lfd, nullptr, nullptr);
      if (s < 0) return false;
      char half[100] = {};
      if (moss::io::write(s, half, sizeof half) != 100) return false;
      moss::sleep(10ms);
      linger l{1, 0};
      setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      return moss::io::close(s) == 0;
    });
    int cfd = moss::io::socket(AF_INET, SOCK_STREAM, 0);
    check(moss::io::connect(cfd, reinterpret_cast<sockaddr*>(&a), len) == 0, "connect");
    char buf[200];
    std::size_t got = 0;
    ssize_t r;
    while ((r = moss::io::read(cfd, buf, sizeof buf)) > 0) got += static_cast<std::size_t>(r);
    check(got == 100, "read " + std::to_string(got) + " bytes before the reset");
    check(r == -1 && errno == ECONNRESET, "after the data: " + std::to_string(r) + ", errno " + errno_name(errno));
    check(peer.get(), "peer failed");
    moss::io::close(cfd);
    moss::io::close(lfd);
  });
}

}  // namespace

// preload_test: issue 10's "Proved on unmodified programs". Each test runs an
// ordinary program that knows nothing of moss (the C and C++ programs beside
// this file, or Debian's python3 and curl) under the built mossrun, plays its
// clients or its DNS server from this plain (unpreloaded) test process, and
// checks what the program printed, how long it took, and how many OS threads
// it had: one per pthread natively, 1 to 3 under mossrun's green threads.
// Each bound is one a run without green threads, or with green threads that
// block their OS thread, misses.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "dns_server.hpp"
#include "fixtures/http_server.hpp"
#include "samples/sample_process.hpp"

namespace {

using namespace std::chrono_literals;
using sample_test::child;
using sample_test::clk;

// The most OS threads a program may have under mossrun: the thread running
// every green thread, plus the few helpers moss may start (a resolver or
// blocking-work pool thread, the monitor).
constexpr int max_green_os_threads = 3;

// The epoll_hello / thread_hello answer, byte for byte.
const std::string hello_response =
    "HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 6\r\n\r\nhello\n";
const std::string hello_request = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

std::vector<std::string> mossrun(std::vector<std::string> args) {
  args.insert(args.begin(), MOSSRUN);
  return args;
}

// os_threads() reads "Threads:" of a running process; -1 if it is gone.
int os_threads(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  return -1;
}

void raise_nofile() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

std::string describe(const sample_test::result& r) {
  return "exit status " + std::to_string(r.status) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

// words: a program's output as "key word word..." lines; w(key, i) is the
// i-th word after key (the last such line), or "(missing)".
class words {
 public:
  explicit words(const std::string& out) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string key, w;
      ls >> key;
      auto& v = lines_[key];
      v.clear();
      while (ls >> w) v.push_back(w);
    }
  }
  std::string operator()(const std::string& key, std::size_t i) const {
    auto it = lines_.find(key);
    return it != lines_.end() && it->second.size() > i ? it->second[i] : std::string("(missing)");
  }
  long num(const std::string& key, std::size_t i) const {
    std::string w = (*this)(key, i);
    char* end = nullptr;
    long v = std::strtol(w.c_str(), &end, 10);
    return end == w.c_str() ? LONG_MIN : v;
  }

 private:
  std::map<std::string, std::vector<std::string>> lines_;
};

// EXPECT_GREEN_THREADS checks an OS thread count under mossrun, and that
// nothing was said on stderr: these programs print nothing there themselves,
// so a line there is moss's (an unemulated pthread function, a warning).
#define EXPECT_GREEN_THREADS(n, r)                                                         \
  do {                                                                                     \
    EXPECT_GE((n), 1) << describe(r);                                                      \
    EXPECT_LE((n), max_green_os_threads) << "OS threads under mossrun\n" << describe(r);   \
    EXPECT_EQ((r).err, "") << "stderr\n" << describe(r);                                   \
  } while (0)

// http_swarm: n keep-alive HTTP clients of one loopback server, driven by one
// epoll loop in this process. The first round connects them (at most
// `window` connecting or waiting at once, so the listen backlog never
// overflows); every round sends one request on each connection and reads one
// answer, which must be exactly `expected`.
class http_swarm {
 public:
  http_swarm(int port, int n) : port_(port), conns_(static_cast<std::size_t>(n)) {}
  ~http_swarm() {
    for (auto& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
  }
  http_swarm(const http_swarm&) = delete;
  http_swarm& operator=(const http_swarm&) = delete;

  // round() returns how many connections got exactly `expected`; *problem
  // describes the first that did not.
  int round(const std::string& request, const std::string& expected, std::size_t window,
            std::chrono::seconds timeout, std::string* problem) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::size_t next = 0, in_flight = 0, finished = 0;
    int good = 0;
    auto fail = [&](std::size_t i, const std::string& why) {
      if (problem->empty()) *problem = "connection " + std::to_string(i) + ": " + why;
    };
    auto finish = [&](std::size_t i, bool ok) {
      epoll_ctl(ep, EPOLL_CTL_DEL, conns_[i].fd, nullptr);
      conns_[i].done = true;
      ++finished;
      --in_flight;
      if (ok) ++good;
    };
    auto send_request = [&](std::size_t i) {
      if (!sample_test::send_all(conns_[i].fd, request)) {
        fail(i, std::string("send: ") + std::strerror(errno));
        finish(i, false);
        return;
      }
      conns_[i].sent = true;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_MOD, conns_[i].fd, &ev);
    };
    for (auto& c : conns_) c.got.clear(), c.sent = c.done = false;
    auto deadline = clk::now() + timeout;
    char buf[4096];
    while (finished < conns_.size() && clk::now() < deadline) {
      while (in_flight < window && next < conns_.size()) {
        std::size_t i = next++;
        conn& c = conns_[i];
        ++in_flight;
        epoll_event ev{};
        ev.data.u64 = i;
        if (c.fd < 0) {
          c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(static_cast<std::uint16_t>(port_));
          a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          if (c.fd < 0 || (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)) {
            fail(i, std::string("connect: ") + std::strerror(errno));
            c.done = true;
            ++finished;
            --in_flight;
            continue;
          }
          ev.events = EPOLLOUT | EPOLLIN;
          epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        } else {
          ev.events = EPOLLIN;
          epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
          send_request(i);
        }
      }
      epoll_event evs[512];
      int n = epoll_wait(ep, evs, 512, 100);
      for (int k = 0; k < n; ++k) {
        std::size_t i = evs[k].data.u64;
        conn& c = conns_[i];
        if (c.done) continue;
        if (!c.sent) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            fail(i, std::string("connect: ") + std::strerror(err));
            finish(i, false);
          } else {
            send_request(i);
          }
          continue;
        }
        for (;;) {
          ssize_t r = recv(c.fd, buf, sizeof buf, 0);
          if (r > 0) {
            c.got.append(buf, static_cast<std::size_t>(r));
            continue;
          }
          if (r == 0 || errno != EAGAIN) {
            fail(i, "closed by the server after " + std::to_string(c.got.size()) + " bytes");
            finish(i, false);
          }
          break;
        }
        if (!c.done && c.got.size() >= expected.size()) {
          if (c.got != expected) fail(i, "wrong answer: \"" + c.got + "\"");
          finish(i, c.got == expected);
        }
      }
    }
    if (finished < conns_.size() && problem->empty())
      *problem = std::to_string(conns_.size() - finished) + " connections unanswered after " +
                 std::to_string(timeout.count()) + " s";
    ::close(ep);
    return good;
  }

 private:
  struct conn {
    int fd = -1;
    bool sent = false, done = false;
    std::string got;
  };
  int port_;
  std::vector<conn> conns_;
};

// server_port() reads a "port N" line from a starting server; -1 if none.
int server_port(child& server) {
  auto line = server.line(20s);
  if (!line || line->rfind("port ", 0) != 0) return -1;
  return std::atoi(line->c_str() + 5);
}

// serve_swarm() runs `clients` keep-alive clients against a thread_hello
// build (two rounds, every answer checked) and returns the server's OS
// thread count read while every connection was open.
int serve_swarm(std::vector<std::string> argv, int clients) {
  child server(std::move(argv));
  int port = server_port(server);
  if (port <= 0) {
    ADD_FAILURE() << "the server did not print its port; stderr:\n" << server.rest_of_stderr(1s);
    return -1;
  }
  http_swarm swarm(port, clients);
  std::string problem;
  int good = swarm.round(hello_request, hello_response, 1000, 60s, &problem);
  EXPECT_EQ(good, clients) << problem;
  int threads = os_threads(server.pid());
  if (good == 0) return threads;  // a second round would only wait as long again
  problem.clear();
  EXPECT_EQ(swarm.round(hello_request, hello_response, static_cast<std::size_t>(clients), 60s, &problem), clients)
      << "second request on every open connection: " << problem;
  EXPECT_FALSE(server.exit_code(0ms).has_value()) << "the server exited";
  server.signal(SIGKILL);
  EXPECT_EQ(server.rest_of_stderr(5s), "") << "the server's stderr";
  return threads;
}

class Preload : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    raise_nofile();  // the swarm's sockets; the servers inherit the limit
    signal(SIGPIPE, SIG_IGN);
  }
};

// ---- the thread-per-connection server -------------------------------------

TEST_F(Preload, ThreadPerConnectionServerServes5000ClientsOnFewOsThreads) {
  int threads = serve_swarm(mossrun({PROG_THREAD_HELLO_FORTIFY, "0"}), 5000);
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, max_green_os_threads) << "OS threads with 5,000 connection threads alive";
}

TEST_F(Preload, LargeFileBuildOfTheServerServes500Clients) {
  int threads = serve_swarm(mossrun({PROG_THREAD_HELLO, "0"}), 500);
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, max_green_os_threads);
}

// The control: natively the same program has one OS thread per connection,
// so the thread counts above measure what they claim to.
TEST_F(Preload, NativelyTheServerHasAnOsThreadPerConnection) {
  int threads = serve_swarm({PROG_THREAD_HELLO, "0"}, 50);
  EXPECT_EQ(threads, 51);
}

// expect_printed() checks a run that must exit 0 having printed exactly
// `out`, and nothing on stderr; `why` says what a failed exit means.
void expect_printed(const sample_test::result& r, const std::string& out, const char* why = "") {
  ASSERT_EQ(r.status, 0) << why << describe(r);
  EXPECT_EQ(r.out, out) << describe(r);
  EXPECT_EQ(r.err, "") << describe(r);
}

// ---- the seeds' sleep scenario ---------------------------------------------

// expect_took_four_units() checks a sleepers run (threads or tasks sleeping 1,
// 2 and 4 units at once under mossrun): it printed `woke` in order, took at
// least 4 units and less than `limit_ms` (done one after another: 7 units),
// with green threads and nothing on stderr.
void expect_took_four_units(const sample_test::result& r, const std::string& woke, long unit_ms, long limit_ms) {
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out.substr(0, r.out.find("threads")), woke) << describe(r);
  words f(r.out);
  EXPECT_GE(f.num("elapsed_ms", 0), 4 * unit_ms - 10) << describe(r);
  EXPECT_LT(f.num("elapsed_ms", 0), limit_ms) << "4 units (" << 4 * unit_ms << " ms), not 7 (" << 7 * unit_ms
                                              << " ms)\n" << describe(r);
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

TEST_F(Preload, ThreeThreadsSleepingOneTwoFourSecondsTakeFourNotSeven) {
  expect_took_four_units(sample_test::run(mossrun({PROG_SLEEPERS}), 30s), "woke 1\nwoke 2\nwoke 4\n", 1000, 6000);
}

TEST_F(Preload, ThreeThreadsUsleepingTakeFourUnitsNotSeven) {
  expect_took_four_units(sample_test::run(mossrun({PROG_SLEEPERS, "300"}), 30s), "woke 1\nwoke 2\nwoke 4\n", 300, 1800);
}

TEST_F(Preload, NativelyTheSleepersHaveFourOsThreads) {
  auto r = sample_test::run({PROG_SLEEPERS, "100"}, 30s);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(words(r.out).num("threads", 0), 4) << describe(r);
}

TEST_F(Preload, ThreadsNativeOptionKeepsOsThreads) {
  auto r = sample_test::run(mossrun({"--threads", "native", PROG_SLEEPERS, "100"}), 30s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("threads", 0), 4) << describe(r);
  EXPECT_LT(f.num("elapsed_ms", 0), 600) << describe(r);
}

// ---- a program that links moss itself ---------------------------------------

TEST_F(Preload, ProgramLinkingLibmossSharesThePreloadsHub) {
  auto r = sample_test::run(mossrun({PROG_MOSS_LINKED, "200"}), 30s);
  // 7 units would be the tasks blocking the thread in turn.
  expect_took_four_units(r, "woke 1\nwoke 2\nwoke 3\nwoke 4\n", 200, 1300);
  EXPECT_EQ(words(r.out).num("patched", 0), 1) << describe(r);
}

TEST_F(Preload, KillOfATaskWaitingForAPthreadMutexLandsAfterItGetsTheMutex) {
  expect_printed(sample_test::run(mossrun({PROG_MOSS_LINKED, "kill"}), 30s), "locked\nkilled 1\nreached 0\n",
                 "pthread_mutex_lock cannot throw the kill\n");
}

// ---- how main ends ------------------------------------------------------------

TEST_F(Preload, PthreadExitFromMainWaitsForTheOtherThreads) {
  auto r = sample_test::run(mossrun({PROG_MAIN_EXIT, "pthread_exit"}), 20s);
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out.substr(r.out.find('\n') + 1), "worker 1\nworker 2\nworker 3\n") << describe(r);
  EXPECT_GREEN_THREADS(words(r.out).num("threads", 0), r);
}

TEST_F(Preload, ReturnFromMainEndsTheProcessWithRunningThreads) {
  auto start = clk::now();
  auto r = sample_test::run(mossrun({PROG_MAIN_EXIT, "return"}), 20s);
  EXPECT_EQ(r.status, 3) << describe(r);
  EXPECT_LT(clk::now() - start, 3s) << "the sleeping thread must not hold the process\n" << describe(r);
  EXPECT_EQ(r.out.find("late"), std::string::npos) << describe(r);
  EXPECT_GREEN_THREADS(words(r.out).num("threads", 0), r);
}

// ---- synchronization -------------------------------------------------------

TEST_F(Preload, StdThreadProducersAndConsumersPassEveryItem) {
  auto r = sample_test::run(mossrun({PROG_PRODCONS}), 60s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("items", 0), 80000) << describe(r);
  EXPECT_EQ(f.num("sum", 0), f.num("expected", 0)) << describe(r);
  EXPECT_NE(f.num("sum", 0), LONG_MIN) << describe(r);
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

TEST_F(Preload, KeyDestructorsRunAtThreadExitAndOnceRunsOnce) {
  auto r = sample_test::run(mossrun({PROG_KEYS_ONCE}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("once_runs", 0), 1) << describe(r);
  EXPECT_EQ(f.num("once_early", 0), 0) << "pthread_once returned before the init routine finished\n" << describe(r);
  EXPECT_EQ(f.num("value_mismatch", 0), 0) << "a thread saw another's pthread_getspecific value\n" << describe(r);
  EXPECT_EQ(f.num("destructors", 0), 8) << describe(r);
  EXPECT_EQ(f.num("destructor_mismatch", 0), 0) << describe(r);
  EXPECT_EQ(f.num("key2_destructors", 0), 4) << "destructors run only for non-NULL values\n" << describe(r);
  EXPECT_EQ(f.num("exit_value", 0), 77) << "pthread_exit's value through pthread_join\n" << describe(r);
  EXPECT_EQ(f("main_value", 0), "ok") << describe(r);
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

TEST_F(Preload, RwlocksShareReadersExcludeWritersAndBarriersHoldEveryone) {
  auto r = sample_test::run(mossrun({PROG_RWLOCK_BARRIER}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("max_readers", 0), 4) << "the four readers hold the read lock together\n" << describe(r);
  EXPECT_EQ(f.num("writer_overlap", 0), 0) << describe(r);
  EXPECT_EQ(f.num("barrier_early", 0), 0) << describe(r);
  EXPECT_EQ(f.num("serial", 0), 5) << "one PTHREAD_BARRIER_SERIAL_THREAD a round\n" << describe(r);
  EXPECT_EQ(f("timedwrlock", 0), "ETIMEDOUT") << describe(r);
  EXPECT_EQ(f.num("tryrdlock", 0), 0) << describe(r);
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

TEST_F(Preload, SemTimedwaitTimesOutWhileOtherThreadsRun) {
  auto r = sample_test::run(mossrun({PROG_SEM_TIMEOUT}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  // timedwait -1 ETIMEDOUT elapsed_ms E ticks K
  EXPECT_EQ(at("timedwait", 0), "-1") << describe(r);
  EXPECT_EQ(at("timedwait", 1), "ETIMEDOUT") << describe(r);
  long waited = std::atol(at("timedwait", 3).c_str());
  EXPECT_GE(waited, 290) << describe(r);
  EXPECT_LT(waited, 1000) << describe(r);
  EXPECT_GE(std::atol(at("timedwait", 5).c_str()), 20) << "the tickers' 10 ms naps during the 300 ms wait\n"
                                                       << describe(r);
  EXPECT_EQ(at("clockwait", 0), "-1") << describe(r);
  EXPECT_EQ(at("clockwait", 1), "ETIMEDOUT") << describe(r);
  long clockwaited = std::atol(at("clockwait", 3).c_str());
  EXPECT_GE(clockwaited, 95) << describe(r);
  EXPECT_LT(clockwaited, 800) << describe(r);
  EXPECT_EQ(at("post_wakes", 0), "0") << describe(r);
  EXPECT_GE(std::atol(at("post_wakes", 2).c_str()), 90) << describe(r);
  EXPECT_LT(std::atol(at("post_wakes", 2).c_str()), 800) << describe(r);
  EXPECT_EQ(at("trywait", 1), "EAGAIN") << describe(r);
  EXPECT_EQ(at("value", 0), "0") << describe(r);
  EXPECT_GREEN_THREADS(std::atoi(at("threads", 0).c_str()), r);
}

// A process-shared semaphore (sem_init pshared, sem_open) is posted from
// another process: a green waiter must see that post, without blocking the
// other green threads of its process; a process-shared condvar works and says
// nothing on stderr.
TEST_F(Preload, ProcessSharedSemaphoresWakeOnAnotherProcesssPost) {
  auto r = sample_test::run(mossrun({PROG_SEM_PSHARED}), 90s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  // unnamed S elapsed_ms E ticks K: the child waits, the parent posts at 200 ms.
  EXPECT_EQ(at.num("unnamed", 0), 0) << "the child's sem_wait ended (70: a deadlock report; -9: killed at 10 s)\n"
                                     << describe(r);
  EXPECT_GE(at.num("unnamed", 2), 150) << describe(r);
  EXPECT_LT(at.num("unnamed", 2), 2000) << describe(r);
  EXPECT_GE(at.num("unnamed", 4), 5) << "the child's ticker thread ran while its main waited\n" << describe(r);
  EXPECT_EQ(at.num("named", 0), 0) << describe(r);
  EXPECT_GE(at.num("named", 2), 150) << describe(r);
  EXPECT_LT(at.num("named", 2), 2000) << describe(r);
  // timedwait S R elapsed_ms E: a 5 s deadline, posted at 200 ms.
  EXPECT_EQ(at.num("timedwait", 0), 0) << describe(r);
  EXPECT_EQ(at.num("timedwait", 1), 0) << describe(r);
  EXPECT_GE(at.num("timedwait", 3), 150) << describe(r);
  EXPECT_LT(at.num("timedwait", 3), 2500) << "sem_timedwait must end at the post, not at its deadline\n" << describe(r);
  EXPECT_EQ(at.num("cond", 0), 0) << describe(r);
  EXPECT_EQ(at("timeout", 1), "ETIMEDOUT") << describe(r);
  EXPECT_GE(at.num("timeout", 3), 290) << describe(r);
  EXPECT_LT(at.num("timeout", 3), 1500) << describe(r);
  EXPECT_EQ(at("einval", 1), "EINVAL") << describe(r);
  EXPECT_EQ(at.num("local_post", 0), 0) << describe(r);
  EXPECT_GE(at.num("local_post", 2), 90) << describe(r);
  EXPECT_LT(at.num("local_post", 2), 1000) << describe(r);
  EXPECT_GREEN_THREADS(at.num("threads", 0), r);
}

// A vfork child's signal(SIG_DFL) before exec must not remove the parent's
// handler (moss keeps the user's handlers behind its trampoline, in memory a
// vfork child shares); old actions follow the kernel's. The table is the
// same with native threads and no hooks, so both are run.
TEST_F(Preload, VforkChildsSignalResetKeepsTheParentsHandler) {
  for (auto extra : {std::vector<std::string>{}, std::vector<std::string>{"--threads", "native", "--hook", "none"}}) {
    std::vector<std::string> argv = extra;
    argv.push_back(PROG_VFORK_SIGNAL);
    auto r = sample_test::run(mossrun(argv), 20s);
    ASSERT_EQ(r.status, 0) << describe(r);
    words at(r.out);
    EXPECT_EQ(at.num("vfork_hits", 0), 2) << "the parent's handler must run after the vfork child's exec\n" << describe(r);
    EXPECT_EQ(at.num("fork_child", 0), 0) << describe(r);
    EXPECT_EQ(at.num("fork_hits", 0), 3) << describe(r);
    EXPECT_EQ(at("old_after_dfl", 0), "h") << describe(r);
    EXPECT_EQ(at("old_after_dfl_again", 0), "SIG_DFL") << describe(r);
    EXPECT_EQ(at.num("resethand_hits", 0), 1) << describe(r);
    EXPECT_EQ(at("resethand_hits", 1), "SIG_DFL") << describe(r);
    EXPECT_EQ(at("ign_query", 0), "SIG_IGN") << describe(r);
    EXPECT_EQ(r.err, "") << describe(r);
  }
}

TEST_F(Preload, StdCallOnceSharedMutexTimedMutexAndAsyncWork) {
  auto r = sample_test::run(mossrun({PROG_STD_SYNC}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  EXPECT_EQ(at.num("once_runs", 0), 1) << describe(r);
  EXPECT_EQ(at.num("once_early", 0), 0) << "std::call_once returned before the initializer finished\n" << describe(r);
  EXPECT_EQ(at.num("max_shared", 0), 4) << "four std::shared_lock holders at once\n" << describe(r);
  EXPECT_EQ(at.num("unique_overlap", 0), 0) << describe(r);
  EXPECT_EQ(at.num("try_lock_for", 0), 0) << describe(r);
  EXPECT_GE(at.num("try_lock_for", 2), 95) << describe(r);
  EXPECT_LT(at.num("try_lock_for", 2), 390) << "try_lock_for(100ms) must give up before the holder lets go\n"
                                            << describe(r);
  EXPECT_EQ(at.num("async", 0), 42) << describe(r);
  EXPECT_GREEN_THREADS(at.num("threads", 0), r);
}

TEST_F(Preload, MutexKindsTimedLocksAndMonotonicCondvars) {
  auto r = sample_test::run(mossrun({PROG_MUTEX_KINDS}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  EXPECT_EQ(at("recursive", 1), "0") << "a recursive mutex locked twice by its owner\n" << describe(r);
  EXPECT_EQ(at("recursive", 3), "EBUSY") << "trylock of a recursive mutex another thread holds\n" << describe(r);
  EXPECT_EQ(at("errorcheck", 1), "EDEADLK") << describe(r);
  EXPECT_EQ(at("errorcheck", 3), "EPERM") << describe(r);
  EXPECT_EQ(at("errorcheck", 5), "0") << describe(r);
  EXPECT_EQ(at("timedlock", 0), "ETIMEDOUT") << describe(r);
  EXPECT_GE(at.num("timedlock", 2), 95) << describe(r);
  EXPECT_LT(at.num("timedlock", 2), 390) << describe(r);
  EXPECT_GE(at.num("timedlock", 4), 3) << "the holder's 10 ms naps go on during the timed lock\n" << describe(r);
  EXPECT_EQ(at("trylock_held", 0), "EBUSY") << describe(r);
  EXPECT_EQ(at("cond_timedwait", 0), "ETIMEDOUT") << describe(r);
  EXPECT_GE(at.num("cond_timedwait", 2), 95) << describe(r);
  EXPECT_LT(at.num("cond_timedwait", 2), 800) << "a CLOCK_MONOTONIC deadline read as CLOCK_REALTIME never ends\n"
                                              << describe(r);
  EXPECT_EQ(at("cond_clockwait", 0), "ETIMEDOUT") << describe(r);
  EXPECT_GE(at.num("cond_clockwait", 2), 95) << describe(r);
  EXPECT_LT(at.num("cond_clockwait", 2), 800) << describe(r);
  EXPECT_EQ(at("cond_signal", 0), "0") << describe(r);
  EXPECT_LT(at.num("cond_signal", 2), 800) << describe(r);
  EXPECT_EQ(at.num("spin_sum", 0), 4000) << describe(r);
  EXPECT_GREEN_THREADS(at.num("threads", 0), r);
}

TEST_F(Preload, LockOrderDeadlockIsReportedAndExits70) {
  auto r = sample_test::run(mossrun({PROG_DEADLOCK}), 10s);
  EXPECT_EQ(r.status, 70) << describe(r);
  EXPECT_NE(r.out.find("locked m1"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("locked m2"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out.find("joined"), std::string::npos) << describe(r);
  std::string err = r.err;
  for (auto& ch : err) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_NE(err.find("locker-a"), std::string::npos) << "the report names each thread\n" << describe(r);
  EXPECT_NE(err.find("locker-b"), std::string::npos) << describe(r);
  EXPECT_NE(err.find("mutex"), std::string::npos) << "the report says what they wait on\n" << describe(r);
  // main is a green thread too, waiting in pthread_join: the report lists it
  // and names that wait.
  EXPECT_NE(err.find("\"main\""), std::string::npos) << describe(r);
  EXPECT_NE(err.find("pthread_join"), std::string::npos) << "the report says main waits on a join\n" << describe(r);
}

// ---- child processes and file locks ----------------------------------------

// scratch_path() names a file in the temp directory for one test.
std::string scratch_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(getpid()))).string();
}

// Main waits 500 ms for a child with each of waitpid, wait4, waitid(P_PID)
// and waitid(P_PIDFD) while a thread naps 20 ms at a time: ~25 naps each; a
// wait that blocks the OS thread lets none happen.
TEST_F(Preload, WaitingForAChildLetsTheOtherThreadsRun) {
  auto r = sample_test::run(mossrun({PROG_CHILD_WAIT, "ticks"}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  const std::pair<const char*, long> calls[] = {{"waitpid", 7}, {"wait4", 8}, {"waitid", 9}, {"pidfd", 10}};
  for (const auto& [call, code] : calls) {
    EXPECT_EQ(at.num(call, 0), 1) << call << " reported the child\n" << describe(r);
    EXPECT_EQ(at.num(call, 1), code) << call << "'s exit status\n" << describe(r);
    EXPECT_GE(at.num(call, 3), 5) << "the ticker's 20 ms naps while main was in " << call << "\n" << describe(r);
    EXPECT_GE(at.num(call, 5), 480) << describe(r);
    EXPECT_LT(at.num(call, 5), 3000) << describe(r);
  }
  EXPECT_EQ(r.err, "") << describe(r);
}

// system() waits for its shell inside glibc; mossrun's own system() waits on
// the hub, with SIGINT ignored meanwhile (the ticker sees it) and restored.
TEST_F(Preload, SystemLetsTheOtherThreadsRunAndIgnoresSigintMeanwhile) {
  auto r = sample_test::run(mossrun({PROG_CHILD_WAIT, "system"}), 20s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  EXPECT_EQ(at.num("system", 0), 5) << "the shell's exit status\n" << describe(r);
  EXPECT_GE(at.num("system", 2), 5) << "the ticker's 20 ms naps while main was in system()\n" << describe(r);
  EXPECT_GE(at.num("system", 4), 480) << describe(r);
  EXPECT_LT(at.num("system", 4), 3000) << describe(r);
  EXPECT_EQ(at.num("system", 6), 1) << "SIGINT is ignored while the shell runs\n" << describe(r);
  EXPECT_EQ(at.num("restored", 0), 1) << describe(r);
  EXPECT_EQ(at.num("shell", 0), 1) << "system(NULL): a shell exists\n" << describe(r);
  EXPECT_EQ(r.err, "") << describe(r);
}

// pthread_cancel of a thread waiting in waitpid or system() acts there: the
// thread's cleanup handler runs, the pidfd is closed, system's shell is
// killed and reaped.
TEST_F(Preload, CancellingAThreadWaitingForAChildRunsItsCleanupAndLeaksNothing) {
  expect_printed(sample_test::run(mossrun({PROG_CHILD_WAIT, "cancel"}), 20s),
                 "waitpid canceled 1 cleanup 1 fds_leaked 0\nsystem canceled 1 cleanup 1 fds_leaked 0\nshell_reaped 1\n");
}

// The child writes 4 MiB into a pipe a thread drains while main waits for
// the child: with main's wait blocking the OS thread nothing drains the
// pipe, and the child and the program wait for each other for ever.
TEST_F(Preload, WaitingForAChildThatAThreadReadsFromEnds) {
  expect_printed(sample_test::run(mossrun({PROG_CHILD_WAIT, "drain"}), 10s), "drain 0 bytes 4194304\n",
                 "the program hung (killed after 10 s) or failed\n");
}

// Where the calls do not wait for one child's exit, they give what the real
// calls give: ECHILD for a pid that is not (or no longer) a child, 0 with
// WNOHANG, a child left waitable by WNOWAIT, a null siginfo, EAGAIN from a
// non-blocking pidfd, EINVAL without an event, a stop with WUNTRACED.
TEST_F(Preload, ChildWaitsKeepTheRealCallsResultsAndErrors) {
  expect_printed(sample_test::run(mossrun({PROG_CHILD_WAIT, "errors"}), 20s),
                 "not_child -1 ECHILD\nreaped -1 ECHILD\nwnohang 0 0\nwnowait 2 0\nnull_info 0 0\n"
                 "after_null_info -1 ECHILD\nnonblocking_pidfd -1 EAGAIN\nno_event -1 EINVAL\nstopped 19 0\n"
                 "killed 9 0\n");
}

// flock and OFD locks: another thread of the program holds the lock for
// 300 ms (a blocked OS thread waits for ever); POSIX record locks (fcntl
// F_SETLKW, lockf): a child process holds it for 300 ms while a thread naps
// 20 ms at a time (a blocked OS thread lets no nap happen).
TEST_F(Preload, FileLockWaitsLetTheHolderThreadRun) {
  auto r = sample_test::run(mossrun({PROG_FILE_LOCKS, scratch_path("preload_locks")}), 10s);
  ASSERT_EQ(r.status, 0) << "the program hung (killed after 10 s) or failed\n" << describe(r);
  words at(r.out);
  for (const char* call : {"flock", "ofd", "setlkw", "lockf"}) {
    EXPECT_EQ(at(call, 0), "0") << call << "\n" << describe(r);
    EXPECT_GE(at.num(call, 2), 280) << call << " returned before the holder let go\n" << describe(r);
    EXPECT_LT(at.num(call, 2), 3000) << describe(r);
    EXPECT_GE(at.num(call, 4), 5) << "the ticker's 20 ms naps while main waited in " << call << "\n" << describe(r);
  }
  EXPECT_EQ(at("flock_nb", 1), "EWOULDBLOCK") << describe(r);
  EXPECT_EQ(at("flock_badfd", 1), "EBADF") << describe(r);
  EXPECT_EQ(at("flock_badop", 1), "EINVAL") << describe(r);
  EXPECT_EQ(at("lockf_readonly", 1), "EBADF") << describe(r);
  EXPECT_EQ(r.err, "") << describe(r);
}

// A thread polling in a loop for what another must do (the pipe it polls is
// drained by a thread that first sleeps 50 ms): each poll finds it ready at
// once, and still the other thread runs (Python's multiprocessing.Pool spun
// for ever here).
TEST_F(Preload, APollLoopLetsTheThreadItWaitsForRun) {
  auto r = sample_test::run(mossrun({PROG_POLL_SPIN}), 10s);
  ASSERT_EQ(r.status, 0) << "the program hung (killed after 10 s) or failed\n" << describe(r);
  words at(r.out);
  for (const char* call : {"poll", "poll0", "select", "epoll_wait"}) {
    EXPECT_EQ(at(call, 0), "0") << call << "\n" << describe(r);
    EXPECT_GE(at.num(call, 1), 1) << call << "\n" << describe(r);
  }
  EXPECT_EQ(r.err, "") << describe(r);
}

// Twenty threads cancelled on their way into sigwait leave no signalfd open.
TEST_F(Preload, AThreadCancelledIntoSigwaitLeavesNoFdOpen) {
  auto r = sample_test::run(mossrun({PROG_SIGWAIT_CANCEL}), 10s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words at(r.out);
  EXPECT_EQ(at.num("canceled", 0), 1) << describe(r);
  EXPECT_EQ(at.num("fds_after", 0), at.num("fds_before", 0)) << describe(r);
}

// ---- DNS -------------------------------------------------------------------

TEST_F(Preload, TwoHundredThreadsResolveInAboutOneServerDelay) {
  moss_test::dns_server dns;
  for (int i = 0; i < 200; ++i)
    dns.add_a("host-" + std::to_string(i) + ".moss.test",
              "10.77." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  dns.set_delay(200ms);
  auto r = sample_test::run(mossrun({"--dns-servers", dns.address(), PROG_DNS_MANY, "200"}), 60s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("resolved", 0), 200) << describe(r);
  EXPECT_EQ(f.num("wrong", 0), 0) << describe(r);
  EXPECT_GE(f.num("elapsed_ms", 0), 190) << describe(r);
  EXPECT_LT(f.num("elapsed_ms", 0), 1000) << "200 lookups of 200 ms each, concurrently: ~0.2 s, not 40 s\n"
                                        << describe(r);
  EXPECT_GE(dns.queries(), 200u) << "the lookups must reach the test's DNS server";
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

// ---- built variants ----------------------------------------------------------

std::set<std::string> undefined_symbols(const std::string& path) {
  std::set<std::string> names;
  FILE* p = popen(("nm -D --undefined-only '" + path + "' 2>/dev/null").c_str(), "r");
  if (p == nullptr) return names;
  char line[512];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    std::istringstream ls(line);
    std::string type, name;
    ls >> type >> name;
    names.insert(name.substr(0, name.find('@')));
  }
  pclose(p);
  return names;
}

// The fortified and large-file builds above exercise what they claim to.
TEST_F(Preload, VariantBuildsImportFortifiedAndLargeFileNames) {
  auto fortified = undefined_symbols(PROG_THREAD_HELLO_FORTIFY);
  auto lfs = undefined_symbols(PROG_THREAD_HELLO);
  ASSERT_FALSE(lfs.empty()) << "nm -D failed";
  EXPECT_TRUE(fortified.count("__read_chk")) << "thread_hello_fortify must call __read_chk";
  EXPECT_TRUE(fortified.count("fcntl")) << "thread_hello_fortify must call the plain fcntl";
  EXPECT_TRUE(lfs.count("fcntl64")) << "thread_hello must call fcntl64";
  EXPECT_TRUE(lfs.count("read"));
}

// ---- unmodified programs from Debian packages ------------------------------------

TEST_F(Preload, Python3ThreadingSleepsLocksConditionsAndQueues) {
  auto r = sample_test::run(mossrun({"/usr/bin/python3", PY_THREADS, "0.3"}), 60s);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(r.out.substr(0, r.out.find("threads")), "woke 1\nwoke 2\nwoke 4\n") << describe(r);
  words f(r.out);
  EXPECT_GE(f.num("elapsed_ms", 0), 1190) << describe(r);
  EXPECT_LT(f.num("elapsed_ms", 0), 1800) << "4 units (1.2 s), not 7 (2.1 s)\n" << describe(r);
  EXPECT_EQ(f.num("counter", 0), 4000) << describe(r);
  EXPECT_EQ(f.num("cond_woken", 0), 3) << describe(r);
  EXPECT_EQ(f.num("queue_sum", 0), 499500) << describe(r);
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

// Fifty Python threads (a ThreadPoolExecutor) each resolve a name (answered
// after 200 ms) and fetch a page (answered after 300 ms) with urllib.
TEST_F(Preload, Python3ThreadPoolFetchesPagesConcurrently) {
  moss_test::dns_server dns;
  constexpr int urls = 50;
  for (int i = 0; i < urls; ++i) dns.add_a("fetch-" + std::to_string(i) + ".moss.test", "127.0.0.1");
  dns.set_delay(200ms);
  moss_test::http_server web(300ms, "hello from the test\n");
  std::vector<std::string> args{"--dns-servers", dns.address(), "/usr/bin/python3", PY_FETCH};
  for (int i = 0; i < urls; ++i)
    args.push_back("http://fetch-" + std::to_string(i) + ".moss.test:" + std::to_string(web.port()) + "/page");
  auto r = sample_test::run(mossrun(args), 60s);
  ASSERT_EQ(r.status, 0) << describe(r);
  words f(r.out);
  EXPECT_EQ(f.num("ok", 0), urls) << describe(r);
  EXPECT_LT(f.num("elapsed_ms", 0), 2500) << "50 fetches of 0.5 s each (0.2 s DNS, 0.3 s HTTP), in parallel\n"
                                          << describe(r);
  EXPECT_GE(dns.queries(), static_cast<std::size_t>(urls)) << "the names must reach the test's DNS server";
  EXPECT_GREEN_THREADS(f.num("threads", 0), r);
}

// subprocess.Popen.wait() while a thread reads the child's 4 MiB of output
// (blocked OS thread: the child fills the pipe and nothing ever ends), and
// fcntl.flock waiting for another thread to let go.
TEST_F(Preload, Python3PopenWaitWhileAThreadReadsAndFlock) {
  auto r = sample_test::run(mossrun({"/usr/bin/python3", PY_SUBPROCESS, scratch_path("preload_pylock")}), 10s);
  ASSERT_EQ(r.status, 0) << "python hung (killed after 10 s) or failed\n" << describe(r);
  words at(r.out);
  EXPECT_EQ(at("popen", 0), "0") << describe(r);
  EXPECT_EQ(at("popen", 2), "4194304") << describe(r);
  EXPECT_GE(at.num("flock", 1), 280) << describe(r);
  EXPECT_LT(at.num("flock", 1), 3000) << describe(r);
  EXPECT_EQ(r.err, "") << describe(r);
}

// python3 -m http.server is a ThreadingHTTPServer: a thread per connection.
// Fifty clients send an unfinished request head, so fifty handler threads
// block reading it; then the heads are finished and the answers read in
// reverse order of connection. A handler that blocked its OS thread would
// hold up every later one: the last client would wait on the first.
TEST_F(Preload, Python3HttpServerServesConcurrentClients) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("preload_http." + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string body(200 * 1024, '\0');
  std::mt19937 rng(42);
  for (auto& ch : body) ch = static_cast<char>(rng());
  std::ofstream(dir / "data.bin", std::ios::binary) << body;

  child server(mossrun({"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                        dir.string()}));
  auto line = server.line(20s);
  ASSERT_TRUE(line.has_value()) << server.rest_of_stderr(1s);
  auto at = line->find(" port ");
  ASSERT_NE(at, std::string::npos) << *line;
  int port = std::atoi(line->c_str() + at + 6);

  constexpr int clients = 50;
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i) {
    int fd = sample_test::connect_to(port, 15s);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sample_test::send_all(fd, "GET /data.bin HTTP/1.0\r\nHost: 127.0.0.1\r\n"));
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(1s);  // every handler thread starts and blocks reading
  int threads = os_threads(server.pid());
  int good = 0;
  std::string problem;
  for (int i = clients - 1; i >= 0; --i) {
    ASSERT_TRUE(sample_test::send_all(fds[static_cast<std::size_t>(i)], "\r\n"));
    std::string got;
    bool eof = sample_test::recv_to_eof(fds[static_cast<std::size_t>(i)], &got);
    auto head_end = got.find("\r\n\r\n");
    bool ok = eof && got.rfind("HTTP/1.0 200", 0) == 0 && head_end != std::string::npos &&
              got.compare(head_end + 4, std::string::npos, body) == 0;
    if (ok) ++good;
    else if (problem.empty())
      problem = "client " + std::to_string(i) + (eof ? "" : " (timed out)") + ": " +
                got.substr(0, std::min<std::size_t>(got.size(), 200));
    ::close(fds[static_cast<std::size_t>(i)]);
    fds[static_cast<std::size_t>(i)] = -1;
    if (!eof) break;  // one stuck client says it; the others would each wait 15 s
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  EXPECT_EQ(good, clients) << problem;
  EXPECT_GE(threads, 1);
  EXPECT_LE(threads, max_green_os_threads) << "OS threads with 50 handler threads alive";
  EXPECT_FALSE(server.exit_code(0ms).has_value()) << server.rest_of_stderr(1s);
  fs::remove_all(dir);
}

// curl -Z fetches 20 URLs in parallel; its default resolver runs each
// getaddrinfo in a thread of its own (20 at once natively). The names are
// answered by the test's DNS server after 500 ms, the pages by a loopback
// server after 300 ms.
TEST_F(Preload, CurlParallelFetchResolvesInGreenThreads) {
  moss_test::dns_server dns;
  constexpr int urls = 20;
  for (int i = 0; i < urls; ++i) dns.add_a("site-" + std::to_string(i) + ".moss.test", "127.0.0.1");
  dns.set_delay(500ms);
  moss_test::http_server web(300ms, "hello from the test\n");
  std::vector<std::string> args{"--dns-servers", dns.address(), "/usr/bin/curl", "-sS", "--no-progress-meter",
                                "--noproxy", "*", "-Z", "--parallel-max", "50",
                                "-w", "%{http_code} %{url_effective}\\n"};
  std::set<std::string> want;
  for (int i = 0; i < urls; ++i) {
    std::string url = "http://site-" + std::to_string(i) + ".moss.test:" + std::to_string(web.port()) + "/page";
    args.push_back(url);
    want.insert("200 " + url);
  }
  auto start = clk::now();
  child curl(mossrun(args));
  int max_threads = 0;
  std::optional<int> status;
  while (!(status = curl.exit_code(0ms)) && clk::now() - start < 30s) {
    max_threads = std::max(max_threads, os_threads(curl.pid()));
    std::this_thread::sleep_for(5ms);
  }
  auto took = clk::now() - start;
  std::string out = curl.rest_of_stdout(5s), err = curl.rest_of_stderr(1s);
  ASSERT_EQ(status.value_or(-2), 0) << out << err;
  std::set<std::string> got;
  int bodies = 0;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "hello from the test") ++bodies;
    else got.insert(line);
  }
  EXPECT_EQ(got, want) << out << err;
  EXPECT_EQ(bodies, urls) << out;
  EXPECT_LT(took, 2500ms) << "20 fetches of 0.8 s each (0.5 s DNS, 0.3 s HTTP), in parallel";
  EXPECT_GE(max_threads, 1);
  EXPECT_LE(max_threads, max_green_os_threads) << "curl's resolver threads must be green";
  EXPECT_EQ(err, "") << "curl's stderr";
  EXPECT_GE(dns.queries(), static_cast<std::size_t>(urls)) << "the names must reach the test's DNS server";
}

}  // namespace

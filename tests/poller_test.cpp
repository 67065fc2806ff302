// poller_test: the epoll poller's four-function contract on its own —
// readiness reported with the caller's tag, edge triggering, remove, wake()
// from another thread, and the timeout.
#include "core/poller.hpp"

#include "leak_check.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

using moss_test::WithHub;
using namespace std::chrono_literals;
using moss::detail::poller;

namespace {

using event_log = std::vector<std::pair<void*, std::uint32_t>>;

void record(void* ctx, void* tag, std::uint32_t events) {
  static_cast<event_log*>(ctx)->emplace_back(tag, events);
}

// A non-blocking pipe closed at the end of the test.
struct test_pipe {
  int r = -1, w = -1;
  test_pipe() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~test_pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
  void put() const { ASSERT_EQ(write(w, "x", 1), 1); }
};

std::uint32_t events_for(const event_log& log, void* tag) {
  std::uint32_t ev = 0;
  for (const auto& [t, e] : log)
    if (t == tag) ev |= e;
  return ev;
}

// fallback_waker writes to a pipe the poller watches if the poller has not
// returned by `limit`, so a broken wake() fails the test instead of hanging it.
class fallback_waker {
 public:
  fallback_waker(const test_pipe& p, std::chrono::milliseconds delay, poller* to_wake,
                 std::chrono::seconds limit = std::chrono::seconds(10))
      : thread_([this, &p, delay, to_wake, limit] {
          std::this_thread::sleep_for(delay);
          if (to_wake != nullptr) to_wake->wake();
          auto until = std::chrono::steady_clock::now() + limit;
          while (!returned_.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
          if (!returned_.load()) p.put();
        }) {}
  ~fallback_waker() {
    returned_.store(true);
    thread_.join();
  }
  void returned() { returned_.store(true); }

 private:
  std::atomic<bool> returned_{false};
  std::thread thread_;
};

}  // namespace

TEST_F(WithHub, AddReportsReadinessOfAPipeWithItsTag) {
  poller p;
  test_pipe pp;
  ASSERT_GE(pp.r, 0);
  int read_tag = 0, write_tag = 0;
  ASSERT_EQ(p.add(pp.r, &read_tag), 0);
  ASSERT_EQ(p.add(pp.w, &write_tag), 0);

  event_log log;
  p.wait(0ns, &record, &log);
  EXPECT_EQ(events_for(log, &read_tag), 0u) << "nothing to read yet";
  EXPECT_NE(events_for(log, &write_tag) & EPOLLOUT, 0u) << "an empty pipe is writable";

  log.clear();
  pp.put();
  EXPECT_EQ(p.wait(1s, &record, &log), 1);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].first, &read_tag);
  EXPECT_NE(log[0].second & EPOLLIN, 0u);

  // Edge-triggered: no new edge, no new report.
  log.clear();
  EXPECT_EQ(p.wait(0ns, &record, &log), 0);
  EXPECT_TRUE(log.empty());

  // The writer's close shows up as a hang-up on the reader.
  close(pp.w);
  pp.w = -1;
  log.clear();
  p.wait(1s, &record, &log);
  EXPECT_NE(events_for(log, &read_tag) & (EPOLLHUP | EPOLLRDHUP), 0u);
  EXPECT_EQ(p.remove(pp.r), 0);
}

TEST_F(WithHub, OutputIsWatchedOnlyWhenAskedAndModifyReportsTheStateNow) {
  poller p;
  test_pipe pp;
  int tag = 0;
  ASSERT_EQ(p.add(pp.w, &tag, poller::input), 0);
  event_log log;
  p.wait(0ns, &record, &log);
  EXPECT_EQ(events_for(log, &tag) & EPOLLOUT, 0u) << "an empty pipe is writable, but output is not watched";

  // Asking for output later reports the writability the pipe already has.
  ASSERT_EQ(p.modify(pp.w, &tag, poller::input | poller::output), 0);
  log.clear();
  p.wait(0ns, &record, &log);
  EXPECT_NE(events_for(log, &tag) & EPOLLOUT, 0u);
  EXPECT_EQ(p.modify(pp.r, &tag, poller::input), -1) << "modify needs a registration";
  EXPECT_EQ(p.remove(pp.w), 0);
}

TEST_F(WithHub, ARemovedFdIsNoLongerReported) {
  poller p;
  test_pipe pp;
  int tag = 0;
  ASSERT_EQ(p.add(pp.r, &tag), 0);
  ASSERT_EQ(p.remove(pp.r), 0);
  pp.put();
  event_log log;
  EXPECT_EQ(p.wait(50ms, &record, &log), 0);
  EXPECT_TRUE(log.empty());
}

TEST_F(WithHub, AddAndRemoveReportKernelErrors) {
  poller p;
  test_pipe pp;
  int tag = 0;
  errno = 0;
  EXPECT_EQ(p.add(-1, &tag), -1);
  EXPECT_EQ(errno, EBADF);
  ASSERT_EQ(p.add(pp.r, &tag), 0);
  errno = 0;
  EXPECT_EQ(p.add(pp.r, &tag), -1);  // one registration per fd
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(p.remove(pp.r), 0);
  errno = 0;
  EXPECT_EQ(p.remove(pp.r), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(WithHub, WakeFromAnotherThreadInterruptsAnEndlessWait) {
  poller p;
  test_pipe fallback;
  int fallback_tag = 0;
  ASSERT_EQ(p.add(fallback.r, &fallback_tag), 0);
  event_log log;
  auto t0 = std::chrono::steady_clock::now();
  {
    fallback_waker waker(fallback, 50ms, &p);
    p.wait(-1ns, &record, &log);
    waker.returned();
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(events_for(log, &fallback_tag), 0u) << "wake() did not interrupt wait(-1); the fallback pipe did";
  EXPECT_TRUE(log.empty()) << "the wake-up itself is not reported to the caller";
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(p.remove(fallback.r), 0);
}

TEST_F(WithHub, AWakeBeforeTheWaitMakesTheNextWaitReturnAndIsConsumed) {
  poller p;
  test_pipe fallback;
  int fallback_tag = 0;
  ASSERT_EQ(p.add(fallback.r, &fallback_tag), 0);
  p.wake();
  p.wake();  // coalesced
  event_log log;
  {
    fallback_waker waker(fallback, 0ms, nullptr);
    p.wait(-1ns, &record, &log);
    waker.returned();
  }
  EXPECT_EQ(events_for(log, &fallback_tag), 0u) << "the earlier wake() was lost";
  // The wake-up was drained: a timed wait now runs to its timeout.
  log.clear();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait(30ms, &record, &log), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(p.remove(fallback.r), 0);
}

// The warm pass (poller.hpp): every ready tag is warmed before any event is
// handed over, the wake-up's own fd never.
TEST_F(WithHub, EveryReadyTagIsWarmedBeforeAnyEventIsHandled) {
  poller p;
  test_pipe a, b, c;
  int tags[3] = {};
  const test_pipe* pipes[3] = {&a, &b, &c};
  for (int i = 0; i < 3; ++i) {
    ASSERT_GE(pipes[i]->r, 0);
    ASSERT_EQ(p.add(pipes[i]->r, &tags[i], poller::input), 0);
    pipes[i]->put();
  }
  p.wake();
  std::vector<std::pair<char, void*>> log;  // 'w' warm, 'e' event
  auto warm = [](void* ctx, void* tag) { static_cast<decltype(log)*>(ctx)->emplace_back('w', tag); };
  auto event = [](void* ctx, void* tag, std::uint32_t) { static_cast<decltype(log)*>(ctx)->emplace_back('e', tag); };
  EXPECT_EQ(p.wait(1s, event, &log, warm), 4) << "three pipes and the wake-up";
  ASSERT_EQ(log.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(log[static_cast<std::size_t>(i)].first, i < 3 ? 'w' : 'e') << "entry " << i;
    void* tag = log[static_cast<std::size_t>(i)].second;
    EXPECT_TRUE(tag == &tags[0] || tag == &tags[1] || tag == &tags[2]) << "entry " << i << ": not a pipe's tag";
  }
  for (const auto& [kind, tag] : log)
    EXPECT_EQ(std::count(log.begin(), log.end(), std::make_pair(kind, tag)), 1) << "a tag twice";
  for (const test_pipe* pp : pipes) EXPECT_EQ(p.remove(pp->r), 0);
}

TEST_F(WithHub, WaitReturnsAfterItsTimeoutWhenNothingIsReady) {
  poller p;
  event_log log;
  for (auto timeout : {std::chrono::nanoseconds(100ms), std::chrono::nanoseconds(2500us)}) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(p.wait(timeout, &record, &log), 0);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, timeout + 2s);
  }
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.wait(0ns, &record, &log), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_TRUE(log.empty());
}

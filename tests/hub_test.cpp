// hub_test: the per-thread hub, loop_exit, and blocking from the hub.
#include <moss/detail/waiter.hpp>
#include <moss/moss.hpp>

#include "core/hub.hpp"
#include "leak_check.hpp"

#include <string>
#include <thread>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, EachThreadHasItsOwnHubCreatedOnFirstUse) {
  moss::hub* mine = &moss::hub::current();
  EXPECT_EQ(mine, &moss::hub::current());
  moss::hub* theirs = nullptr;
  std::thread([&] { theirs = &moss::hub::current(); }).join();
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
}

TEST_F(WithHub, HubsOnTwoThreadsRunTheirTasksAtTheSameTime) {
  auto work = [] {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<moss::task<void>> ts;
    for (int i = 0; i < 10; ++i) ts.push_back(moss::spawn([] { moss::sleep(100ms); }));
    for (auto& t : ts) t.join();
    return std::chrono::steady_clock::now() - t0;
  };
  std::chrono::steady_clock::duration a{}, b{};
  std::thread ta([&] { a = work(); });
  std::thread tb([&] { b = work(); });
  ta.join();
  tb.join();
  EXPECT_LT(a, 500ms);
  EXPECT_LT(b, 500ms);
}

TEST_F(WithHub, WaitingWhenNothingCanWakeYouThrowsLoopExit) {
  moss::detail::waiter w;
  try {
    w.wait();
    FAIL() << "wait() returned";
  } catch (const moss::loop_exit& e) {
    EXPECT_NE(std::string(e.what()).find("would block forever"), std::string::npos);
  }
}

TEST_F(WithHub, JoiningATaskThatWaitsForeverThrowsLoopExitInTheJoiner) {
  auto stuck = moss::spawn([] {
    moss::detail::waiter w;
    w.wait();
  });
  EXPECT_THROW(stuck.join(), moss::loop_exit);
  stuck.kill();
  EXPECT_TRUE(stuck.killed());
}

TEST_F(WithHub, APendingTimerIsNotADeadlock) {
  auto t = moss::spawn([] { moss::sleep(20ms); });
  EXPECT_NO_THROW(t.join());
}

TEST_F(WithHub, LoopExitGoesToTheLatestWaiterWhenTheMainGreenletIsNotWaiting) {
  // The main greenlet is suspended in a plain switch_to(), not waiting on the
  // hub; a raw greenlet joins a task that waits forever. The task, the most
  // recent waiter, gets loop_exit; the join then completes.
  testing::internal::CaptureStderr();
  auto stuck = moss::spawn(moss::spawn_options{.name = "stuck"}, [] {
    moss::detail::waiter w;
    w.wait();
  });
  bool joined = false;
  moss::greenlet g([&] {
    stuck.join();
    joined = true;
  });
  g.switch_to();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(joined);
  EXPECT_TRUE(g.dead());
  try {
    stuck.get();
    ADD_FAILURE() << "no loop_exit";
  } catch (const moss::loop_exit& e) {
    EXPECT_NE(std::string(e.what()).find("greenlet \"stuck\" would block forever"), std::string::npos) << e.what();
  }
  (void)err;
}

namespace {
// A timer whose callback (run by the hub greenlet) tries to block.
struct blocking_timer final : moss::detail::timer {
  std::string message;
  void fire() noexcept override {
    try {
      moss::sleep(1ms);
    } catch (const moss::error& e) {
      message = e.what();
    }
  }
};
}  // namespace

TEST_F(WithHub, ABlockingCallOnTheHubGreenletIsAClearError) {
  blocking_timer t;
  auto& core = moss::detail::hub_core::current();
  core.timers.add(t, moss::detail::clock::now());
  moss::sleep(5ms);
  EXPECT_NE(t.message.find("hub greenlet"), std::string::npos) << t.message;
}

TEST_F(WithHub, TaskCountTracksUnfinishedTasks) {
  auto& h = moss::hub::current();
  std::size_t before = h.task_count();
  auto t = moss::spawn([] { moss::sleep(5ms); });
  EXPECT_EQ(h.task_count(), before + 1);
  t.join();
  EXPECT_EQ(h.task_count(), before);
}

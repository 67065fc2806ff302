// event_test: set/clear/wait, timeouts, killed waiters, misuse.
#include <moss/event.hpp>
#include <moss/moss.hpp>

#include "core/hub.hpp"
#include "leak_check.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, EventSetWakesEveryWaiterInTheOrderTheyWaited) {
  moss::event e;
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 5; ++i)
    ts.push_back(moss::spawn([&, i] {
      e.wait();
      order.push_back(i);
    }));
  moss::yield();
  EXPECT_EQ(e.waiting(), 5u);
  EXPECT_TRUE(order.empty());
  e.set();
  EXPECT_EQ(e.waiting(), 0u);
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(WithHub, EventWaitReturnsAtOnceWhileSetAndBlocksAgainAfterClear) {
  moss::event e;
  EXPECT_FALSE(e.is_set());
  e.set();
  EXPECT_TRUE(e.is_set());
  e.wait();
  EXPECT_TRUE(e.wait(0ms));
  e.clear();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(1ms));
}

TEST_F(WithHub, EventWaitWithTimeoutReturnsFalseThenTrueOnceSet) {
  moss::event e;
  auto setter = moss::spawn([&] {
    moss::sleep(30ms);
    e.set();
  });
  EXPECT_FALSE(e.wait(1ms));
  EXPECT_TRUE(e.wait(5s));
  setter.join();
}

TEST_F(WithHub, EventWaitWithATimeoutAlreadyPassedReturnsAtOnce) {
  moss::event e;
  auto other = moss::spawn([&] { moss::sleep(10s); });  // keeps the hub from loop_exit
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(e.wait(0ms));
  EXPECT_FALSE(e.wait(-1s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(e.waiting(), 0u);
  other.kill();
  moss::yield();  // the hub drops its entry for the never-started task
}

TEST_F(WithHub, WaitersWokenBySetReturnTrueEvenIfClearedBeforeTheyRun) {
  moss::event e;
  bool result = false;
  auto w = moss::spawn([&] { result = e.wait(5s); });
  moss::yield();
  e.set();
  e.clear();
  w.join();
  EXPECT_TRUE(result);
  EXPECT_FALSE(e.is_set());
}

TEST_F(WithHub, KillingAnEventWaiterRemovesItAndOthersStillWake) {
  moss::event e;
  int woken = 0;
  auto a = moss::spawn([&] {
    e.wait();
    ++woken;
  });
  auto b = moss::spawn([&] {
    e.wait();
    ++woken;
  });
  moss::yield();
  EXPECT_EQ(e.waiting(), 2u);
  a.kill();
  EXPECT_EQ(e.waiting(), 1u);
  e.set();
  b.join();
  EXPECT_EQ(woken, 1);
}

TEST_F(WithHub, AWaiterThatTimedOutLeavesTheList) {
  moss::event e;
  auto t = moss::spawn([&] { return e.wait(1ms); });
  EXPECT_FALSE(t.get());
  EXPECT_EQ(e.waiting(), 0u);
}

TEST_F(WithHub, WaitingOnAnEventNothingCanSetIsLoopExit) {
  moss::event e;
  EXPECT_THROW(e.wait(), moss::loop_exit);
  EXPECT_EQ(e.waiting(), 0u);
}

namespace {
struct wait_on_hub final : moss::detail::timer {
  moss::event* e = nullptr;
  std::string message;
  void fire() noexcept override {
    try {
      e->wait();
    } catch (const moss::error& x) {
      message = x.what();
    }
  }
};
}  // namespace

TEST_F(WithHub, EventWaitOnTheHubGreenletIsAClearError) {
  moss::event e;
  wait_on_hub t;
  t.e = &e;
  moss::detail::hub_core::current().timers.add(t, moss::detail::clock::now());
  moss::sleep(5ms);
  EXPECT_NE(t.message.find("hub greenlet"), std::string::npos) << t.message;
  EXPECT_EQ(e.waiting(), 0u);
}

// time_test: sleep and yield.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

TEST_F(WithHub, SleepersWakeInDeadlineOrder) {
  std::vector<int> order;
  // The three start sleeping back to back, once all have started, and
  // their deadlines are 100 ms apart: under valgrind a greenlet's first
  // start, or its first way into the timer queue, takes tens of ms.
  moss::event go;
  auto sleeper = [&](int ms) {
    go.wait();
    moss::sleep(std::chrono::milliseconds(ms));
    order.push_back(ms);
  };
  auto a = moss::spawn(sleeper, 300);
  auto b = moss::spawn(sleeper, 100);
  auto c = moss::spawn(sleeper, 200);
  moss::yield();
  go.set();
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(order, (std::vector<int>{100, 200, 300}));
}

TEST_F(WithHub, SleepLastsAtLeastTheRequestedTime) {
  auto t0 = clk::now();
  moss::sleep(15ms);
  EXPECT_GE(clk::now() - t0, 15ms);
}

TEST_F(WithHub, SleepersOverlapInsteadOfAddingUp) {
  auto t0 = clk::now();
  auto a = moss::spawn([] { moss::sleep(100ms); });
  auto b = moss::spawn([] { moss::sleep(200ms); });
  auto c = moss::spawn([] { moss::sleep(400ms); });
  a.join();
  b.join();
  c.join();
  auto took = clk::now() - t0;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 650ms);  // sequential would be 700 ms
}

TEST_F(WithHub, YieldRunsOtherReadyTasksRoundRobin) {
  std::string trace;
  auto worker = [&](char id) {
    for (int i = 0; i < 3; ++i) {
      trace += id;
      moss::yield();
    }
  };
  auto a = moss::spawn(worker, 'a');
  auto b = moss::spawn(worker, 'b');
  auto c = moss::spawn(worker, 'c');
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(trace, "abcabcabc");
}

TEST_F(WithHub, SleepZeroIsAYield) {
  std::string trace;
  auto a = moss::spawn([&] {
    trace += 'a';
    moss::sleep(0ms);
    trace += 'a';
  });
  auto b = moss::spawn([&] {
    trace += 'b';
    moss::sleep(-5ms);
    trace += 'b';
  });
  a.join();
  b.join();
  EXPECT_EQ(trace, "abab");
}

TEST_F(WithHub, AYieldLoopDoesNotStarveTimers) {
  bool fired = false;
  auto sleeper = moss::spawn([&] {
    moss::sleep(5ms);
    fired = true;
  });
  auto t0 = clk::now();
  while (!fired && clk::now() - t0 < 5s) moss::yield();
  EXPECT_TRUE(fired);
  sleeper.join();
}

TEST_F(WithHub, AHugeSleepDoesNotOverflowTheDeadline) {
  auto t = moss::spawn([] { moss::sleep(std::chrono::hours(24 * 365 * 1000)); });
  moss::yield();
  t.kill();
  EXPECT_TRUE(t.killed());
}

// pool_test: moss::pool limits concurrency; map, imap_unordered, imap, apply,
// apply_async and wait_available.
#include <moss/moss.hpp>
#include <moss/pool.hpp>
#include <moss/timeout.hpp>

#include "leak_check.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, APoolRunsAtMostItsSizeAtOnceAndSpawnWaitsForASlot) {
  moss::pool p(3);
  int running = 0, peak = 0;
  auto work = [&] {
    peak = std::max(peak, ++running);
    moss::sleep(10ms);
    --running;
  };
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 9; ++i) p.spawn(work);
  // The last three spawns had to wait for two rounds to finish.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  p.join();
  EXPECT_EQ(peak, 3);
}

TEST_F(WithHub, FreeCountAndFullFollowTheMembers) {
  moss::pool p(2);
  EXPECT_EQ(p.capacity(), 2u);
  EXPECT_EQ(p.free_count(), 2u);
  p.spawn([] { moss::sleep(5ms); });
  EXPECT_EQ(p.free_count(), 1u);
  p.spawn([] { moss::sleep(5ms); });
  EXPECT_TRUE(p.full());
  p.join();
  EXPECT_EQ(p.free_count(), 2u);
}

TEST_F(WithHub, SlotsGoToWaitingSpawnersInArrivalOrder) {
  moss::pool p(1);
  std::vector<int> order;
  p.spawn([] { moss::sleep(10ms); });
  std::vector<moss::task<void>> spawners;
  for (int i = 1; i <= 3; ++i)
    spawners.push_back(moss::spawn([&, i] {
      p.spawn([&, i] { order.push_back(i); });
    }));
  moss::sleep(1ms);  // all three wait for the slot, in order
  // A spawner arriving now must queue behind them even if a slot frees.
  p.spawn([&] { order.push_back(4); });
  p.join();
  for (auto& s : spawners) s.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(p.free_count(), 1u);  // every handed-over slot came back
}

TEST_F(WithHub, ASlotHandedToAWaiterCannotBeTakenByAnotherSpawner) {
  moss::pool p(1);
  std::vector<std::string> order;
  int running = 0, peak = 0;
  auto record = [&](const char* who) {
    return [&, who] {
      peak = std::max(peak, ++running);
      order.push_back(who);
      moss::yield();
      --running;
    };
  };
  p.spawn([] { moss::sleep(5ms); });
  auto w = moss::spawn([&] { p.spawn(record("waiter")); });
  auto x = moss::spawn([&] {
    moss::sleep(6ms);
    p.spawn(record("late"));
  });
  moss::sleep(1ms);  // the member and x sleep, w waits for the slot
  // Spin past both deadlines so that the hub wakes the member and x in the
  // same turn: x then runs right after the member finished and handed its
  // slot to w, before w itself runs.
  auto end = std::chrono::steady_clock::now() + 20ms;
  while (std::chrono::steady_clock::now() < end) {
  }
  w.join();
  x.join();
  p.join();
  EXPECT_EQ(order, (std::vector<std::string>{"waiter", "late"}));
  EXPECT_EQ(peak, 1);
  EXPECT_EQ(p.free_count(), 1u);
}

TEST_F(WithHub, ASpawnerKilledWhileWaitingForASlotTakesNoSlot) {
  moss::pool p(1);
  p.spawn([] { moss::sleep(10ms); });
  auto doomed = moss::spawn([&] { p.spawn([] {}); });
  moss::sleep(1ms);
  doomed.kill();
  EXPECT_TRUE(doomed.killed());
  p.join();
  EXPECT_EQ(p.free_count(), 1u);
  p.spawn([] {}).join();
}

TEST_F(WithHub, ATimeoutBoundsTheWaitForASlot) {
  moss::pool p(1);
  p.spawn([] { moss::sleep(400ms); });
  EXPECT_THROW(
      {
        moss::timeout t(20ms);
        p.spawn([] {});
      },
      moss::timeout_error);
  EXPECT_EQ(p.size(), 1u);
  p.kill();
  EXPECT_EQ(p.free_count(), 1u);
}

TEST_F(WithHub, MapReturnsValuesInInputOrderWithinTheLimit) {
  moss::pool p(2);
  int running = 0, peak = 0;
  std::vector<int> in{5, 1, 4, 2, 3};
  auto out = p.map([&](int v) {
    peak = std::max(peak, ++running);
    moss::sleep(v * 2ms);
    --running;
    return v * 10;
  }, in);
  EXPECT_EQ(out, (std::vector<int>{50, 10, 40, 20, 30}));
  EXPECT_EQ(peak, 2);
  EXPECT_TRUE(p.empty());
}

TEST_F(WithHub, MapRethrowsTheFirstFailureInInputOrderAfterAllFinished) {
  testing::internal::CaptureStderr();
  moss::pool p(4);
  int finished = 0;
  try {
    p.map([&](int v) {
      moss::sleep((5 - v) * 2ms);
      ++finished;
      if (v == 1) throw std::runtime_error("one");
      if (v == 3) throw std::logic_error("three");
      return v;
    }, std::vector<int>{0, 1, 2, 3, 4});
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "one");
  }
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(finished, 5);
}

TEST_F(WithHub, MapOfAVoidFunctionGivesMonostates) {
  moss::pool p(2);
  int sum = 0;
  auto out = p.map([&](int v) { sum += v; }, std::vector<int>{1, 2, 3});
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(sum, 6);
}

TEST_F(WithHub, ImapUnorderedYieldsInCompletionOrderWithinTheLimit) {
  moss::pool p(3);
  int running = 0, peak = 0;
  std::vector<int> got;
  for (int v : p.imap_unordered([&](int v) {
         peak = std::max(peak, ++running);
         moss::sleep(v * 10ms);
         --running;
         return v;
       }, std::vector<int>{6, 1, 5, 2, 4, 3}))
    got.push_back(v);
  EXPECT_EQ(got.size(), 6u);
  EXPECT_EQ(peak, 3);
  // 6, 1, 5 start; 1 finishes first, then 2 (started at 10 ms, done at 30 ms,
  // before 5 at 50 ms).
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(got[1], 2);
  std::vector<int> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{1, 2, 3, 4, 5, 6}));
}

TEST_F(WithHub, ImapUnorderedRethrowsAFailureAndCanGoOn) {
  testing::internal::CaptureStderr();
  moss::pool p(2);
  auto r = p.imap_unordered([](int v) {
    moss::sleep(v * 3ms);
    if (v == 1) throw std::runtime_error("first");
    return v;
  }, std::vector<int>{1, 2, 3});
  EXPECT_THROW(r.begin(), std::runtime_error);
  std::vector<int> rest;
  for (auto it = r.begin(); it != r.end(); ++it) rest.push_back(*it);
  testing::internal::GetCapturedStderr();
  // begin() after the failure goes on from where it stopped.
  EXPECT_EQ(rest, (std::vector<int>{2, 3}));
}

TEST_F(WithHub, ImapUnorderedOfNothingIsEmpty) {
  moss::pool p(2);
  int n = 0;
  for (int v : p.imap_unordered([](int v) { return v; }, std::vector<int>{})) n += v + 1;
  EXPECT_EQ(n, 0);
}

TEST_F(WithHub, APoolOfSizeZeroIsAClearError) {
  try {
    moss::pool p(0);
    ADD_FAILURE() << "no error";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("moss::pool: the size must be at least 1"), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, ImapYieldsInInputOrderWhileLaterInputsRun) {
  moss::pool p(3);
  int running = 0, peak = 0, started = 0, started_when_6_ended = 0;
  std::vector<int> got;
  for (int v : p.imap([&](int v) {
         ++started;
         peak = std::max(peak, ++running);
         moss::sleep(v * 10ms);
         --running;
         if (v == 6) started_when_6_ended = started;
         return v;
       }, std::vector<int>{6, 1, 5, 2, 4, 3}))
    got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{6, 1, 5, 2, 4, 3}));
  EXPECT_EQ(peak, 3);
  // While 6 ran (60 ms), the slots freed by 1 (10 ms), 2 (30 ms) and 5
  // (50 ms) started 2, 4 and 3: the slow first input held up no slot.
  EXPECT_EQ(started_when_6_ended, 6);
}

TEST_F(WithHub, ImapRethrowsAFailureAndCanGoOn) {
  testing::internal::CaptureStderr();
  moss::pool p(2);
  auto r = p.imap([](int v) {
    moss::sleep((4 - v) * 3ms);
    if (v == 2) throw std::runtime_error("second");
    return v;
  }, std::vector<int>{1, 2, 3});
  std::vector<int> got;
  auto it = r.begin();
  got.push_back(*it);
  EXPECT_THROW(++it, std::runtime_error);
  for (it = r.begin(); it != r.end(); ++it) got.push_back(*it);
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(got, (std::vector<int>{1, 3}));
}

TEST_F(WithHub, ImapOfNothingIsEmpty) {
  moss::pool p(2);
  int n = 0;
  for (int v : p.imap([](int v) { return v; }, std::vector<int>{})) n += v + 1;
  EXPECT_EQ(n, 0);
}

TEST_F(WithHub, ApplyRunsInThePoolAndReturnsTheValue) {
  moss::pool p(1);
  p.spawn([] { moss::sleep(30ms); });
  auto t0 = std::chrono::steady_clock::now();
  std::size_t members_inside = 0;
  int v = p.apply([&](int x) {
    members_inside = p.size();
    return x + 1;
  }, 41);
  EXPECT_EQ(v, 42);
  EXPECT_EQ(members_inside, 1u);                                // it ran as the pool's member
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 25ms);       // after the slot came free
  EXPECT_EQ(p.free_count(), 1u);
  int calls = 0;
  p.apply([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(p.apply([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST_F(WithHub, ApplyInterruptedKillsItsTask) {
  moss::pool p(2);
  bool finished = false;
  auto caller = moss::spawn([&] {
    p.apply([&] {
      moss::sleep(10s);
      finished = true;
    });
  });
  moss::sleep(10ms);
  ASSERT_EQ(p.size(), 1u);
  caller.kill();
  EXPECT_TRUE(caller.killed());
  EXPECT_TRUE(p.join(1s));
  EXPECT_FALSE(finished);
  EXPECT_EQ(p.free_count(), 2u);
}

TEST_F(WithHub, ApplyAsyncReturnsATaskAtOnce) {
  moss::pool p(2);
  auto t0 = std::chrono::steady_clock::now();
  moss::task<int> t = p.apply_async([](int x) {
    moss::sleep(30ms);
    return x * 2;
  }, 21);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_FALSE(t.ready());
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(t.get(), 42);
}

TEST_F(WithHub, WaitAvailableWaitsForAFreeSlotWithoutTakingIt) {
  moss::pool p(1);
  EXPECT_EQ(p.wait_available(), 1u);  // free: at once
  p.spawn([] { moss::sleep(40ms); });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.wait_available(5ms));
  EXPECT_EQ(p.wait_available(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 35ms);
  EXPECT_EQ(p.free_count(), 1u);  // not taken
  p.spawn([] { moss::sleep(20ms); });
  EXPECT_TRUE(p.wait_available(2s));
  EXPECT_EQ(p.free_count(), 1u);
}

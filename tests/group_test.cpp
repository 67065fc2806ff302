// group_test: moss::group tracks its tasks, joins and kills them.
#include <moss/group.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, AGroupTracksItsTasksUntilTheyFinish) {
  moss::group g;
  bool release_b = false;
  auto a = g.spawn([] {
    moss::sleep(5ms);
    return 1;
  });
  auto b = g.spawn([&](int x) {
    while (!release_b) moss::sleep(1ms);
    return x;
  }, 2);
  EXPECT_EQ(g.size(), 2u);
  EXPECT_TRUE(g.contains(a));
  a.join();
  EXPECT_EQ(g.size(), 1u);  // a left by itself
  EXPECT_FALSE(g.contains(a));
  release_b = true;
  g.join();
  EXPECT_TRUE(g.empty());
  EXPECT_EQ(b.get(), 2);
}

TEST_F(WithHub, JoinWaitsForMembersAddedWhileItWaits) {
  moss::group g;
  std::vector<int> done;
  g.spawn([&] {
    moss::sleep(5ms);
    g.spawn([&] {
      moss::sleep(10ms);
      done.push_back(2);
    });
    done.push_back(1);
  });
  g.join();
  EXPECT_EQ(done, (std::vector<int>{1, 2}));
}

TEST_F(WithHub, JoinWithATimeoutReturnsFalseWhileMembersRun) {
  moss::group g;
  g.spawn([] { moss::sleep(400ms); });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(g.join(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_EQ(g.size(), 1u);
  g.kill();
  EXPECT_TRUE(g.empty());
  EXPECT_TRUE(g.join(0ms));
}

TEST_F(WithHub, KillKillsEveryMemberAndWaits) {
  moss::group g;
  int unwound = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i) ts.push_back(g.spawn([&] {
    guard x{&unwound};
    moss::sleep(10s);
  }));
  moss::yield();
  g.kill();
  EXPECT_EQ(unwound, 4);
  EXPECT_TRUE(g.empty());
  for (auto& t : ts) EXPECT_TRUE(t.killed());
}

TEST_F(WithHub, AddTracksAnExistingTaskOnceAndIgnoresFinishedOnes) {
  moss::group g;
  auto t = moss::spawn([] { moss::sleep(5ms); });
  g.add(t);
  g.add(t);
  EXPECT_EQ(g.size(), 1u);
  auto done = moss::spawn([] {});
  done.join();
  g.add(done);
  EXPECT_EQ(g.size(), 1u);
  g.join();
  EXPECT_TRUE(t.ready());
}

TEST_F(WithHub, DiscardForgetsATaskWithoutStoppingIt) {
  moss::group g;
  auto t = g.spawn([] {
    moss::sleep(5ms);
    return 3;
  });
  g.discard(t);
  EXPECT_TRUE(g.empty());
  g.join();  // returns at once
  EXPECT_FALSE(t.ready());
  EXPECT_EQ(t.get(), 3);
}

TEST_F(WithHub, TasksListsTheMembersOldestFirst) {
  moss::group g;
  auto a = g.spawn([] { moss::sleep(5ms); });
  auto b = g.spawn([] { moss::sleep(5ms); });
  auto ts = g.tasks();
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_TRUE(ts[0] == a);
  EXPECT_TRUE(ts[1] == b);
  g.join();
}

TEST_F(WithHub, DestroyingAGroupLeavesItsTasksRunning) {
  moss::task<int> t;
  {
    moss::group g;
    t = g.spawn([] {
      moss::sleep(5ms);
      return 9;
    });
  }
  EXPECT_EQ(t.get(), 9);
}

TEST_F(WithHub, AMemberJoiningItsOwnGroupIsAClearError) {
  moss::group g;
  std::string message;
  g.spawn([&] {
    moss::yield();
    try {
      g.join();
    } catch (const moss::error& e) {
      message = e.what();
    }
  });
  g.join();
  EXPECT_NE(message.find("a member of the group; it would wait for itself"), std::string::npos) << message;
}

TEST_F(WithHub, AMemberKillingItsGroupIsKilledLast) {
  moss::group g;
  auto other = g.spawn([] { moss::sleep(10s); });
  bool other_done_first = false;
  auto killer = g.spawn([&] {
    moss::yield();
    try {
      g.kill();
    } catch (...) {
      other_done_first = other.ready();
      throw;
    }
  });
  killer.join();
  EXPECT_TRUE(other_done_first);
  EXPECT_TRUE(killer.killed());
  EXPECT_TRUE(g.empty());
}

TEST_F(WithHub, AddingAHundredThousandTasksTakesLinearTime) {
  constexpr int n = 100'000;
  std::vector<moss::task<void>> ts;
  ts.reserve(n);
  for (int i = 0; i < n; ++i) ts.push_back(moss::spawn([] { moss::sleep(1ms); }));
  moss::group g;
  auto t0 = std::chrono::steady_clock::now();
  for (auto& t : ts) g.add(t);
  for (auto& t : ts) EXPECT_TRUE(g.contains(t));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(g.size(), static_cast<std::size_t>(n));
  // Linear is milliseconds; a scan of the members per add takes many seconds.
  EXPECT_LT(took, 1500ms);
  g.join();
}

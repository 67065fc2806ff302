// task_group_test: structured concurrency — task_group, shield and
// current_task.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

struct flag_on_unwind {
  bool* b;
  ~flag_on_unwind() { *b = true; }
};

}  // namespace

TEST_F(WithHub, CurrentTaskIsTheRunningTaskAndEmptyOutsideOne) {
  EXPECT_FALSE(moss::current_task());
  moss::task_ref seen;
  auto t = moss::spawn([&] { seen = moss::current_task(); });
  t.join();
  EXPECT_EQ(seen, t);
  moss::greenlet g([](std::any) -> std::any { return static_cast<bool>(moss::current_task()); });
  EXPECT_FALSE(std::any_cast<bool>(g.switch_to()));
}

TEST_F(WithHub, ATaskGroupJoinWaitsForEveryMember) {
  moss::task_group g;
  auto a = g.spawn([] {
    moss::sleep(20ms);
    return 1;
  });
  auto b = g.spawn([] {
    moss::sleep(10ms);
    return 2;
  });
  EXPECT_EQ(g.size(), 2u);
  g.join();
  EXPECT_EQ(g.size(), 0u);
  EXPECT_EQ(a.get() + b.get(), 3);
}

TEST_F(WithHub, AFailingMemberKillsTheOthersAtOnceAndJoinRethrowsIt) {
  bool sibling_unwound = false;
  auto t0 = clk::now();
  moss::task_group g;
  auto slow = g.spawn([&] {
    flag_on_unwind f{&sibling_unwound};
    moss::sleep(10s);
  });
  g.spawn([] {
    moss::sleep(5ms);
    throw std::runtime_error("member failed");
  });
  moss::sleep(50ms);  // the owner is busy elsewhere: the sibling dies anyway
  EXPECT_TRUE(sibling_unwound);
  EXPECT_TRUE(g.failed());
  try {
    g.join();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "member failed");
  }
  EXPECT_TRUE(slow.killed());
  EXPECT_LT(clk::now() - t0, 2s);
  EXPECT_THROW(g.spawn([] {}), moss::error) << "a failed group takes no new members";
}

TEST_F(WithHub, AKilledMemberIsNotAFailure) {
  moss::task_group g;
  auto a = g.spawn([] { moss::sleep(10s); });
  auto b = g.spawn([] {
    moss::sleep(5ms);
    return 7;
  });
  a.kill();
  g.join();
  EXPECT_FALSE(g.failed());
  EXPECT_EQ(b.get(), 7);
}

TEST_F(WithHub, LeavingTheScopeWithoutJoinKillsTheMembersAndWaitsForThem) {
  bool unwound = false;
  moss::task<void> t;
  try {
    moss::task_group g;
    t = g.spawn([&] {
      flag_on_unwind f{&unwound};
      moss::sleep(10s);
    });
    moss::yield();
    throw std::logic_error("body failed");
  } catch (const std::logic_error&) {
  }
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(t.killed());
}

TEST_F(WithHub, ATimeoutAroundJoinKillsTheMembers) {
  moss::task_group g;
  auto a = g.spawn([] { moss::sleep(10s); });
  auto b = g.spawn([] { moss::sleep(10s); });
  EXPECT_THROW(
      {
        moss::timeout limit(20ms);
        g.join();
      },
      moss::timeout_error);
  EXPECT_TRUE(a.killed());
  EXPECT_TRUE(b.killed());
  EXPECT_THROW(g.spawn([] {}), moss::error) << "join has returned";
}

TEST_F(WithHub, MembersCanSpawnMembersAndJoinWaitsForThemToo) {
  moss::task_group g;
  int done = 0;
  g.spawn([&] {
    moss::sleep(5ms);
    g.spawn([&] {
      moss::sleep(20ms);
      ++done;
    });
    ++done;
  });
  g.join();
  EXPECT_EQ(done, 2);
}

TEST_F(WithHub, AMemberCannotJoinItsOwnGroup) {
  moss::task_group g;
  std::string what;
  g.spawn([&] {
    try {
      g.join();
    } catch (const moss::error& e) {
      what = e.what();
    }
  });
  g.join();
  EXPECT_NE(what.find("called by a member"), std::string::npos) << what;
}

TEST_F(WithHub, JoinWithATimeoutLeavesTheMembersRunning) {
  moss::task_group g;
  auto a = g.spawn([] { moss::sleep(60ms); });
  EXPECT_FALSE(g.join(5ms));
  EXPECT_FALSE(a.ready());
  EXPECT_TRUE(g.join(5s));
}

TEST_F(WithHub, AGroupFromAnotherThreadIsAClearError) {
  moss::task_group g;
  std::string what;
  std::thread([&] {
    try {
      g.spawn([] {});
    } catch (const moss::error& e) {
      what = e.what();
    }
  }).join();
  EXPECT_NE(what.find("another thread"), std::string::npos) << what;
}

TEST_F(WithHub, AShieldedTaskRunsOnWhenItsCallerTimesOut) {
  bool finished = false;
  EXPECT_THROW(moss::with_timeout(10ms,
                                  [&] {
                                    return moss::shield([&] {
                                      moss::sleep(40ms);
                                      finished = true;
                                      return 1;
                                    });
                                  }),
               moss::timeout_error);
  EXPECT_FALSE(finished);
  moss::sleep(100ms);
  EXPECT_TRUE(finished) << "the shielded task was cancelled with its caller";
}

TEST_F(WithHub, AShieldInAFailingGroupKeepsItsWorkGoing) {
  bool committed = false;
  moss::task_group g;
  g.spawn([&] { moss::shield([&] { moss::sleep(30ms); committed = true; }); });
  g.spawn([] {
    moss::sleep(1ms);
    throw std::runtime_error("sibling failed");
  });
  EXPECT_THROW(g.join(), std::runtime_error);
  EXPECT_FALSE(committed);
  moss::sleep(100ms);
  EXPECT_TRUE(committed);
}

TEST_F(WithHub, ShieldReturnsTheValueAndRethrowsTheFailure) {
  EXPECT_EQ(moss::shield([] { return 5; }), 5);
  EXPECT_THROW(moss::shield([]() -> int { throw std::invalid_argument("x"); }), std::invalid_argument);
}

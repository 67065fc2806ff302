// timeout_test: the scoped moss::timeout (gevent.Timeout) and with_timeout
// (asyncio.wait_for); the seed "wait_for timing out".
#include <moss/moss.hpp>
#include <moss/timeout.hpp>
#include <moss/wait.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {
auto since(std::chrono::steady_clock::time_point t0) { return std::chrono::steady_clock::now() - t0; }

void spin_for(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}
}  // namespace

TEST_F(WithHub, ATimeoutInterruptsABlockedWaitAtItsDeadline) {
  auto t0 = std::chrono::steady_clock::now();
  try {
    moss::timeout t(30ms);
    moss::sleep(10s);
    ADD_FAILURE() << "sleep was not interrupted";
  } catch (const moss::timeout_error& e) {
    EXPECT_NE(std::string(e.what()).find("timeout of 30 ms expired in greenlet \"main\""), std::string::npos) << e.what();
  }
  EXPECT_GE(since(t0), 30ms);
  EXPECT_LT(since(t0), 2s);
}

TEST_F(WithHub, ATimeoutThatDoesNotExpireIsCancelledByItsDestructor) {
  {
    moss::timeout t(30ms);
    moss::sleep(1ms);
    EXPECT_TRUE(t.pending());
  }
  moss::sleep(60ms);  // past the old deadline: nothing is raised
  SUCCEED();
}

TEST_F(WithHub, TheErrorNamesItsSourceSoNestedScopesCanTellWhoseItIs) {
  // The inner one fires first.
  try {
    moss::timeout outer(2s);
    try {
      moss::timeout inner(20ms);
      moss::sleep(10s);
    } catch (const moss::timeout_error& e) {
      EXPECT_NE(e.source(), &outer);
      EXPECT_NE(e.source(), nullptr);
    }
  } catch (const moss::timeout_error&) {
    ADD_FAILURE() << "the outer timeout fired";
  }

  // The outer one fires while inside the inner scope: it passes through.
  bool outer_caught = false;
  {
    moss::timeout outer(20ms);
    try {
      moss::timeout inner(2s);
      try {
        moss::sleep(10s);
      } catch (const moss::timeout_error& e) {
        EXPECT_NE(e.source(), &inner);
        throw;
      }
    } catch (const moss::timeout_error& e) {
      outer_caught = e.source() == &outer;
    }
  }
  EXPECT_TRUE(outer_caught);
}

TEST_F(WithHub, ATimeoutAlreadyExpiredFiresAtTheFirstBlockingCall) {
  {
    moss::timeout t(0ms);
    EXPECT_TRUE(t.fired());
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(moss::sleep(10s), moss::timeout_error);
    EXPECT_LT(since(t0), 1s);
  }
  {
    moss::timeout t(5ms);
    spin_for(20ms);  // the deadline passes while we do not block
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(moss::sleep(10s), moss::timeout_error);
    EXPECT_LT(since(t0), 1s);
  }
}

TEST_F(WithHub, AFiredTimeoutNeverDeliveredIsWithdrawnByItsDestructor) {
  {
    moss::timeout t(-1ms);
    EXPECT_TRUE(t.fired());
    // Leave the scope without blocking.
  }
  moss::sleep(1ms);  // must not raise
  SUCCEED();
}

TEST_F(WithHub, ATimeoutWorksInsideATaskAndAppliesOnlyToThatTask) {
  auto victim = moss::spawn([] {
    moss::timeout t(20ms);
    moss::sleep(10s);
  });
  auto bystander = moss::spawn([] {
    moss::sleep(50ms);
    return 7;
  });
  EXPECT_EQ(bystander.get(), 7);
  try {
    victim.get();
    ADD_FAILURE() << "no timeout";
  } catch (const moss::timeout_error& e) {
    EXPECT_NE(std::string(e.what()).find("timeout of 20 ms expired"), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, ATimeoutBoundsAJoin) {
  auto slow = moss::spawn([] { moss::sleep(10s); });
  EXPECT_THROW(
      {
        moss::timeout t(20ms);
        slow.join();
      },
      moss::timeout_error);
  EXPECT_FALSE(slow.ready());
  slow.kill();
}

TEST_F(WithHub, WhenTwoTimeoutsExpireInTheSameTurnTheFirstToExpireWins) {
  // Both deadlines pass while we spin; the hub fires them one after the
  // other in deadline order. The second must not replace the error the
  // first already delivered (the rule that also keeps a pending kill).
  const moss::timeout* first_addr = nullptr;
  const moss::timeout* source = nullptr;
  try {
    moss::timeout first(5ms);
    first_addr = &first;
    moss::timeout second(6ms);
    spin_for(20ms);
    moss::sleep(10s);
  } catch (const moss::timeout_error& e) {
    source = e.source();
  }
  EXPECT_EQ(source, first_addr);
}

TEST_F(WithHub, CancelDisarmsATimeout) {
  moss::timeout t(10ms);
  t.cancel();
  EXPECT_FALSE(t.pending());
  moss::sleep(30ms);
  EXPECT_FALSE(t.fired());
}

// Seed (asyncio): await asyncio.wait_for(aw, timeout) — the slow one times out.
TEST_F(WithHub, WithTimeoutReturnsTheValueWhenInTime) {
  EXPECT_EQ(moss::with_timeout(1s, [] {
    moss::sleep(1ms);
    return 42;
  }), 42);
  moss::with_timeout(1s, [] {});
}

TEST_F(WithHub, WithTimeoutKillsTheTaskAndThrowsWhenTooSlow) {
  bool unwound = false;
  struct guard {
    bool* b;
    ~guard() { *b = true; }
  };
  auto t0 = std::chrono::steady_clock::now();
  try {
    moss::with_timeout(30ms, [&] {
      guard g{&unwound};
      moss::sleep(10s);
      return 1;
    });
    ADD_FAILURE() << "no timeout";
  } catch (const moss::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);
    EXPECT_NE(std::string(e.what()).find("did not finish within 30 ms; it was killed"), std::string::npos) << e.what();
  }
  EXPECT_GE(since(t0), 30ms);
  EXPECT_LT(since(t0), 2s);
  EXPECT_TRUE(unwound);  // killed and unwound before with_timeout returned
  EXPECT_TRUE(moss::all_tasks().empty());
}

TEST_F(WithHub, WithTimeoutsErrorDoesNotNameTheInternalTask) {
  try {
    moss::with_timeout(5ms, [] { moss::sleep(10s); });
    ADD_FAILURE() << "no timeout";
  } catch (const moss::timeout_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find("task-"), std::string::npos) << what;
    EXPECT_NE(what.find("moss::with_timeout"), std::string::npos) << what;
  }
}

// The function ends on its own after the deadline was reached (its wait was
// woken in the same turn the timer fired): the deadline still wins.
TEST_F(WithHub, WithTimeoutThrowsWhenTheFunctionSwallowsTheKillAndReturns) {
  EXPECT_THROW(moss::with_timeout(10ms,
                                  [] {
                                    try {
                                      moss::sleep(10s);
                                    } catch (const moss::greenlet_exit&) {
                                      return 1;  // refuses to die
                                    }
                                    return 2;
                                  }),
               moss::timeout_error);
}

TEST_F(WithHub, WithTimeoutRethrowsTheFunctionsException) {
  testing::internal::CaptureStderr();
  EXPECT_THROW(moss::with_timeout(1s, []() -> int { throw std::invalid_argument("inner"); }), std::invalid_argument);
  testing::internal::GetCapturedStderr();
}

TEST_F(WithHub, KillingTheCallerOfWithTimeoutKillsItsTaskToo) {
  bool inner_unwound = false;
  struct guard {
    bool* b;
    ~guard() { *b = true; }
  };
  auto outer = moss::spawn([&] {
    moss::with_timeout(10s, [&] {
      guard g{&inner_unwound};
      moss::sleep(10s);
    });
  });
  moss::sleep(5ms);
  outer.kill();
  EXPECT_TRUE(inner_unwound);
  EXPECT_TRUE(moss::all_tasks().empty());
}

TEST_F(WithHub, WithTimeoutMovesAMoveOnlyResultOut) {
  auto p = moss::with_timeout(1s, [] { return std::make_unique<int>(5); });
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
}

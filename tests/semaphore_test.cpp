// semaphore_test: counting, FIFO hand-off, timeouts, killed waiters, bounds.
#include <moss/moss.hpp>
#include <moss/semaphore.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, SemaphoreAcquireTakesFreePermitsAndWaitsAtZero) {
  moss::semaphore s(2);
  s.acquire();
  s.acquire();
  EXPECT_EQ(s.value(), 0u);
  EXPECT_TRUE(s.locked());
  bool got = false;
  auto t = moss::spawn([&] {
    s.acquire();
    got = true;
  });
  moss::yield();
  EXPECT_FALSE(got);
  EXPECT_EQ(s.waiting(), 1u);
  s.release();
  t.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(s.value(), 0u);
}

TEST_F(WithHub, SemaphorePermitsGoToWaitersInFifoOrderWithoutBarging) {
  moss::semaphore s(0);
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i)
    ts.push_back(moss::spawn([&, i] {
      s.acquire();
      order.push_back(i);
    }));
  moss::yield();
  EXPECT_EQ(s.waiting(), 4u);
  s.release();
  // The permit is the first waiter's now: a newcomer cannot take it.
  EXPECT_FALSE(s.try_acquire());
  EXPECT_EQ(s.value(), 0u);
  for (int i = 0; i < 3; ++i) s.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(s.value(), 0u);
}

TEST_F(WithHub, ReleaseWithNobodyWaitingRaisesTheValue) {
  moss::semaphore s(1);
  s.release();
  EXPECT_EQ(s.value(), 2u);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
}

TEST_F(WithHub, SemaphoreAcquireWithTimeoutGivesUpAndLeavesTheQueue) {
  moss::semaphore s(0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.acquire(0ms));  // deadline already passed: returns at once
  EXPECT_FALSE(s.acquire(-1s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(s.acquire(2ms));
  EXPECT_EQ(s.waiting(), 0u);
  s.release();  // nobody waits: the permit is counted, not handed to the one that gave up
  EXPECT_EQ(s.value(), 1u);
  EXPECT_TRUE(s.acquire(0ms));  // a free permit is taken even with no time left
}

TEST_F(WithHub, SemaphoreAcquireWithTimeoutSucceedsWhenReleasedInTime) {
  moss::semaphore s(0);
  auto releaser = moss::spawn([&] {
    moss::sleep(5ms);
    s.release();
  });
  EXPECT_TRUE(s.acquire(5s));
  releaser.join();
}

TEST_F(WithHub, AKilledSemaphoreWaiterLeavesThePermitForTheNext) {
  moss::semaphore s(0);
  std::vector<int> got;
  auto a = moss::spawn([&] {
    s.acquire();
    got.push_back(1);
  });
  auto b = moss::spawn([&] {
    s.acquire();
    got.push_back(2);
  });
  moss::yield();
  a.kill();
  EXPECT_EQ(s.waiting(), 1u);
  s.release();
  b.join();
  EXPECT_EQ(got, (std::vector<int>{2}));
}

TEST_F(WithHub, APermitHandedToAWaiterKilledBeforeItRanGoesToTheNextWaiter) {
  moss::semaphore s(0);
  std::vector<int> got;
  auto a = moss::spawn([&] {
    s.acquire();
    got.push_back(1);
  });
  auto b = moss::spawn([&] {
    s.acquire();
    got.push_back(2);
  });
  moss::yield();
  s.release();  // handed to a
  a.kill();     // before a runs
  b.join();
  EXPECT_TRUE(a.killed());
  EXPECT_EQ(got, (std::vector<int>{2}));
  EXPECT_EQ(s.value(), 0u);
}

TEST_F(WithHub, APermitHandedToAWaiterKilledBeforeItRanReturnsToTheCountWhenNobodyElseWaits) {
  moss::semaphore s(0);
  bool got = false;
  auto a = moss::spawn([&] {
    s.acquire();
    got = true;
  });
  moss::yield();
  s.release();
  a.kill();
  EXPECT_FALSE(got);
  EXPECT_EQ(s.value(), 1u);
}

TEST_F(WithHub, AcquireOnASemaphoreNothingCanReleaseIsLoopExit) {
  moss::semaphore s(0);
  EXPECT_THROW(s.acquire(), moss::loop_exit);
  EXPECT_EQ(s.waiting(), 0u);
}

TEST_F(WithHub, BoundedSemaphoreReleasePastItsInitialValueIsAnError) {
  moss::bounded_semaphore s(2);
  EXPECT_EQ(s.bound(), 2u);
  s.acquire();
  s.release();
  try {
    s.release();
    ADD_FAILURE() << "release past the bound returned";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("bounded_semaphore released more times than it was acquired"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(s.value(), 2u);
}

TEST_F(WithHub, BoundedSemaphoreHandsPermitsToWaitersLikeAnyOther) {
  moss::bounded_semaphore s(1);
  s.acquire();
  auto t = moss::spawn([&] {
    s.acquire();
    s.release();
  });
  moss::yield();
  s.release();  // handed over: value stays 0, no bound error
  t.join();
  EXPECT_EQ(s.value(), 1u);
  EXPECT_THROW(s.release(), moss::error);
}

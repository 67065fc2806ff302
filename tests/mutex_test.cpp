// mutex_test: exclusion, FIFO hand-off, timeouts, killed waiters, misuse,
// and the standard lock guards.
#include <moss/moss.hpp>
#include <moss/mutex.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {
std::string message_of(auto&& f) {
  try {
    f();
  } catch (const moss::error& e) {
    return e.what();
  }
  return "(no moss::error)";
}
}  // namespace

TEST_F(WithHub, MutexLockTryLockAndUnlock) {
  moss::mutex m;
  EXPECT_FALSE(m.locked());
  m.lock();
  EXPECT_TRUE(m.locked());
  EXPECT_TRUE(m.owned_by_current());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_F(WithHub, MutexKeepsOthersOutOfACriticalSectionThatWaits) {
  moss::mutex m;
  int inside = 0;
  int max_inside = 0;
  int done = 0;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 5; ++i)
    ts.push_back(moss::spawn([&] {
      for (int k = 0; k < 3; ++k) {
        std::lock_guard g(m);
        ++inside;
        max_inside = std::max(max_inside, inside);
        moss::sleep(1ms);
        moss::yield();
        --inside;
        ++done;
      }
    }));
  for (auto& t : ts) t.join();
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(done, 15);
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, MutexGoesToWaitersInFifoOrderWithoutBarging) {
  moss::mutex m;
  m.lock();
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i)
    ts.push_back(moss::spawn([&, i] {
      m.lock();
      order.push_back(i);
      m.unlock();
    }));
  moss::yield();
  EXPECT_EQ(m.waiting(), 4u);
  m.unlock();
  // Handed to the first waiter already: a newcomer cannot take it.
  EXPECT_TRUE(m.locked());
  EXPECT_FALSE(m.owned_by_current());
  EXPECT_FALSE(m.try_lock());
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, TryLockForGivesUpAfterTheTimeout) {
  moss::mutex m;
  auto holder = moss::spawn([&] {
    std::lock_guard g(m);
    moss::sleep(30ms);
  });
  moss::yield();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.try_lock_for(0ms));  // deadline already passed: at once
  EXPECT_FALSE(m.try_lock_for(-1s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(m.try_lock_for(1ms));
  EXPECT_EQ(m.waiting(), 0u);
  EXPECT_TRUE(m.try_lock_for(5s));
  EXPECT_TRUE(m.owned_by_current());
  m.unlock();
  holder.join();
}

TEST_F(WithHub, TryLockUntilTakesAnyClock) {
  moss::mutex m;
  EXPECT_TRUE(m.try_lock_until(std::chrono::system_clock::now() + 1s));
  m.unlock();
}

TEST_F(WithHub, AKilledMutexWaiterIsSkipped) {
  moss::mutex m;
  m.lock();
  std::vector<int> got;
  auto a = moss::spawn([&] {
    std::lock_guard g(m);
    got.push_back(1);
  });
  auto b = moss::spawn([&] {
    std::lock_guard g(m);
    got.push_back(2);
  });
  moss::yield();
  a.kill();
  m.unlock();
  b.join();
  EXPECT_EQ(got, (std::vector<int>{2}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, ALockHandedToAWaiterKilledBeforeItRanGoesToTheNext) {
  moss::mutex m;
  m.lock();
  std::vector<int> got;
  auto a = moss::spawn([&] {
    std::lock_guard g(m);
    got.push_back(1);
  });
  auto b = moss::spawn([&] {
    std::lock_guard g(m);
    got.push_back(2);
  });
  moss::yield();
  m.unlock();  // a owns it now
  a.kill();    // before a runs
  b.join();
  EXPECT_EQ(got, (std::vector<int>{2}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, ALockHandedToAWaiterKilledBeforeItRanIsFreedWhenNobodyElseWaits) {
  moss::mutex m;
  m.lock();
  auto a = moss::spawn([&] { std::lock_guard g(m); });
  moss::yield();
  m.unlock();
  a.kill();
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_F(WithHub, UnlockingAnUnlockedMutexIsAnError) {
  moss::mutex m;
  EXPECT_NE(message_of([&] { m.unlock(); }).find("unlock of a moss::mutex that is not locked"), std::string::npos);
}

TEST_F(WithHub, UnlockingAnotherGreenletsMutexIsAnErrorAndLeavesItLocked) {
  moss::mutex m;
  auto owner = moss::spawn(moss::spawn_options{.name = "owner"}, [&] {
    m.lock();
    moss::sleep(20ms);
    m.unlock();
  });
  moss::yield();
  std::string msg = message_of([&] { m.unlock(); });
  EXPECT_NE(msg.find("unlocked a moss::mutex held by greenlet \"owner\""), std::string::npos) << msg;
  EXPECT_TRUE(m.locked());
  owner.join();
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, LockingAMutexTwiceFromTheSameGreenletIsAnError) {
  moss::mutex m;
  m.lock();
  std::string msg = message_of([&] { m.lock(); });
  EXPECT_NE(msg.find("already holds"), std::string::npos) << msg;
  EXPECT_FALSE(m.try_lock());
  m.unlock();
}

TEST_F(WithHub, MutexWorksWithLockGuardUniqueLockAndScopedLock) {
  moss::mutex a;
  moss::mutex b;
  {
    std::lock_guard g(a);
    EXPECT_TRUE(a.owned_by_current());
  }
  EXPECT_FALSE(a.locked());
  {
    std::unique_lock l(a, std::try_to_lock);
    EXPECT_TRUE(l.owns_lock());
    l.unlock();
    EXPECT_FALSE(a.locked());
    EXPECT_TRUE(l.try_lock_for(1ms));
    EXPECT_TRUE(a.owned_by_current());
  }
  EXPECT_FALSE(a.locked());
  // scoped_lock on two mutexes, each held for a while by a different task:
  // std::lock's blocking lock on the busy one must let the holders run.
  auto ha = moss::spawn([&] {
    std::lock_guard g(a);
    moss::sleep(5ms);
  });
  auto hb = moss::spawn([&] {
    std::lock_guard g(b);
    moss::sleep(10ms);
  });
  moss::yield();
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.owned_by_current());
    EXPECT_TRUE(b.owned_by_current());
  }
  EXPECT_FALSE(a.locked());
  EXPECT_FALSE(b.locked());
  ha.join();
  hb.join();
}

TEST_F(WithHub, TwoTasksTakingTwoMutexesInOppositeOrderWithScopedLockDoNotDeadlock) {
  moss::mutex a;
  moss::mutex b;
  int rounds = 0;
  auto one = moss::spawn([&] {
    for (int i = 0; i < 20; ++i) {
      std::scoped_lock l(a, b);
      moss::yield();
      ++rounds;
    }
  });
  auto two = moss::spawn([&] {
    for (int i = 0; i < 20; ++i) {
      std::scoped_lock l(b, a);
      moss::yield();
      ++rounds;
    }
  });
  one.join();
  two.join();
  EXPECT_EQ(rounds, 40);
}

TEST_F(WithHub, LockingAMutexNobodyWillReleaseIsLoopExit) {
  moss::mutex m;
  auto holder = moss::spawn([&] { m.lock(); });  // ends holding it
  holder.join();
  EXPECT_THROW(m.lock(), moss::loop_exit);
  EXPECT_EQ(m.waiting(), 0u);
}

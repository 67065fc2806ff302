// recursive_mutex_test: nesting, hand-off between greenlets, misuse.
#include <moss/moss.hpp>
#include <moss/recursive_mutex.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, TheOwnerMayLockARecursiveMutexAgain) {
  moss::recursive_mutex m;
  m.lock();
  m.lock();
  EXPECT_TRUE(m.try_lock());
  EXPECT_TRUE(m.try_lock_for(0ms));
  EXPECT_EQ(m.level(), 4u);
  for (int i = 0; i < 3; ++i) m.unlock();
  EXPECT_TRUE(m.locked());
  m.unlock();
  EXPECT_FALSE(m.locked());
  EXPECT_EQ(m.level(), 0u);
}

TEST_F(WithHub, ARecursiveMutexIsFreeForOthersOnlyAfterTheLastUnlock) {
  moss::recursive_mutex m;
  std::vector<std::string> log;
  std::unique_lock outer(m);
  auto other = moss::spawn([&] {
    std::lock_guard g(m);
    log.push_back("other");
  });
  {
    std::lock_guard inner(m);
    moss::sleep(2ms);
    log.push_back("inner");
  }
  moss::sleep(2ms);
  EXPECT_EQ(log, (std::vector<std::string>{"inner"}));  // still held once
  outer.unlock();
  other.join();
  EXPECT_EQ(log, (std::vector<std::string>{"inner", "other"}));
}

TEST_F(WithHub, RecursiveMutexWaitersGetItInFifoOrder) {
  moss::recursive_mutex m;
  m.lock();
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 3; ++i)
    ts.push_back(moss::spawn([&, i] {
      std::lock_guard a(m);
      std::lock_guard b(m);
      order.push_back(i);
    }));
  moss::yield();
  EXPECT_EQ(m.waiting(), 3u);
  m.unlock();
  EXPECT_FALSE(m.try_lock());  // handed over, no barging
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST_F(WithHub, RecursiveMutexTryLockForTimesOutWhileAnotherHoldsIt) {
  moss::recursive_mutex m;
  auto holder = moss::spawn([&] {
    std::lock_guard g(m);
    moss::sleep(20ms);
  });
  moss::yield();
  EXPECT_FALSE(m.try_lock_for(0ms));
  EXPECT_FALSE(m.try_lock_for(1ms));
  EXPECT_TRUE(m.try_lock_for(5s));
  EXPECT_EQ(m.level(), 1u);
  m.unlock();
  holder.join();
}

TEST_F(WithHub, ARecursiveLockHandedToAWaiterKilledBeforeItRanGoesToTheNext) {
  moss::recursive_mutex m;
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
  m.unlock();
  a.kill();
  b.join();
  EXPECT_EQ(got, (std::vector<int>{2}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, UnlockingARecursiveMutexOneDoesNotHoldIsAnError) {
  moss::recursive_mutex m;
  EXPECT_THROW(m.unlock(), moss::error);
  auto owner = moss::spawn([&] {
    std::lock_guard g(m);
    moss::sleep(10ms);
  });
  moss::yield();
  try {
    m.unlock();
    ADD_FAILURE() << "unlock by a non-owner returned";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("held by another greenlet"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m.level(), 1u);
  owner.join();
  EXPECT_FALSE(m.locked());
}

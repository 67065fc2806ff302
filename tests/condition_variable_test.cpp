// condition_variable_test: wait/notify under a moss::mutex, predicates,
// timeouts, killed waiters, misuse.
#include <moss/condition_variable.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, NotifyOneWakesOneWaiterAtATimeInFifoOrder) {
  moss::mutex m;
  moss::condition_variable cv;
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 3; ++i)
    ts.push_back(moss::spawn([&, i] {
      std::unique_lock l(m);
      cv.wait(l);
      EXPECT_TRUE(m.owned_by_current());
      order.push_back(i);
    }));
  moss::yield();
  EXPECT_EQ(cv.waiting(), 3u);
  EXPECT_FALSE(m.locked());  // every waiter released it
  cv.notify_one();
  moss::sleep(1ms);
  EXPECT_EQ(order, (std::vector<int>{0}));
  cv.notify_one();
  cv.notify_one();
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, NotifyAllWakesEveryWaiter) {
  moss::mutex m;
  moss::condition_variable cv;
  int woken = 0;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i)
    ts.push_back(moss::spawn([&] {
      std::unique_lock l(m);
      cv.wait(l);
      ++woken;
    }));
  moss::yield();
  cv.notify_all();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woken, 4);
  EXPECT_EQ(cv.waiting(), 0u);
}

TEST_F(WithHub, WaitWithAPredicateWaitsUntilItHolds) {
  moss::mutex m;
  moss::condition_variable cv;
  int stage = 0;
  auto consumer = moss::spawn([&] {
    std::unique_lock l(m);
    cv.wait(l, [&] { return stage == 3; });
    return stage;
  });
  for (int i = 0; i < 3; ++i) {
    moss::sleep(1ms);
    {
      std::lock_guard g(m);
      ++stage;
    }
    cv.notify_all();
  }
  EXPECT_EQ(consumer.get(), 3);
}

TEST_F(WithHub, WaitForTimesOutAndRelocks) {
  moss::mutex m;
  moss::condition_variable cv;
  std::unique_lock l(m);
  EXPECT_EQ(cv.wait_for(l, 2ms), std::cv_status::timeout);
  EXPECT_TRUE(l.owns_lock());
  EXPECT_TRUE(m.owned_by_current());
  EXPECT_EQ(cv.waiting(), 0u);
  EXPECT_FALSE(cv.wait_for(l, 2ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(l, 2ms, [] { return true; }));
  EXPECT_FALSE(cv.wait_until(l, std::chrono::system_clock::now() + 1ms, [] { return false; }));
}

TEST_F(WithHub, WaitForWithATimeoutAlreadyPassedReturnsAtOnceKeepingTheLock) {
  moss::mutex m;
  moss::condition_variable cv;
  std::unique_lock l(m);
  auto other = moss::spawn([&] { std::lock_guard g(m); });  // would take m if we let go
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(cv.wait_for(l, 0ms), std::cv_status::timeout);
  EXPECT_EQ(cv.wait_for(l, -1s), std::cv_status::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_TRUE(m.owned_by_current());
  l.unlock();
  other.join();
}

TEST_F(WithHub, WaitForReturnsNoTimeoutWhenNotifiedInTime) {
  moss::mutex m;
  moss::condition_variable cv;
  bool flag = false;
  auto notifier = moss::spawn([&] {
    moss::sleep(5ms);
    std::lock_guard g(m);
    flag = true;
    cv.notify_one();
  });
  std::unique_lock l(m);
  EXPECT_TRUE(cv.wait_for(l, 5s, [&] { return flag; }));
  l.unlock();
  notifier.join();
}

TEST_F(WithHub, ANotificationForAWaiterKilledBeforeItRanGoesToTheNext) {
  moss::mutex m;
  moss::condition_variable cv;
  std::vector<int> woke;
  auto a = moss::spawn([&] {
    std::unique_lock l(m);
    cv.wait(l);
    woke.push_back(1);
  });
  auto b = moss::spawn([&] {
    std::unique_lock l(m);
    cv.wait(l);
    woke.push_back(2);
  });
  moss::yield();
  cv.notify_one();  // meant for a
  a.kill();         // before a runs: b gets it instead
  b.join();
  EXPECT_EQ(woke, (std::vector<int>{2}));
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, AKilledWaiterRelocksBeforeUnwindingSoTheMutexStaysConsistent) {
  moss::mutex m;
  moss::condition_variable cv;
  bool owned_while_unwinding = false;
  auto w = moss::spawn([&] {
    std::unique_lock l(m);
    struct probe {
      moss::mutex& m;
      bool& out;
      ~probe() { out = m.owned_by_current(); }
    } p{m, owned_while_unwinding};
    cv.wait(l);
  });
  moss::yield();
  m.lock();  // the waiter must wait for this before it can unwind
  w.kill(false);
  moss::sleep(1ms);
  EXPECT_FALSE(w.ready());
  m.unlock();
  w.join();
  EXPECT_TRUE(w.killed());
  EXPECT_TRUE(owned_while_unwinding);
  EXPECT_FALSE(m.locked());
  EXPECT_EQ(cv.waiting(), 0u);
}

TEST_F(WithHub, AKillThatArrivesWhileRelockingIsRaisedOnceTheMutexIsBack) {
  moss::mutex m;
  moss::condition_variable cv;
  bool owned_while_unwinding = false;
  bool returned = false;
  auto w = moss::spawn([&] {
    std::unique_lock l(m);
    struct probe {
      moss::mutex& m;
      bool& out;
      ~probe() { out = m.owned_by_current(); }
    } p{m, owned_while_unwinding};
    cv.wait(l);
    returned = true;
  });
  moss::yield();
  m.lock();
  cv.notify_one();
  moss::yield();  // the waiter now waits for m inside wait()
  EXPECT_EQ(m.waiting(), 1u);
  w.kill(false);
  moss::yield();
  m.unlock();
  w.join();
  EXPECT_TRUE(w.killed());
  EXPECT_TRUE(owned_while_unwinding);
  EXPECT_FALSE(m.locked());
}

TEST_F(WithHub, WaitingWithoutHoldingTheLockIsAnError) {
  moss::mutex m;
  moss::condition_variable cv;
  std::unique_lock l(m, std::defer_lock);
  try {
    cv.wait(l);
    ADD_FAILURE() << "wait without the lock returned";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("needs its mutex locked by the calling greenlet"), std::string::npos) << e.what();
  }
  auto holder = moss::spawn([&] {
    std::lock_guard g(m);
    moss::sleep(10ms);
  });
  moss::yield();
  std::unique_lock adopted(m, std::adopt_lock);  // a lie: the holder has it
  try {
    cv.wait_for(adopted, 1ms);
    ADD_FAILURE() << "wait with another greenlet's lock returned";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("needs its mutex locked by the calling greenlet"), std::string::npos) << e.what();
  }
  adopted.release();
  holder.join();
  EXPECT_EQ(cv.waiting(), 0u);
}

TEST_F(WithHub, WaitingForANotificationNobodyCanSendIsLoopExit) {
  moss::mutex m;
  moss::condition_variable cv;
  std::unique_lock l(m);
  EXPECT_THROW(cv.wait(l), moss::loop_exit);
  EXPECT_TRUE(m.owned_by_current());  // relocked before the exception
}

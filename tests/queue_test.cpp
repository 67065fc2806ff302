// queue_test: order, blocking and fairness, bounds, timeouts, killed
// waiters, close, task_done/join, LIFO and priority orders.
#include <moss/moss.hpp>
#include <moss/queue.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
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

TEST_F(WithHub, QueueGivesItemsBackInTheOrderTheyWerePut) {
  moss::queue<int> q;
  EXPECT_TRUE(q.empty());
  for (int i = 0; i < 5; ++i) q.put(i);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_FALSE(q.full());  // unbounded
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get(), i);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST_F(WithHub, GettersWaitAndAreServedInTheOrderTheyCame) {
  moss::queue<std::string> q;
  std::vector<std::string> got(3);
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 3; ++i) ts.push_back(moss::spawn([&, i] { got[i] = q.get(); }));
  moss::yield();
  EXPECT_EQ(q.getters_waiting(), 3u);
  q.put("a");
  // Handed to the first getter already: a newcomer cannot take it.
  EXPECT_EQ(q.try_get(), std::nullopt);
  q.put("b");
  q.put("c");
  for (auto& t : ts) t.join();
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(WithHub, ABoundedQueueBlocksPuttersAndAdmitsThemInOrder) {
  moss::queue<int> q(2);
  q.put(0);
  q.put(1);
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.try_put(99));
  std::vector<moss::task<void>> ts;
  for (int i = 2; i < 5; ++i) ts.push_back(moss::spawn([&, i] { q.put(i); }));
  moss::yield();
  EXPECT_EQ(q.putters_waiting(), 3u);
  std::vector<int> got;
  for (int i = 0; i < 5; ++i) got.push_back(q.get());
  for (auto& t : ts) t.join();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(q.size(), 0u);
}

TEST_F(WithHub, AnItemHandedToAGetterThatHasNotRunStillCountsAgainstMaxsize) {
  moss::queue<int> q(1);
  auto g1 = moss::spawn([&] { return q.get(); });
  auto g2 = moss::spawn([&] { return q.get(); });
  moss::yield();
  EXPECT_TRUE(q.try_put(1));   // to g1, which has not run yet
  EXPECT_FALSE(q.try_put(2));  // so the queue is full
  EXPECT_TRUE(q.full());
  EXPECT_EQ(g1.get(), 1);
  EXPECT_TRUE(q.try_put(2));
  EXPECT_EQ(g2.get(), 2);
}

TEST_F(WithHub, ProducerAndConsumerThroughASmallBoundedQueueKeepEveryItemInOrder) {
  moss::queue<int> q(3);
  std::vector<int> got;
  auto consumer = moss::spawn([&] {
    for (int i = 0; i < 1000; ++i) got.push_back(q.get());
  });
  auto producer = moss::spawn([&] {
    for (int i = 0; i < 1000; ++i) {
      q.put(i);
      if (i % 7 == 0) moss::yield();
    }
  });
  producer.join();
  consumer.join();
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[i], i);
}

TEST_F(WithHub, QueueTimeoutsGiveUpAndDeadlinesAlreadyPassedReturnAtOnce) {
  moss::queue<int> q(1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q.get(0ms), std::nullopt);
  EXPECT_EQ(q.get(-1s), std::nullopt);
  EXPECT_EQ(q.get(2ms), std::nullopt);
  EXPECT_TRUE(q.put(1, 0ms));  // room now: no waiting needed
  EXPECT_FALSE(q.put(2, 0ms));
  EXPECT_FALSE(q.put(2, 2ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(q.getters_waiting(), 0u);
  EXPECT_EQ(q.putters_waiting(), 0u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.get(0ms), 1);
}

TEST_F(WithHub, QueueTimedCallsSucceedWhenTheOtherSideComesInTime) {
  moss::queue<int> q(1);
  auto other = moss::spawn([&] {
    moss::sleep(5ms);
    q.put(7);
    moss::sleep(5ms);
    q.get();
  });
  EXPECT_EQ(q.get(5s), 7);
  q.put(8);
  EXPECT_TRUE(q.put(9, 5s));
  other.join();
  EXPECT_EQ(q.get(), 9);
}

TEST_F(WithHub, AnItemHandedToAGetterKilledBeforeItRanGoesToTheNextGetter) {
  moss::queue<int> q;
  auto a = moss::spawn([&] { return q.get(); });
  auto b = moss::spawn([&] { return q.get(); });
  moss::yield();
  q.put(1);  // handed to a
  a.kill();  // before a runs
  EXPECT_EQ(b.get(), 1);
  EXPECT_TRUE(a.killed());
}

TEST_F(WithHub, AnItemHandedToAGetterKilledBeforeItRanGoesBackToTheFront) {
  moss::queue<int> q;
  auto a = moss::spawn([&] { return q.get(); });
  moss::yield();
  q.put(1);  // handed to a
  q.put(2);
  a.kill();
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);
}

TEST_F(WithHub, AKilledPutterDoesNotAddItsItem) {
  moss::queue<int> q(1);
  q.put(0);
  auto a = moss::spawn([&] { q.put(1); });
  auto b = moss::spawn([&] { q.put(2); });
  moss::yield();
  a.kill();
  EXPECT_EQ(q.putters_waiting(), 1u);
  EXPECT_EQ(q.get(), 0);
  EXPECT_EQ(q.get(), 2);
  b.join();
  EXPECT_TRUE(q.empty());
}

TEST_F(WithHub, PutToAClosedQueueIsAnError) {
  moss::queue<int> q;
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_EQ(message_of([&] { q.put(1); }), "moss: put to a closed queue");
  EXPECT_THROW(q.try_put(1), moss::error);
  EXPECT_THROW(q.put(1, 1s), moss::error);
}

TEST_F(WithHub, AClosedQueueStillGivesWhatItHoldsThenThrowsQueueClosed) {
  moss::queue<int> q;
  q.put(1);
  q.put(2);
  q.close();
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(1s), 2);
  EXPECT_THROW(q.get(), moss::queue_closed);
  EXPECT_THROW(q.get(1s), moss::queue_closed);
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST_F(WithHub, ClosingWakesBlockedGettersAndPutters) {
  moss::queue<int> empty;
  moss::queue<int> full(1);
  full.put(0);
  auto getter = moss::spawn([&] { return empty.get(); });
  auto putter = moss::spawn([&] { full.put(1); });
  moss::yield();
  empty.close();
  full.close();
  EXPECT_THROW(getter.get(), moss::queue_closed);
  EXPECT_EQ(message_of([&] { putter.get(); }), "moss: put to a closed queue");
  EXPECT_EQ(full.size(), 1u);
}

TEST_F(WithHub, JoinWaitsUntilEveryItemIsMarkedDone) {
  moss::queue<int> q;
  std::vector<int> processed;
  auto worker = moss::spawn([&] {
    for (;;) {
      int v = q.get();
      moss::sleep(1ms);
      processed.push_back(v);
      q.task_done();
    }
  });
  for (int i = 0; i < 4; ++i) q.put(i);
  EXPECT_EQ(q.unfinished_tasks(), 4u);
  EXPECT_FALSE(q.join(0ms));
  q.join();
  EXPECT_EQ(processed, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_TRUE(q.join(0ms));
  worker.kill();
}

TEST_F(WithHub, JoinWithTimeoutGivesUp) {
  moss::queue<int> q;
  q.put(1);
  auto keep = moss::spawn([] { moss::sleep(1s); });  // keeps the hub from loop_exit
  EXPECT_FALSE(q.join(2ms));
  keep.kill();
}

TEST_F(WithHub, TaskDoneCalledTooOftenIsAnError) {
  moss::queue<int> q;
  q.put(1);
  q.get();
  q.task_done();
  EXPECT_EQ(message_of([&] { q.task_done(); }), "moss: queue::task_done() called more times than items were put");
}

TEST_F(WithHub, GetFromAQueueNobodyWillFillIsLoopExit) {
  moss::queue<int> q;
  EXPECT_THROW(q.get(), moss::loop_exit);
  EXPECT_EQ(q.getters_waiting(), 0u);
}

TEST_F(WithHub, LifoQueueGivesTheNewestFirst) {
  moss::lifo_queue<int> q;
  for (int i = 0; i < 4; ++i) q.put(i);
  std::vector<int> got;
  while (auto v = q.try_get()) got.push_back(*v);
  EXPECT_EQ(got, (std::vector<int>{3, 2, 1, 0}));
}

TEST_F(WithHub, PriorityQueueGivesTheSmallestFirstOrTheLargestWithGreater) {
  moss::priority_queue<int> low;
  moss::priority_queue<int, std::greater<int>> high;
  for (int v : {5, 1, 4, 2, 3}) {
    low.put(v);
    high.put(v);
  }
  std::vector<int> a;
  std::vector<int> b;
  for (int i = 0; i < 5; ++i) {
    a.push_back(low.get());
    b.push_back(high.get());
  }
  EXPECT_EQ(a, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(b, (std::vector<int>{5, 4, 3, 2, 1}));
}

TEST_F(WithHub, BoundedPriorityQueueWaitsForRoomLikeAnyOther) {
  moss::priority_queue<int> q(2);
  q.put(9);
  q.put(8);
  auto putter = moss::spawn([&] { q.put(1); });
  moss::yield();
  EXPECT_EQ(q.putters_waiting(), 1u);
  EXPECT_EQ(q.get(), 8);  // room now: 1 is admitted
  putter.join();
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 9);
}

TEST_F(WithHub, QueuesCarryMoveOnlyItems) {
  moss::queue<std::unique_ptr<int>> q(1);
  auto consumer = moss::spawn([&] { return *q.get() + *q.get(); });
  q.put(std::make_unique<int>(20));
  q.put(std::make_unique<int>(22));
  EXPECT_EQ(consumer.get(), 42);
}

// wait_test: joinall, wait with each return_when, as_completed, gather,
// gather_settled and killall; the seeds "wait() with each return_when",
// "gather of ten", "as_completed printing in completion order" and gevent's
// spawn/joinall/value.
#include <moss/moss.hpp>
#include <moss/timeout.hpp>
#include <moss/wait.hpp>

#include "leak_check.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {

// A task returning v after v * unit (the seeds' `count(m)` scaled down).
moss::task<int> after(int v, std::chrono::milliseconds unit = 5ms) {
  return moss::spawn([v, unit] {
    moss::sleep(v * unit);
    return v;
  });
}

std::vector<int> values(const std::vector<moss::task<int>>& ts) {
  std::vector<int> r;
  for (auto& t : ts) r.push_back(t.get());
  return r;
}

}  // namespace

// Seed (gevent): g1 = spawn(func, 2, 3); g2 = spawn(func2); joinall([g1, g2]);
// print(g1.value).
TEST_F(WithHub, GeventSpawnJoinallValue) {
  auto g1 = moss::spawn([](int x, int y) {
    moss::sleep(2ms);
    return x + y;
  }, 2, 3);
  auto g2 = moss::spawn([] { return std::string("func2"); });
  auto finished = moss::joinall({g1, g2});
  EXPECT_EQ(finished.size(), 2u);
  EXPECT_TRUE(g1.ready());
  EXPECT_TRUE(g2.ready());
  EXPECT_EQ(g1.get(), 5);
  EXPECT_EQ(g2.get(), "func2");
}

TEST_F(WithHub, JoinallReturnsTasksInCompletionOrder) {
  std::vector<moss::task<int>> ts{after(3), after(1), after(2)};
  auto finished = moss::joinall(ts);
  EXPECT_EQ(values(finished), (std::vector<int>{1, 2, 3}));
}

TEST_F(WithHub, JoinallWithATimeoutReturnsOnlyThoseThatFinishedInTime) {
  std::vector<moss::task<int>> ts{after(1, 1ms), after(400, 1ms)};
  auto t0 = std::chrono::steady_clock::now();
  auto finished = moss::joinall(ts, 50ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].get(), 1);
  EXPECT_FALSE(ts[1].ready());  // not cancelled
  ts[1].kill();
}

TEST_F(WithHub, JoinallWithRaiseErrorRethrowsTheFirstFailureAtOnce) {
  testing::internal::CaptureStderr();
  auto slow = after(400, 1ms);
  auto bad = moss::spawn([]() -> int {
    moss::sleep(2ms);
    throw std::runtime_error("bad one");
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(moss::joinall({slow, bad}, true), std::runtime_error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_FALSE(slow.ready());
  // Without raise_error the failure is just a finished task.
  EXPECT_EQ(moss::joinall({bad}).size(), 1u);
  testing::internal::GetCapturedStderr();
  slow.kill();
}

TEST_F(WithHub, JoinallOfNothingReturnsAtOnce) {
  std::vector<moss::task<int>> none;
  EXPECT_TRUE(moss::joinall(none).empty());
}

TEST_F(WithHub, JoiningYourselfThroughJoinallIsAClearError) {
  moss::task<void> self;
  std::string message;
  auto other = after(1);
  auto t = moss::spawn([&] {
    moss::yield();
    try {
      moss::joinall({self, other});
    } catch (const moss::error& e) {
      message = e.what();
    }
  });
  self = t;
  t.join();
  EXPECT_NE(message.find("moss::joinall: task \"" + t.name() + "\" cannot wait for itself"), std::string::npos)
      << message;
  self = {};
  other.join();
}

TEST_F(WithHub, EmptyHandlesAreAClearError) {
  std::vector<moss::task<int>> ts{after(1), moss::task<int>{}};
  try {
    moss::joinall(ts);
    ADD_FAILURE() << "no error";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("empty task handle"), std::string::npos) << e.what();
  }
  ts[0].join();
}

// Seed (asyncio): done, pending = await asyncio.wait(tasks, return_when=...)
TEST_F(WithHub, WaitFirstCompletedReturnsAsSoonAsOneFinishesAndCancelsNothing) {
  std::vector<moss::task<int>> ts{after(40), after(1), after(40)};
  auto [done, pending] = moss::wait(ts, moss::return_when::first_completed);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].get(), 1);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_TRUE(pending[0] == ts[0]);
  EXPECT_TRUE(pending[1] == ts[2]);
  for (auto& t : pending) EXPECT_FALSE(t.ready());
  for (auto& t : pending) EXPECT_EQ(t.get() % 40, 0);  // they were left running
}

TEST_F(WithHub, WaitFirstExceptionReturnsAtTheFirstFailure) {
  testing::internal::CaptureStderr();
  auto ok = after(1);
  auto bad = moss::spawn([]() -> int {
    moss::sleep(10ms);
    throw std::runtime_error("x");
  });
  auto slow = after(100);
  auto [done, pending] = moss::wait(std::vector{ok, bad, slow}, moss::return_when::first_exception);
  testing::internal::GetCapturedStderr();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0] == ok);
  EXPECT_TRUE(done[1] == bad);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(pending[0] == slow);
  slow.kill();
}

TEST_F(WithHub, WaitReturnsAtOnceWhenTheConditionHeldBeforeTheCall) {
  testing::internal::CaptureStderr();
  auto bad = moss::spawn([]() -> int { throw std::runtime_error("already"); });
  auto ok = after(0);
  bad.join();
  ok.join();
  auto slow = after(400, 1ms);
  auto t0 = std::chrono::steady_clock::now();
  auto [done, pending] = moss::wait(std::vector{slow, ok, bad}, moss::return_when::first_exception);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(done.size(), 2u);  // every finished task is reported, not only the first
  EXPECT_EQ(pending.size(), 1u);
  auto r = moss::wait(std::vector{slow, ok}, moss::return_when::first_completed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(r.done.size(), 1u);
  testing::internal::GetCapturedStderr();
  slow.kill();
  moss::yield();  // slow never started: its ready-queue entry goes at the hub's next turn
}

TEST_F(WithHub, WaitFirstExceptionWithoutFailuresWaitsForAll) {
  std::vector<moss::task<int>> ts{after(2), after(1)};
  auto [done, pending] = moss::wait(ts, moss::return_when::first_exception);
  EXPECT_EQ(done.size(), 2u);
  EXPECT_TRUE(pending.empty());
}

TEST_F(WithHub, AKillIsNotAnExceptionForFirstException) {
  auto victim = after(400, 1ms);
  auto ok = after(10);
  auto killer = moss::spawn([&] { victim.kill(); });
  auto [done, pending] = moss::wait(std::vector{victim, ok}, moss::return_when::first_exception);
  EXPECT_EQ(done.size(), 2u);
  EXPECT_TRUE(victim.cancelled());
  killer.join();
}

TEST_F(WithHub, WaitAllCompletedIsTheDefault) {
  std::vector<moss::task<int>> ts;
  for (int i = 0; i < 3; ++i) ts.push_back(after(i));
  auto [done, pending] = moss::wait(ts);
  EXPECT_EQ(values(done), (std::vector<int>{0, 1, 2}));  // input order
  EXPECT_TRUE(pending.empty());
}

TEST_F(WithHub, WaitWithATimeoutReturnsWhatIsDoneAndLeavesTheRestRunning) {
  std::vector<moss::task<int>> ts{after(1, 1ms), after(400, 1ms)};
  auto t0 = std::chrono::steady_clock::now();
  auto [done, pending] = moss::wait(ts, 40ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
  EXPECT_EQ(done.size(), 1u);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_FALSE(pending[0].ready());
  pending[0].kill();
}

TEST_F(WithHub, WaitOnAnEmptySetIsAClearError) {
  std::vector<moss::task<int>> none;
  try {
    moss::wait(none, moss::return_when::first_completed);
    ADD_FAILURE() << "no error";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("moss::wait: the set of tasks is empty"), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, WaitTakesABracedListOfTasksOfDifferentTypes) {
  auto a = after(1);
  auto b = moss::spawn([] { return std::string("b"); });
  auto c = moss::spawn([] { moss::sleep(400ms); });
  auto [done, pending] = moss::wait({a, b, c}, moss::return_when::all_completed, 30ms);
  EXPECT_EQ(done.size(), 2u);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(pending[0] == c);
  c.kill();
}

// Seed (asyncio): for task in as_completed(tasks): print(await task)
TEST_F(WithHub, AsCompletedYieldsTasksInCompletionOrder) {
  std::vector<moss::task<int>> ts;
  for (int v : {4, 1, 3, 0, 2}) ts.push_back(after(v, 4ms));
  std::vector<int> printed;
  for (const auto& t : moss::as_completed(ts)) printed.push_back(t.get());
  EXPECT_EQ(printed, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(WithHub, AsCompletedYieldsAlreadyFinishedTasksFirst) {
  auto late = after(5);
  auto early = after(0);
  early.join();
  std::vector<int> order;
  for (const auto& t : moss::as_completed(std::vector{late, early})) order.push_back(t.get());
  EXPECT_EQ(order, (std::vector<int>{0, 5}));
}

TEST_F(WithHub, AsCompletedThrowsTimeoutErrorFromTheIncrementAtTheDeadline) {
  std::vector<moss::task<int>> ts{after(1, 1ms), after(400, 1ms)};
  std::vector<int> got;
  auto t0 = std::chrono::steady_clock::now();
  auto range = moss::as_completed(ts, 40ms);
  auto it = range.begin();
  ASSERT_FALSE(it == range.end());
  got.push_back(it->get());
  try {
    ++it;
    ADD_FAILURE() << "no timeout";
  } catch (const moss::timeout_error& e) {
    EXPECT_EQ(e.source(), nullptr);
    EXPECT_NE(std::string(e.what()).find("1 task still running"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_EQ(got, (std::vector<int>{1}));
  EXPECT_FALSE(ts[1].ready());
  ts[1].kill();
}

TEST_F(WithHub, AsCompletedOfNothingIsAnEmptyRange) {
  std::vector<moss::task<int>> none;
  int n = 0;
  for (const auto& t : moss::as_completed(none)) {
    (void)t;
    ++n;
  }
  EXPECT_EQ(n, 0);
}

TEST_F(WithHub, LeavingAnAsCompletedLoopEarlyLeavesTheRestRunning) {
  std::vector<moss::task<int>> ts{after(1), after(3), after(5)};
  for (const auto& t : moss::as_completed(ts)) {
    EXPECT_EQ(t.get(), 1);
    break;
  }
  EXPECT_FALSE(ts[2].ready());
  EXPECT_EQ(values(ts), (std::vector<int>{1, 3, 5}));  // and they still finish
}

// Seed (asyncio): print(await asyncio.gather(*[count(i) for i in range(10)]))
TEST_F(WithHub, GatherOfTenReturnsTheValuesInInputOrderConcurrently) {
  std::vector<moss::task<int>> ts;
  for (int i = 0; i < 10; ++i) ts.push_back(moss::spawn([](int m) {
    moss::sleep(50ms);
    return m;
  }, i));
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> r = moss::gather(ts);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_LT(took, 400ms);  // ten 50 ms sleeps at once, not one after another (500 ms)
}

TEST_F(WithHub, GatherOfSeparateTasksReturnsATupleWithMonostateForVoid) {
  auto a = after(2);
  auto b = moss::spawn([] { return std::string("b"); });
  auto c = moss::spawn([] { moss::sleep(1ms); });
  auto [x, y, z] = moss::gather(a, b, c);
  EXPECT_EQ(x, 2);
  EXPECT_EQ(y, "b");
  static_assert(std::is_same_v<decltype(z), std::monostate>);
}

TEST_F(WithHub, GatherRethrowsTheFirstFailureAtOnceAndLeavesTheOthersRunning) {
  testing::internal::CaptureStderr();
  auto slow = after(400, 1ms);
  auto bad = moss::spawn([]() -> int {
    moss::sleep(2ms);
    throw std::logic_error("gather me");
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(moss::gather(slow, bad), std::logic_error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(slow.ready());
  slow.kill();
}

// asyncio's wait_for(gather(...)): the gathered tasks are cancelled with it.
TEST_F(WithHub, AGatherInterruptedByATimeoutKillsItsChildren) {
  auto a = after(2000, 1ms);
  auto b = after(3000, 1ms);
  auto done = after(0);
  EXPECT_THROW(
      {
        moss::timeout limit(20ms);
        moss::gather(a, b, done);
      },
      moss::timeout_error);
  EXPECT_TRUE(a.killed());  // already unwound when gather's exception arrives
  EXPECT_TRUE(b.killed());
  EXPECT_TRUE(done.successful());
}

TEST_F(WithHub, KillingATaskInGatherSettledKillsWhatItGathers) {
  std::vector<moss::task<int>> children{after(2000, 1ms), after(3000, 1ms)};
  auto outer = moss::spawn([&] { moss::gather_settled(children); });
  moss::sleep(5ms);
  outer.kill();
  EXPECT_TRUE(children[0].killed());
  EXPECT_TRUE(children[1].killed());
}

TEST_F(WithHub, WithTimeoutAroundGatherCancelsTheGatheredTasks) {
  std::vector<moss::task<int>> children{after(2000, 1ms), after(3000, 1ms)};
  EXPECT_THROW(moss::with_timeout(20ms, [&] { return moss::gather(children); }), moss::timeout_error);
  EXPECT_TRUE(children[0].killed());
  EXPECT_TRUE(children[1].killed());
}

TEST_F(WithHub, GatherOfAnEmptyRangeIsAnEmptyVector) {
  std::vector<moss::task<int>> none;
  EXPECT_TRUE(moss::gather(none).empty());
}

TEST_F(WithHub, GatherSettledReturnsValuesAndExceptionsWithoutThrowing) {
  testing::internal::CaptureStderr();
  auto good = after(3);
  auto bad = moss::spawn([]() -> int { throw std::runtime_error("settled bad"); });
  auto v = moss::spawn([] {});
  auto [a, b, c] = moss::gather_settled(good, bad, v);
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.value(), 3);
  EXPECT_FALSE(b.ok());
  EXPECT_THROW(b.value(), std::runtime_error);
  EXPECT_TRUE(c.ok());

  std::vector<moss::task<int>> ts{good, bad};
  auto r = moss::gather_settled(ts);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].ok());
  EXPECT_NE(r[1].error(), nullptr);
}

TEST_F(WithHub, GatherSettledWaitsForEveryTaskEvenAfterAFailure) {
  testing::internal::CaptureStderr();
  auto bad = moss::spawn([]() -> int { throw std::runtime_error("early"); });
  auto slow = after(20);
  auto r = moss::gather_settled(std::vector{bad, slow});
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(slow.ready());
  EXPECT_EQ(r[1].value(), 20);
}

TEST_F(WithHub, KillallKillsEveryTaskAndWaitsForThemToUnwind) {
  int unwound = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 5; ++i) ts.push_back(moss::spawn([&] {
    guard g{&unwound};
    moss::sleep(10s);
  }));
  moss::yield();
  moss::killall(ts);
  EXPECT_EQ(unwound, 5);
  for (auto& t : ts) EXPECT_TRUE(t.cancelled());
}

TEST_F(WithHub, KillallOfAllTasksFromATaskKillsItselfLast) {
  auto a = moss::spawn([] { moss::sleep(10s); });
  bool a_done_before_self = false;
  moss::task<void> self;
  auto killer = moss::spawn([&] {
    moss::yield();
    try {
      moss::killall(moss::all_tasks());
    } catch (...) {
      a_done_before_self = a.ready();
      throw;
    }
  });
  self = killer;
  killer.join();
  EXPECT_TRUE(a_done_before_self);
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(killer.cancelled());
  self = {};
}

TEST_F(WithHub, WaitingForAHundredThousandTasksTakesLinearTime) {
  constexpr int n = 100'000;
  std::vector<moss::task<int>> ts;
  ts.reserve(n);
  for (int i = 0; i < n; ++i) ts.push_back(moss::spawn([](int v) { return v; }, i));
  moss::yield();  // they all run and finish
  auto t0 = std::chrono::steady_clock::now();
  auto r = moss::gather(ts);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(r.back(), n - 1);
  // Linear is a few ms; growing the completion list one slot at a time
  // (quadratic) takes seconds.
  EXPECT_LT(took, 1500ms);
}

// ---- wait and as_completed over events and async_results ----

TEST_F(WithHub, WaitFirstCompletedOverEventsReturnsTheOneSet) {
  moss::event a, b, c;
  auto setter = moss::spawn([&] {
    moss::sleep(10ms);
    b.set();
  });
  auto [done, pending] = moss::wait({&a, &b, &c}, moss::return_when::first_completed);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0], &b);
  EXPECT_EQ(pending, (std::vector<moss::event*>{&a, &c}));
  EXPECT_EQ(a.waiting(), 0u);  // nothing is left watching the others
  EXPECT_EQ(c.waiting(), 0u);
  setter.join();
}

TEST_F(WithHub, WaitAllCompletedOverEventsWaitsForEveryOne) {
  moss::event a, b;
  a.set();
  auto setter = moss::spawn([&] {
    moss::sleep(10ms);
    b.set();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = moss::wait({&a, &b});
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 10ms);
  EXPECT_EQ(r.done.size(), 2u);
  EXPECT_TRUE(r.pending.empty());
  setter.join();
}

TEST_F(WithHub, WaitOverEventsWithATimeoutLeavesThemPending) {
  moss::event a, b;
  auto r = moss::wait({&a, &b}, moss::return_when::first_completed, 20ms);
  EXPECT_TRUE(r.done.empty());
  EXPECT_EQ(r.pending.size(), 2u);
  EXPECT_EQ(a.waiting(), 0u);
  // An event destroyed right after the wait is safe: nothing watches it.
  {
    moss::event gone;
    (void)moss::wait({&gone}, 1ms);
  }
  moss::yield();
}

TEST_F(WithHub, WaitOverAnEventAlreadySetReturnsAtOnceWithoutWatchers) {
  moss::event a, b;
  a.set();
  std::size_t before = moss::detail::live_greenlets();
  auto r = moss::wait({&a, &b}, moss::return_when::first_completed);
  EXPECT_EQ(moss::detail::live_greenlets(), before);
  EXPECT_EQ(r.done, (std::vector<moss::event*>{&a}));
}

TEST_F(WithHub, WaitFirstExceptionOverAsyncResultsStopsAtAFailure) {
  moss::async_result<int> ok, bad, never;
  auto setter = moss::spawn([&] {
    moss::sleep(5ms);
    ok.set(1);
    moss::sleep(5ms);
    bad.set_exception(std::make_exception_ptr(std::runtime_error("no")));
  });
  std::vector<moss::async_result<int>> rs{ok, bad, never};
  auto [done, pending] = moss::wait(rs, moss::return_when::first_exception);
  EXPECT_EQ(done, (std::vector<moss::async_result<int>>{ok, bad}));
  EXPECT_EQ(pending, (std::vector<moss::async_result<int>>{never}));
  setter.join();
}

TEST_F(WithHub, WaitOverAsyncResultsSetByAnotherThread) {
  moss::async_result<int> r1, r2;
  std::thread t([r1, r2] {
    std::this_thread::sleep_for(10ms);
    r2.set(2);
    std::this_thread::sleep_for(10ms);
    r1.set(1);
  });
  std::vector<int> order;
  for (const moss::async_result<int>& r : moss::as_completed(std::vector{r1, r2})) order.push_back(r.get());
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  t.join();
}

TEST_F(WithHub, AsCompletedOverEventsYieldsThemInTheOrderSet) {
  moss::event a, b, c;
  c.set();
  auto setter = moss::spawn([&] {
    moss::sleep(10ms);
    a.set();
    moss::sleep(10ms);
    b.set();
  });
  std::vector<moss::event*> order;
  for (moss::event* e : moss::as_completed({&a, &b, &c})) order.push_back(e);
  EXPECT_EQ(order, (std::vector<moss::event*>{&c, &a, &b}));
  setter.join();
}

TEST_F(WithHub, AsCompletedOverEventsTimesOutAndLeavingEarlyStopsWatching) {
  moss::event a, b;
  std::vector<moss::event*> evs{&a, &b};
  EXPECT_THROW(
      {
        for (moss::event* e : moss::as_completed(evs, 20ms)) (void)e;
      },
      moss::timeout_error);
  b.set();
  for (moss::event* e : moss::as_completed(evs)) {
    EXPECT_EQ(e, &b);
    break;
  }
  EXPECT_EQ(a.waiting(), 0u);
  moss::yield();  // the killed watcher unwinds
}

TEST_F(WithHub, WaitOverEventsNobodyCanSetIsLoopExitNotAHang) {
  moss::event a;
  EXPECT_THROW((void)moss::wait({&a}), moss::loop_exit);
  moss::yield();  // the killed watcher unwinds
}

TEST_F(WithHub, KillingAWaitOverEventsStopsItsWatchers) {
  moss::event a, b;
  auto waiter = moss::spawn([&] { (void)moss::wait({&a, &b}); });
  moss::sleep(5ms);
  EXPECT_EQ(a.waiting(), 1u);
  waiter.kill();
  EXPECT_EQ(a.waiting(), 0u);
  EXPECT_EQ(b.waiting(), 0u);
  moss::yield();
}

TEST_F(WithHub, WaitOverNoEventsOrANullOneIsAClearError) {
  EXPECT_THROW((void)moss::wait(std::vector<moss::event*>{}), moss::error);
  moss::event a;
  EXPECT_THROW((void)moss::wait({&a, static_cast<moss::event*>(nullptr)}), moss::error);
}

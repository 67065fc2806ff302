// async_result_test: set/get across greenlets and threads, timeouts, done
// callbacks, and misuse.
#include <moss/async_result.hpp>
#include <moss/moss.hpp>

#include "core/hub.hpp"
#include "leak_check.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {
// The cross-thread tests wait with get(5s): a lost wake-up would still see
// the value at the deadline, so they also check that the wait ended early.
struct stopwatch {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration elapsed() const { return std::chrono::steady_clock::now() - t0; }
};
}  // namespace

TEST_F(WithHub, AsyncResultGetReturnsTheValueSet) {
  moss::async_result<std::string> r;
  EXPECT_FALSE(r.ready());
  r.set("hello");
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.exception(), nullptr);
  EXPECT_EQ(r.get(), "hello");
  EXPECT_EQ(r.get(1ms), "hello");
}

TEST_F(WithHub, AsyncResultGetRethrowsTheExceptionSetEveryTime) {
  moss::async_result<int> r;
  r.set_exception(std::make_exception_ptr(std::runtime_error("nope")));
  EXPECT_TRUE(r.ready());
  EXPECT_FALSE(r.successful());
  EXPECT_NE(r.exception(), nullptr);
  EXPECT_THROW(r.get(), std::runtime_error);
  EXPECT_THROW(r.get(), std::runtime_error);
  r.wait();  // wait() does not rethrow
  EXPECT_TRUE(r.wait(0ms));
}

TEST_F(WithHub, VoidAsyncResultSetsAndGets) {
  moss::async_result<> r;
  auto t = moss::spawn([r] {
    moss::sleep(2ms);
    r.set();
  });
  r.get();
  EXPECT_TRUE(r.successful());
  t.join();
}

TEST_F(WithHub, CopiesShareOneResult) {
  moss::async_result<int> a;
  moss::async_result<int> b = a;
  b.set(3);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.get(), 3);
}

TEST_F(WithHub, GetWaitsCooperativelyWhileOtherTasksRun) {
  moss::async_result<int> r;
  int ticks = 0;
  auto ticker = moss::spawn([&] {
    for (int i = 0; i < 5; ++i) {
      ++ticks;
      moss::sleep(1ms);
    }
    r.set(ticks);
  });
  EXPECT_EQ(r.get(), 5);
  EXPECT_EQ(ticks, 5);
  ticker.join();
}

TEST_F(WithHub, EveryWaiterIsWokenInTheOrderItWaited) {
  moss::async_result<int> r;
  std::vector<int> order;
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i)
    ts.push_back(moss::spawn([&, i] {
      EXPECT_EQ(r.get(), 7);
      order.push_back(i);
    }));
  moss::yield();  // all four wait now
  EXPECT_TRUE(order.empty());
  r.set(7);
  for (auto& t : ts) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(WithHub, WaitWithTimeoutReturnsFalseUntilSet) {
  moss::async_result<int> r;
  auto setter = moss::spawn([r] {
    moss::sleep(30ms);
    r.set(1);
  });
  EXPECT_FALSE(r.wait(1ms));
  EXPECT_TRUE(r.wait(5s));
  setter.join();
}

TEST_F(WithHub, AZeroOrNegativeTimeoutOnAPendingResultReturnsAtOnce) {
  moss::async_result<int> r;
  auto keep = r;  // someone else could still set it
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(r.wait(0ms));
  EXPECT_FALSE(r.wait(-5ms));
  EXPECT_THROW(r.get(0ms), moss::timeout_error);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(WithHub, GetWithTimeoutThrowsTimeoutError) {
  moss::async_result<int> r;
  auto setter = moss::spawn([r] {
    moss::sleep(50ms);
    r.set(1);
  });
  try {
    r.get(1ms);
    ADD_FAILURE() << "get(1ms) returned";
  } catch (const moss::timeout_error& e) {
    EXPECT_NE(std::string(e.what()).find("async_result"), std::string::npos) << e.what();
  }
  EXPECT_EQ(r.get(5s), 1);
  setter.join();
}

TEST_F(WithHub, SettingTwiceIsAnError) {
  moss::async_result<int> r;
  r.set(1);
  EXPECT_THROW(r.set(2), moss::error);
  EXPECT_THROW(r.set_exception(std::make_exception_ptr(std::runtime_error("x"))), moss::error);
  EXPECT_EQ(r.get(), 1);
}

TEST_F(WithHub, SetExceptionNeedsAnException) {
  moss::async_result<int> r;
  try {
    r.set_exception(nullptr);
    ADD_FAILURE() << "set_exception(nullptr) returned";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("null exception_ptr"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(r.ready());
}

TEST_F(WithHub, WaitingOnAResultNobodyElseHoldsIsLoopExit) {
  moss::async_result<int> r;
  EXPECT_THROW(r.get(), moss::loop_exit);
}

TEST_F(WithHub, KillingAWaiterLeavesTheOthersWaiting) {
  moss::async_result<int> r;
  int got = 0;
  auto a = moss::spawn([&] { got += r.get(); });
  auto b = moss::spawn([&] { got += r.get(); });
  moss::yield();
  a.kill();
  EXPECT_TRUE(a.killed());
  r.set(5);
  b.join();
  EXPECT_EQ(got, 5);
}

TEST_F(WithHub, DoneCallbacksRunInATaskAfterSetNotInsideIt) {
  moss::async_result<int> r;
  std::vector<int> seen;
  r.add_done_callback([&](const moss::async_result<int>& x) { seen.push_back(x.get()); });
  r.add_done_callback([&](const moss::async_result<int>& x) { seen.push_back(x.get() * 10); });
  r.set(4);
  EXPECT_TRUE(seen.empty());
  moss::sleep(1ms);
  EXPECT_EQ(seen, (std::vector<int>{4, 40}));
}

TEST_F(WithHub, ADoneCallbackAddedAfterCompletionRunsSoon) {
  moss::async_result<int> r;
  r.set_exception(std::make_exception_ptr(std::logic_error("bad")));
  bool failed = false;
  r.add_done_callback([&](const moss::async_result<int>& x) { failed = !x.successful(); });
  EXPECT_FALSE(failed);
  moss::sleep(1ms);
  EXPECT_TRUE(failed);
}

TEST_F(WithHub, ADoneCallbackMayOwnMoveOnlyState) {
  moss::async_result<int> r;
  auto p = std::make_unique<int>(2);
  int seen = 0;
  r.add_done_callback([&seen, p = std::move(p)](const moss::async_result<int>& x) { seen = x.get() * *p; });
  r.set(21);
  moss::sleep(1ms);
  EXPECT_EQ(seen, 42);
}

TEST_F(WithHub, AsyncResultSetFromAnotherThreadWakesAWaitingTask) {
  moss::async_result<int> r;
  int ticks = 0;
  bool stop = false;
  auto ticker = moss::spawn([&] {
    while (!stop) {
      ++ticks;
      moss::sleep(1ms);
    }
  });
  stopwatch sw;
  auto waiter = moss::spawn([r] { return r.get(5s); });
  std::thread setter([r] {
    std::this_thread::sleep_for(20ms);
    r.set(99);
  });
  EXPECT_EQ(waiter.get(), 99);
  stop = true;
  ticker.join();
  setter.join();
  EXPECT_GT(ticks, 1);  // the hub kept running the ticker while waiter waited
  EXPECT_LT(sw.elapsed(), 2s);
}

TEST_F(WithHub, AsyncResultSetFromAnotherThreadWakesTheMainGreenletWithNothingElseToRun) {
  // Nothing else is runnable here: the hub must block in the poller (not
  // raise loop_exit) until the other thread's completion arrives.
  moss::async_result<std::string> r;
  std::thread setter([r] {
    std::this_thread::sleep_for(20ms);
    r.set("from afar");
  });
  stopwatch sw;
  EXPECT_EQ(r.get(), "from afar");  // no timeout: no timer keeps the hub up
  EXPECT_LT(sw.elapsed(), 2s);
  setter.join();
}

TEST_F(WithHub, ExceptionSetFromAnotherThreadIsRethrownInTheGreenlet) {
  moss::async_result<int> r;
  stopwatch sw;
  std::thread setter([r] {
    std::this_thread::sleep_for(10ms);
    r.set_exception(std::make_exception_ptr(std::runtime_error("far")));
  });
  EXPECT_THROW(r.get(5s), std::runtime_error);
  EXPECT_LT(sw.elapsed(), 2s);
  setter.join();
}

TEST_F(WithHub, GetFromAPlainThreadBlocksThatThreadUntilATaskSets) {
  moss::async_result<int> r;
  std::atomic<int> seen{0};
  stopwatch sw;
  std::thread getter([r, &seen] { seen = r.get(5s); });
  auto setter = moss::spawn([r] {
    moss::sleep(20ms);
    r.set(8);
  });
  setter.join();
  getter.join();
  EXPECT_EQ(seen, 8);
  EXPECT_LT(sw.elapsed(), 2s);
}

TEST_F(WithHub, WaitWithTimeoutOnAPlainThreadTimesOut) {
  moss::async_result<int> r;
  std::atomic<int> outcome{-1};
  std::thread getter([r, &outcome] {
    bool first = r.wait(5ms);
    bool second = r.wait(5s);
    outcome = (first ? 1 : 0) + (second ? 2 : 0);
  });
  moss::sleep(40ms);
  r.set(1);
  getter.join();
  EXPECT_EQ(outcome, 2);
}

TEST_F(WithHub, GetTimeoutOnAPlainThreadThrowsTimeoutError) {
  moss::async_result<int> r;
  bool timed_out = false;
  std::thread getter([r, &timed_out] {
    try {
      r.get(1ms);
    } catch (const moss::timeout_error&) {
      timed_out = true;
    }
  });
  getter.join();
  EXPECT_TRUE(timed_out);
}

TEST_F(WithHub, GreenletsOnTwoHubsAreWokenBySetFromAThirdThread) {
  moss::async_result<int> r;
  std::atomic<int> other_hub{0};
  std::atomic<bool> other_waiting{false};
  std::thread other([r, &other_hub, &other_waiting] {
    moss::run([&] {
      auto t = moss::spawn([&] {
        other_waiting = true;
        return r.get(5s);
      });
      other_hub = t.get();
    });
  });
  auto here = moss::spawn([r] { return r.get(5s); });
  moss::yield();
  while (!other_waiting) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(10ms);  // let it park (it passes either way)
  stopwatch sw;
  std::thread setter([r] { r.set(6); });
  EXPECT_EQ(here.get(), 6);
  setter.join();
  other.join();
  EXPECT_LT(sw.elapsed(), 2s);
  EXPECT_EQ(other_hub, 6);
}

TEST_F(WithHub, DoneCallbacksRunOnTheHubThatAddedThemWhenSetFromAnotherThread) {
  moss::async_result<int> r;
  std::thread::id ran_on;
  moss::async_result<> callback_done;
  r.add_done_callback([&, callback_done](const moss::async_result<int>&) {
    ran_on = std::this_thread::get_id();
    callback_done.set();
  });
  stopwatch sw;
  std::thread setter([r] { r.set(1); });
  bool ran = callback_done.wait(5s);
  setter.join();
  EXPECT_TRUE(ran);
  EXPECT_LT(sw.elapsed(), 2s);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_F(WithHub, ManyThreadsRaceToSetAndExactlyOneWins) {
  for (int round = 0; round < 50; ++round) {
    moss::async_result<int> r;
    std::atomic<int> wins{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([r, i, &wins] {
        try {
          r.set(i);
          ++wins;
        } catch (const moss::error&) {
        }
      });
    int v = r.get(5s);
    for (auto& t : ts) t.join();
    EXPECT_EQ(wins, 1);
    EXPECT_GE(v, 0);
    EXPECT_LT(v, 4);
  }
}

namespace {
// A timer callback runs on the hub greenlet, which must never wait.
struct get_on_hub final : moss::detail::timer {
  moss::async_result<int> r;
  std::string message;
  void fire() noexcept override {
    try {
      r.get();
    } catch (const moss::error& e) {
      message = e.what();
    }
  }
};
}  // namespace

TEST_F(WithHub, GetOnAPendingResultFromTheHubGreenletIsAClearError) {
  get_on_hub t;
  auto keep = t.r;
  moss::detail::hub_core::current().timers.add(t, moss::detail::clock::now());
  moss::sleep(5ms);
  EXPECT_NE(t.message.find("async_result::get() on a pending result was called on the hub greenlet"), std::string::npos)
      << t.message;
}

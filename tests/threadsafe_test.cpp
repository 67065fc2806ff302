// threadsafe_test: handing work to a hub from other threads —
// hub::call_threadsafe, spawn_threadsafe, stopped hubs, and the seed's loop
// running forever on a second thread.
#include <moss/async_result.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/moss.hpp>
#include <moss/threadsafe.hpp>

#include "core/hub.hpp"
#include "leak_check.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using moss::detail::deadline_after;
using moss_test::WithHub;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const moss::error& e) {
    return e.what();
  }
  return "(no moss::error)";
}

// A hub on its own thread whose thread has already exited.
moss::hub* stopped_hub() {
  moss::hub* h = nullptr;
  std::thread([&] { h = &moss::hub::current(); }).join();
  return h;
}

}  // namespace

TEST_F(WithHub, CallThreadsafeRunsTheFunctionAsATaskOnTheHubThread) {
  moss::hub& h = moss::hub::current();
  std::thread::id ran_on;
  bool in_task = false;
  auto w = std::make_shared<moss::detail::waiter>();  // outlives a failed wait
  std::thread producer([&] {
    h.call_threadsafe([&, w] {
      ran_on = std::this_thread::get_id();
      in_task = moss::detail::current_impl()->role_ == moss::detail::greenlet_impl::role::task;
      w->wake();
    });
  });
  bool woken = w->wait(deadline_after(10s));
  producer.join();
  ASSERT_TRUE(woken);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(in_task);
}

TEST_F(WithHub, CallThreadsafeWakesAHubAsleepInThePoller) {
  // The hub has nothing to do for 10 s; a post 50 ms in must end the sleep.
  moss::hub& h = moss::hub::current();
  auto w = std::make_shared<moss::detail::waiter>();
  auto t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    h.call_threadsafe([w] { w->wake(); });
  });
  bool woken = w->wait(deadline_after(10s));
  producer.join();
  EXPECT_TRUE(woken);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(WithHub, CallThreadsafeKeepsEachProducersOrderWithManyProducers) {
  static constexpr int producers = 4;
  static constexpr int per_producer = 500;
  moss::hub& h = moss::hub::current();
  auto seen = std::make_shared<std::vector<std::pair<int, int>>>();  // touched only on the hub thread
  auto w = std::make_shared<moss::detail::waiter>();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i)
        h.call_threadsafe([seen, w, p, i] {
          seen->emplace_back(p, i);
          if (seen->size() == producers * per_producer) w->wake();
        });
    });
  bool all_ran = w->wait(deadline_after(30s));  // the hub drains while they post
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all_ran);
  std::vector<int> next(producers, 0);
  for (auto [p, i] : *seen) {
    EXPECT_EQ(i, next[p]) << "producer " << p;
    next[p] = i + 1;
  }
}

TEST_F(WithHub, CallThreadsafeAcceptsAMoveOnlyFunction) {
  auto value = std::make_unique<int>(7);
  int got = 0;
  moss::event ran;
  moss::hub::current().call_threadsafe([v = std::move(value), &got, &ran] {
    got = *v;
    ran.set();
  });
  EXPECT_TRUE(ran.wait(10s));  // not a fixed sleep: under ASan a millisecond was not always enough
  EXPECT_EQ(got, 7);
}

TEST_F(WithHub, CallThreadsafeOntoAStoppedHubIsAnErrorAndDropsTheFunction) {
  moss::hub* h = stopped_hub();
  EXPECT_TRUE(h->stopped());
  EXPECT_FALSE(moss::hub::current().stopped());
  auto token = std::make_shared<int>(0);
  std::string what = message_of([&] { h->call_threadsafe([token] {}); });
  EXPECT_NE(what.find("call_threadsafe onto a stopped hub"), std::string::npos) << what;
  EXPECT_EQ(token.use_count(), 1) << "the rejected function was kept";
}

TEST_F(WithHub, FunctionsQueuedToAHubThatStopsAreDestroyedWithoutRunning) {
  auto token = std::make_shared<int>(0);
  std::atomic<bool> ran{false};
  std::thread([&] {
    // Queued to this thread's own hub, which never runs before the thread ends.
    moss::hub::current().call_threadsafe([token, &ran] { ran = true; });
  }).join();
  EXPECT_FALSE(ran);
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(WithHub, AnExceptionFromAPostedFunctionIsReportedLikeATasks) {
  testing::internal::CaptureStderr();
  bool ran = false;
  moss::hub::current().call_threadsafe([&ran] {
    ran = true;
    throw std::runtime_error("posted boom");
  });
  // The task cannot switch between ran = true and its end, so once this
  // greenlet sees ran, the failure has been reported.
  for (int i = 0; i < 10000 && !ran; ++i) moss::sleep(1ms);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("posted boom"), std::string::npos) << err;
}

TEST_F(WithHub, SpawnThreadsafeRunsATaskOnTheHubAndAPlainThreadGetsItsValue) {
  moss::hub& h = moss::hub::current();
  std::atomic<int> got{0};  // written by the client thread, polled here
  std::thread::id ran_on;
  std::thread client([&] {
    auto r = moss::spawn_threadsafe(h, [&](int x) {
      moss::sleep(1ms);  // a real task: it may wait
      ran_on = std::this_thread::get_id();
      return x * 2;
    }, 21);
    got = r.get();  // no hub on this thread: blocks it
  });
  // This greenlet waits on a timer meanwhile, so the hub runs the task.
  for (int i = 0; i < 1000 && got == 0; ++i) moss::sleep(5ms);
  client.join();
  EXPECT_EQ(got, 42);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_F(WithHub, SpawnThreadsafeResultCarriesTheTasksException) {
  auto r = moss::spawn_threadsafe(moss::hub::current(), [] { throw std::logic_error("remote boom"); });
  EXPECT_THROW(r.get(), std::logic_error);
}

TEST_F(WithHub, SpawnThreadsafeOntoAStoppedHubIsAnError) {
  moss::hub* h = stopped_hub();
  std::string what = message_of([&] { moss::spawn_threadsafe(*h, [] { return 1; }); });
  EXPECT_NE(what.find("spawn_threadsafe onto a stopped hub"), std::string::npos) << what;
}

TEST_F(WithHub, SpawnThreadsafeWorkLeftQueuedWhenTheHubStopsFailsItsResult) {
  std::promise<moss::hub*> hub_p;
  std::promise<void> release;
  std::thread owner([&] {
    hub_p.set_value(&moss::hub::current());
    release.get_future().wait();  // the hub never runs; the thread then ends
  });
  moss::hub& h = *hub_p.get_future().get();
  auto r = moss::spawn_threadsafe(h, [] { return 1; });
  release.set_value();
  owner.join();
  std::string what = message_of([&] { r.get(); });
  EXPECT_NE(what.find("stopped before running"), std::string::npos) << what;
}

// The seed: a loop runs forever on a second thread; the main thread feeds it
// blocking functions with call_threadsafe (they run one after another, in
// order) and tasks with spawn_threadsafe (they sleep concurrently), then
// stops it. Times are the seed's seconds as tens of milliseconds.
TEST_F(WithHub, ALoopRunningForeverOnASecondThreadTakesWorkFromTheMainThread) {
  std::promise<std::pair<moss::hub*, moss::event*>> loop_p;
  std::thread loop_thread([&loop_p] {
    moss::run([&] {
      // loop.run_forever(): work will come from the main thread, so the hub
      // must wait for it rather than report that nothing can wake it.
      moss::keepalive forever = moss::hub::current().keep_alive();
      moss::event stop;
      loop_p.set_value({&moss::hub::current(), &stop});
      stop.wait();  // until the main thread says stop; the hub serves work meanwhile
    });
  });
  auto [loop_hub, stop_event] = loop_p.get_future().get();
  moss::hub& loop = *loop_hub;
  moss::event* stop = stop_event;

  auto order = std::make_shared<std::vector<int>>();
  std::promise<void> both_ran;
  auto do_some_thing = [order](int x) {
    std::this_thread::sleep_for(x * 10ms);  // blocking, as in the seed
    order->push_back(x);
  };
  loop.call_threadsafe([=] { do_some_thing(3); });
  loop.call_threadsafe([=, &both_ran] {
    do_some_thing(5);
    both_ran.set_value();
  });
  both_ran.get_future().wait();
  EXPECT_EQ(*order, (std::vector<int>{3, 5}));

  auto t0 = std::chrono::steady_clock::now();
  auto a = moss::spawn_threadsafe(loop, [](int x) { moss::sleep(x * 60ms); return x; }, 3);
  auto b = moss::spawn_threadsafe(loop, [](int x) { moss::sleep(x * 60ms); return x; }, 5);
  EXPECT_EQ(a.get(), 3);  // this greenlet waits cooperatively on its own hub
  EXPECT_EQ(b.get(), 5);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 480ms) << "the two tasks did not sleep concurrently";

  auto unfinished = moss::spawn_threadsafe(loop, [] { moss::sleep(60s); });
  moss::sleep(10ms);
  loop.call_threadsafe([stop] { stop->set(); });
  loop_thread.join();
  EXPECT_TRUE(loop.stopped());
  EXPECT_THROW(unfinished.get(), moss::greenlet_exit) << "a task left running when the loop closed is killed";
  EXPECT_THROW(moss::spawn_threadsafe(loop, [] {}), moss::error);
}

namespace {
// probe: counts its own end, once, however many times it was moved.
struct probe {
  std::atomic<int>* gone;
  bool armed = true;
  explicit probe(std::atomic<int>* g) : gone(g) {}
  probe(probe&& o) noexcept : gone(o.gone), armed(std::exchange(o.armed, false)) {}
  ~probe() {
    if (armed) ++*gone;
  }
};
}  // namespace

TEST_F(WithHub, PostsRacingAHubsShutdownAreRunOrDestroyedExactlyOnce) {
  int raced = 0;  // rounds where some posts got in and later ones were refused
  // 20 rounds, and more (up to 200) until the race has happened at least
  // once: on a loaded machine a round can miss it by timing alone.
  for (int round = 0; round < 200 && (round < 20 || raced == 0); ++round) {
    std::promise<moss::hub*> hub_p;
    std::thread owner([&] {
      moss::run([&] {
        hub_p.set_value(&moss::hub::current());
        moss::sleep(2ms);  // serve posts for a moment, then end
      });
    });
    moss::hub* h = hub_p.get_future().get();
    std::atomic<int> accepted{0}, rejected{0}, ran{0}, gone{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < 3; ++p)
      producers.emplace_back([&] {
        for (int i = 0; i < 20000; ++i) {
          if (i % 16 == 0) std::this_thread::yield();  // do not bury the hub
          try {
            h->call_threadsafe([pr = probe(&gone), &ran] { ++ran; });
            ++accepted;
          } catch (const moss::error&) {
            ++rejected;
            return;
          }
        }
      });
    for (auto& t : producers) t.join();
    owner.join();
    EXPECT_EQ(gone, accepted + rejected) << "round " << round;
    EXPECT_LE(ran, accepted);
    EXPECT_TRUE(h->stopped());
    if (accepted > 0 && rejected > 0) ++raced;
  }
  EXPECT_GT(raced, 0) << "no round had posts racing the shutdown";
}

// A consumer waits on a queue that another thread fills through
// spawn_threadsafe, and that thread starts late.
TEST_F(WithHub, AKeepAliveLetsAConsumerWaitForAThreadThatStartsLate) {
  moss::queue<int> q;
  moss::hub& h = moss::hub::current();
  moss::keepalive alive = h.keep_alive();
  std::thread producer([&h, &q] {
    std::this_thread::sleep_for(100ms);
    auto r = moss::spawn_threadsafe(h, [&q] { q.put(42); });
    (void)r;
  });
  EXPECT_EQ(q.get(), 42);
  alive.reset();
  producer.join();
  moss::sleep(1ms);  // let the posted task finish
}

TEST_F(WithHub, WithoutAKeepAliveLoopExitNamesTheWaitAndTheWayOut) {
  moss::queue<int> q;
  std::string what = message_of([&] { q.get(); });
  EXPECT_NE(what.find("would block forever in queue get"), std::string::npos) << what;
  EXPECT_NE(what.find("moss::hub::keep_alive()"), std::string::npos) << what;
}

TEST_F(WithHub, AKeepAliveReleasedOnAnotherThreadEndsThePromise) {
  moss::event never;
  moss::keepalive alive = moss::hub::current().keep_alive();
  auto t0 = std::chrono::steady_clock::now();
  std::thread releaser([a = std::move(alive)]() mutable {
    std::this_thread::sleep_for(50ms);
    a.reset();
  });
  EXPECT_THROW(never.wait(), moss::loop_exit);  // once released, nothing can wake it
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  releaser.join();
}

TEST_F(WithHub, AKeepAliveMustBeTakenOnTheHubsThread) {
  moss::hub& h = moss::hub::current();
  std::string what;
  std::thread([&] { what = message_of([&] { auto k = h.keep_alive(); }); }).join();
  EXPECT_NE(what.find("hub's own thread"), std::string::npos) << what;
  what = message_of([] { auto k = stopped_hub()->keep_alive(); });
  EXPECT_NE(what.find("stopped"), std::string::npos) << what;
}

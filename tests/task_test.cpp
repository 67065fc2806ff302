// task_test: spawn, join, get, kill and the task's life cycle.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

TEST_F(WithHub, SpawnRunsTheFunctionWithItsArgumentsAndGetReturnsTheValue) {
  auto t = moss::spawn([](int a, std::string b) { return b + std::to_string(a); }, 7, std::string("x"));
  EXPECT_FALSE(t.ready());
  EXPECT_EQ(t.get(), "x7");
  EXPECT_TRUE(t.ready());
  EXPECT_TRUE(t.successful());
  EXPECT_EQ(t.exception(), nullptr);
}

TEST_F(WithHub, VoidTasksJoin) {
  int ran = 0;
  auto t = moss::spawn([&] { ++ran; });
  t.join();
  t.get();
  EXPECT_EQ(ran, 1);
}

TEST_F(WithHub, ArgumentsAreMovedIntoTheTask) {
  auto p = std::make_unique<int>(41);
  auto t = moss::spawn([](std::unique_ptr<int> q) { return *q + 1; }, std::move(p));
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(t.get(), 42);
}

TEST_F(WithHub, TasksDoNotStartUntilTheSpawnerWaits) {
  std::vector<int> order;
  auto t = moss::spawn([&] { order.push_back(2); });
  order.push_back(1);
  t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_F(WithHub, JoinWithTimeoutReturnsFalseWhileRunningAndTrueOnceDone) {
  auto t = moss::spawn([] { moss::sleep(50ms); });
  EXPECT_FALSE(t.join(1ms));
  EXPECT_FALSE(t.ready());
  EXPECT_TRUE(t.join(5s));
  EXPECT_TRUE(t.ready());
}

// The report on stderr comes only for a failure nobody retrieved
// (error_handler_test has the rest).
TEST_F(WithHub, AnExceptionIsStoredForGetAndNotReportedOnceRetrieved) {
  testing::internal::CaptureStderr();
  {
    auto t = moss::spawn(moss::spawn_options{.name = "failing"}, []() -> int { throw std::runtime_error("boom"); });
    t.join();
    EXPECT_TRUE(t.ready());
    EXPECT_FALSE(t.successful());
    EXPECT_NE(t.exception(), nullptr);
    EXPECT_THROW(t.get(), std::runtime_error);
    EXPECT_THROW(t.get(), std::runtime_error);  // every get() rethrows
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  testing::internal::CaptureStderr();
  { auto t = moss::spawn(moss::spawn_options{.name = "failing"}, []() -> int { throw std::runtime_error("boom"); }); t.join(); }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "moss: task \"failing\" failed: boom\n");
}

TEST_F(WithHub, TheHubKeepsRunningOthersAfterATaskFails) {
  testing::internal::CaptureStderr();
  auto bad = moss::spawn([] {
    moss::sleep(1ms);
    throw std::logic_error("bad");
  });
  auto good = moss::spawn([] {
    moss::sleep(10ms);
    return 5;
  });
  EXPECT_EQ(good.get(), 5);
  EXPECT_THROW(bad.get(), std::logic_error);
  testing::internal::GetCapturedStderr();
}

TEST_F(WithHub, KillUnwindsTheTaskStackRunningDestructors) {
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  int destroyed = 0;
  bool after_sleep = false;
  auto t = moss::spawn([&] {
    guard g{&destroyed};
    moss::sleep(10s);
    after_sleep = true;
  });
  moss::yield();  // let it start and park
  EXPECT_EQ(destroyed, 0);
  t.kill();
  EXPECT_EQ(destroyed, 1);
  EXPECT_FALSE(after_sleep);
  EXPECT_TRUE(t.ready());
  EXPECT_TRUE(t.killed());
  EXPECT_FALSE(t.successful());
  EXPECT_THROW(t.get(), moss::greenlet_exit);
}

TEST_F(WithHub, CatchingStdExceptionDoesNotSwallowAKill) {
  bool caught_std = false;
  auto t = moss::spawn([&] {
    try {
      moss::sleep(10s);
    } catch (const std::exception&) {
      caught_std = true;
    }
  });
  moss::yield();
  t.kill();
  EXPECT_FALSE(caught_std);
  EXPECT_TRUE(t.killed());
}

TEST_F(WithHub, KillingATaskThatNeverStartedJustMarksItDead) {
  bool ran = false;
  auto t = moss::spawn([&] { ran = true; });
  t.kill();
  EXPECT_TRUE(t.ready());
  EXPECT_TRUE(t.killed());
  moss::sleep(1ms);
  EXPECT_FALSE(ran);
  EXPECT_THROW(t.get(), moss::greenlet_exit);
}

TEST_F(WithHub, NonBlockingKillTakesEffectAtTheNextResume) {
  int destroyed = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  auto t = moss::spawn([&] {
    guard g{&destroyed};
    moss::sleep(10s);
  });
  moss::yield();
  t.kill(false);
  EXPECT_FALSE(t.ready());
  t.join();
  EXPECT_EQ(destroyed, 1);
}

TEST_F(WithHub, ATaskKillingItselfUnwindsAtOnce) {
  bool after = false;
  moss::task<void> self;
  auto t = moss::spawn([&] {
    moss::yield();
    self.kill();
    after = true;
  });
  self = t;
  t.join();
  EXPECT_FALSE(after);
  EXPECT_TRUE(t.killed());
  self = {};
}

TEST_F(WithHub, JoiningYourselfIsAnError) {
  moss::task<void> self;
  std::string message;
  auto t = moss::spawn([&] {
    moss::yield();
    try {
      self.join();
    } catch (const moss::error& e) {
      message = e.what();
    }
  });
  self = t;
  t.join();
  EXPECT_NE(message.find("cannot join itself"), std::string::npos) << message;
  self = {};
}

TEST_F(WithHub, SpawnLaterStartsAfterTheDelayInDelayOrder) {
  std::vector<int> order;
  auto start = std::chrono::steady_clock::now();
  auto c = moss::spawn_later(30ms, [&] { order.push_back(3); });
  auto a = moss::spawn_later(10ms, [&] { order.push_back(1); });
  auto b = moss::spawn_later(20ms, [&] { order.push_back(2); });
  c.join();
  a.join();
  b.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST_F(WithHub, KillingASpawnLaterTaskBeforeItStartsCancelsIt) {
  bool ran = false;
  auto t = moss::spawn_later(5ms, [&] { ran = true; });
  t.kill();
  moss::sleep(20ms);
  EXPECT_FALSE(ran);
}

TEST_F(WithHub, NamesDefaultToTaskIdAndCanBeSet) {
  auto t = moss::spawn([] {});
  EXPECT_EQ(t.name().rfind("task-", 0), 0u) << t.name();
  t.set_name("worker-7");
  EXPECT_EQ(t.name(), "worker-7");
  auto u = moss::spawn(moss::spawn_options{.name = "named"}, [] {});
  EXPECT_EQ(u.name(), "named");
  t.join();
  u.join();
}

TEST_F(WithHub, HandlesAreCheapCopiesOfOneTask) {
  auto t = moss::spawn([] { return 3; });
  auto u = t;
  EXPECT_TRUE(t == u);
  EXPECT_EQ(u.get(), 3);
  EXPECT_TRUE(t.ready());
}

TEST_F(WithHub, ATaskRunsToCompletionEvenWithoutAHandle) {
  int done = 0;
  moss::spawn([&] {
    moss::sleep(1ms);
    ++done;
  });
  moss::sleep(20ms);
  EXPECT_EQ(done, 1);
}

TEST_F(WithHub, AnEmptyHandleGivesAClearError) {
  moss::task<int> t;
  EXPECT_THROW(t.join(), moss::error);
  EXPECT_FALSE(t.ready());
}

TEST_F(WithHub, AHundredThousandConcurrentTasksAllRunAndFinish) {
  constexpr int n = 100'000;
  std::vector<moss::task<int>> tasks;
  tasks.reserve(n);
  long sum = 0;
  int running = 0, peak = 0;
  for (int i = 0; i < n; ++i)
    tasks.push_back(moss::spawn([&running, &peak](int v) {
      peak = std::max(peak, ++running);
      moss::sleep(20ms);
      --running;
      return v;
    }, i));
  for (auto& t : tasks) sum += t.get();
  EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
  EXPECT_EQ(peak, n);  // all were alive at once
}

// Task objects are recycled through a per-thread cache by size; tasks of
// different sizes and alignments, freed and spawned in turn, must each get
// storage of their own size and alignment, never a smaller recycled block.
TEST_F(WithHub, RecycledTaskStorageKeepsEachTasksSizeAndAlignment) {
  struct alignas(256) wide {
    unsigned char bytes[512];
  };
  for (int round = 0; round < 50; ++round) {
    auto small = moss::spawn([](int v) { return v + 1; }, round);
    wide w{};
    w.bytes[0] = static_cast<unsigned char>(round);
    w.bytes[511] = static_cast<unsigned char>(round + 1);
    auto big = moss::spawn([w] {
      auto addr = reinterpret_cast<std::uintptr_t>(&w);
      return addr % alignof(wide) == 0 ? w.bytes[0] + w.bytes[511] : -1;
    });
    std::string text(300, static_cast<char>('a' + round % 26));
    auto mid = moss::spawn([text] { return text; });
    EXPECT_EQ(small.get(), round + 1);
    EXPECT_EQ(big.get(), 2 * round + 1);
    EXPECT_EQ(mid.get(), text);
  }
}

TEST_F(WithHub, TasksOfAnotherThreadCannotBeJoined) {
  moss::task<int> t = moss::spawn([] { return 1; });
  std::string message;
  std::thread other([&] {
    try {
      t.join();
    } catch (const moss::error& e) {
      message = e.what();
    }
  });
  other.join();
  EXPECT_NE(message.find("another thread"), std::string::npos) << message;
  EXPECT_EQ(t.get(), 1);
}

namespace {
// Constructed before the thread's hub, so destroyed after it at thread exit.
struct spawns_at_exit {
  std::string* message;
  ~spawns_at_exit() {
    try {
      moss::spawn([] {});
    } catch (const moss::error& e) {
      *message = e.what();
    }
  }
};
}  // namespace

TEST(HubLifetime, SpawningAfterTheThreadsHubWasDestroyedIsAClearError) {
  std::string message;
  std::thread([&] {
    thread_local spawns_at_exit probe{&message};
    (void)probe;
    moss::spawn([] {}).join();
  }).join();
  EXPECT_NE(message.find("already destroyed"), std::string::npos) << message;
}

TEST(HubLifetime, TasksLeftAtThreadExitAreKilledAndUnwound) {
  int destroyed = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  std::thread([&] {
    moss::spawn([&] {
      guard g{&destroyed};
      moss::sleep(10s);
    });
    moss::yield();
  }).join();
  EXPECT_EQ(destroyed, 1);
}

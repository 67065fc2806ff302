// done_callback_test: add_done_callback, link_value/link_exception, cancel()
// and cancelled(), all_tasks(); the seed "three tasks with done callbacks".
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

// Seed (asyncio): three tasks sleep, each with a callback printing the
// square of its result; the loop runs until all three are done.
TEST_F(WithHub, ThreeTasksWithDoneCallbacksEachCallbackSeesItsResult) {
  std::vector<std::string> printed;
  std::vector<moss::task<int>> tasks;
  for (int i = 0; i < 3; ++i)
    tasks.push_back(moss::spawn([](int v) {
      moss::sleep((3 - v) * 5ms);
      return v;
    }, i));
  for (auto& t : tasks)
    t.add_done_callback([&](const moss::task<int>& f) {
      printed.push_back("Callback: " + std::to_string(f.get() * f.get()));
    });
  for (auto& t : tasks) t.join();
  // The sleeps are shortest for the last task, so callbacks run in completion order.
  EXPECT_EQ(printed, (std::vector<std::string>{"Callback: 4", "Callback: 1", "Callback: 0"}));
}

TEST_F(WithHub, CallbacksRunInTheOrderAddedBeforeJoinReturns) {
  std::vector<int> order;
  auto t = moss::spawn([] { moss::sleep(1ms); });
  t.add_done_callback([&](const moss::task<void>&) { order.push_back(1); });
  t.add_done_callback([&](const moss::task<void>&) { order.push_back(2); });
  t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_F(WithHub, TheCallbackRunsOnTheTasksOwnGreenletAndMayBlock) {
  bool slept = false;
  moss::detail::greenlet_impl* ran_on = nullptr;
  moss::detail::greenlet_impl* task_g = nullptr;
  auto t = moss::spawn([&] { task_g = moss::detail::current_impl(); });
  t.add_done_callback([&](const moss::task<void>& f) {
    ran_on = moss::detail::current_impl();
    EXPECT_TRUE(f.ready());  // the result is there while callbacks run
    moss::sleep(5ms);
    slept = true;
  });
  t.join();
  EXPECT_TRUE(slept);  // join waited for the blocking callback
  EXPECT_EQ(ran_on, task_g);
}

TEST_F(WithHub, ACallbackAddedAfterTheTaskFinishedRunsSoonButNotInsideTheCall) {
  auto t = moss::spawn([] { return 5; });
  t.join();
  int seen = 0;
  t.add_done_callback([&](const moss::task<int>& f) { seen = f.get(); });
  EXPECT_EQ(seen, 0);  // not synchronously
  auto all = moss::all_tasks();
  ASSERT_EQ(all.size(), 1u);  // it runs in a task of its own
  EXPECT_NE(all[0].name().find("done callback of"), std::string::npos) << all[0].name();
  all[0].join();
  EXPECT_EQ(seen, 5);
}

TEST_F(WithHub, ACallbackAddedByACallbackRunsInTheSamePass) {
  std::vector<int> order;
  auto t = moss::spawn([] {});
  t.add_done_callback([&](const moss::task<void>& f) {
    order.push_back(1);
    f.add_done_callback([&](const moss::task<void>&) { order.push_back(3); });
  });
  t.add_done_callback([&](const moss::task<void>&) { order.push_back(2); });
  t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(moss::all_tasks().empty());
}

TEST_F(WithHub, AFailingCallbackIsReportedAndTheOthersStillRun) {
  testing::internal::CaptureStderr();
  int ran = 0;
  auto t = moss::spawn(moss::spawn_options{.name = "cb-owner"}, [] {});
  t.add_done_callback([](const moss::task<void>&) { throw std::runtime_error("cb boom"); });
  t.add_done_callback([&](const moss::task<void>&) { ++ran; });
  t.join();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "moss: a done callback of task \"cb-owner\" failed: cb boom\n");
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(t.successful());
}

TEST_F(WithHub, CallbacksRunWhenTheTaskFailsOrIsKilled) {
  testing::internal::CaptureStderr();
  bool failed_seen = false, killed_seen = false;
  auto bad = moss::spawn([]() -> int { throw std::logic_error("x"); });
  bad.add_done_callback([&](const moss::task<int>& f) { failed_seen = f.exception() != nullptr; });
  auto sleeper = moss::spawn([] { moss::sleep(10s); });
  sleeper.add_done_callback([&](const moss::task<void>& f) { killed_seen = f.killed(); });
  moss::yield();
  sleeper.kill();
  bad.join();
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(failed_seen);
  EXPECT_TRUE(killed_seen);
}

TEST_F(WithHub, KillingATaskThatNeverStartedStillRunsItsCallbacks) {
  bool ran_fn = false;
  int callbacks = 0;
  auto t = moss::spawn([&] { ran_fn = true; });
  t.add_done_callback([&](const moss::task<void>& f) {
    EXPECT_TRUE(f.killed());
    ++callbacks;
  });
  t.kill();
  EXPECT_FALSE(ran_fn);
  EXPECT_EQ(callbacks, 1);
  EXPECT_TRUE(t.cancelled());
  EXPECT_THROW(t.get(), moss::greenlet_exit);
}

TEST_F(WithHub, KillingATaskWhileItsCallbackBlocksEndsTheCallbacks) {
  bool second_ran = false, first_unwound = false;
  auto t = moss::spawn([] {});
  t.add_done_callback([&](const moss::task<void>&) {
    struct on_unwind {
      bool* flag;
      ~on_unwind() { *flag = true; }
    } g{&first_unwound};
    moss::sleep(10s);
  });
  t.add_done_callback([&](const moss::task<void>&) { second_ran = true; });
  moss::sleep(1ms);
  EXPECT_TRUE(t.ready());
  EXPECT_FALSE(t.join(1ms));  // not finished while its callback blocks
  t.kill();
  EXPECT_TRUE(first_unwound);
  EXPECT_FALSE(second_ran);
  EXPECT_TRUE(t.successful());  // the task itself had succeeded
}

TEST_F(WithHub, LinkValueRunsOnlyOnSuccessAndLinkExceptionOnlyOnFailure) {
  testing::internal::CaptureStderr();
  std::vector<std::string> seen;
  auto good = moss::spawn([] { return 1; });
  auto bad = moss::spawn([]() -> int { throw std::runtime_error("no"); });
  for (auto* t : {&good, &bad}) {
    t->link_value([&](const moss::task<int>& f) { seen.push_back("value " + std::to_string(f.get())); });
    t->link_exception([&](const moss::task<int>&) { seen.push_back("exception"); });
  }
  good.join();
  bad.join();
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(seen, (std::vector<std::string>{"value 1", "exception"}));
}

TEST_F(WithHub, CancelIsANonBlockingKillAndCancelledReportsIt) {
  auto t = moss::spawn([] { moss::sleep(10s); });
  moss::yield();
  t.cancel();
  EXPECT_FALSE(t.ready());  // cancel() only asks
  EXPECT_FALSE(t.cancelled());
  t.join();
  EXPECT_TRUE(t.cancelled());
  auto u = moss::spawn([] { return 1; });
  u.join();
  EXPECT_FALSE(u.cancelled());
}

TEST_F(WithHub, AllTasksListsEveryUnfinishedTaskOfThisHub) {
  auto a = moss::spawn([] { moss::sleep(20ms); });
  auto b = moss::spawn([] { moss::sleep(20ms); });
  auto done = moss::spawn([] {});
  done.join();
  auto all = moss::all_tasks();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE((all[0] == a && all[1] == b) || (all[0] == b && all[1] == a));
  for (auto& t : all) t.cancel();  // the seed's "cancel every task"
  a.join();
  b.join();
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(moss::all_tasks().empty());
}

TEST_F(WithHub, ATaskRefIsATypeErasedHandleToTheSameTask) {
  auto t = moss::spawn([] { return std::string("x"); });
  moss::task_ref r = t;
  EXPECT_TRUE(r == t);
  EXPECT_EQ(r.id(), t.id());
  r.join();
  EXPECT_TRUE(t.ready());
  EXPECT_EQ(t.get(), "x");
  moss::task_ref empty;
  EXPECT_FALSE(empty);
  EXPECT_THROW(empty.join(), moss::error);
}

TEST_F(WithHub, RunEndingKillsATaskBlockedInItsDoneCallback) {
  bool unwound = false;
  struct guard {
    bool* b;
    ~guard() { *b = true; }
  };
  int r = moss::run([&] {
    auto t = moss::spawn([] {});
    t.add_done_callback([&](const moss::task<void>&) {
      guard g{&unwound};
      moss::sleep(10s);
    });
    moss::sleep(1ms);
    return 3;
  });
  EXPECT_EQ(r, 3);
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(moss::all_tasks().empty());
}

// run_test: moss::run, the program's main greenlet.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

TEST(Run, ReturnsTheValueOfMain) {
  int v = moss::run([] {
    auto t = moss::spawn([] { return 20; });
    return t.get() + 1;
  });
  EXPECT_EQ(v, 21);
}

TEST(Run, RethrowsTheExceptionOfMain) {
  EXPECT_THROW(moss::run([] { throw std::out_of_range("x"); }), std::out_of_range);
}

TEST(Run, KillsTasksStillRunningWhenMainReturns) {
  int destroyed = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  moss::task<void> left;
  moss::run([&] {
    left = moss::spawn([&] {
      guard g{&destroyed};
      moss::sleep(10s);
    });
    moss::sleep(1ms);
  });
  EXPECT_EQ(destroyed, 1);
  EXPECT_TRUE(left.killed());
}

TEST(Run, CannotBeCalledFromATask) {
  std::string message;
  moss::run([&] {
    moss::spawn([&] {
      try {
        moss::run([] {});
      } catch (const moss::error& e) {
        message = e.what();
      }
    }).join();
  });
  EXPECT_NE(message.find("main greenlet"), std::string::npos) << message;
}

TEST(Run, WorksOnAnyThread) {
  int v = 0;
  std::thread([&] { v = moss::run([] { return moss::spawn([] { return 9; }).get(); }); }).join();
  EXPECT_EQ(v, 9);
}

TEST(Run, MainGetsLoopExitWhenEverythingWaitsForever) {
  EXPECT_THROW(moss::run([] {
                 auto t = moss::spawn([] {
                   moss::detail::waiter w;
                   w.wait();
                 });
                 t.join();
               }),
               moss::loop_exit);
}

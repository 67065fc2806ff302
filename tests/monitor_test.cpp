// monitor_test: MOSS_MONITOR_MS reports a hub blocked too long, and only
// then. MOSS_MONITOR_MS is read once per process, so each case runs in a
// forked child that sets it first; this process never makes a hub.
#include <moss/moss.hpp>

#include <gtest/gtest.h>

#include "forked_child.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

using moss_test::child_result;

// in_child() runs body as moss::run's main in a child process, with
// MOSS_MONITOR_MS=value (forked_child.hpp).
child_result in_child(const char* value, const std::function<void()>& body) {
  return moss_test::run_in_child("MOSS_MONITOR_MS", value, body);
}

void spin_for(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

// Outside any namespace and exported (the test is linked with -rdynamic), so
// backtrace_symbols_fd can name it. It spins in its own loop, so that it is
// on the stack whenever the signal lands.
[[gnu::noinline]] void moss_monitor_test_spins_right_here(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  volatile unsigned long sink = 0;
  while (std::chrono::steady_clock::now() < end)
    for (int i = 0; i < 100000; ++i) sink = sink + 1;
  asm volatile("" ::: "memory");  // not a tail position: keeps this frame
}

TEST(Monitor, TheReportShowsTheNativeBacktraceOfTheBlockedGreenlet) {
  auto r = in_child("100", [] {
    auto idle = moss::spawn([] { moss::sleep(10ms); });
    moss::spawn(moss::spawn_options{.name = "spinner"}, [] { moss_monitor_test_spins_right_here(600ms); }).join();
    idle.join();
  });
  EXPECT_EQ(r.status, 0) << r.err;
  auto during = r.err.find("moss: monitor: the hub of thread ");
  auto frames = r.err.find("moss: monitor: native backtrace of thread ");
  auto where = r.err.find("moss_monitor_test_spins_right_here");
  auto after = r.err.find("\"spinner\" ran for at least ");
  ASSERT_NE(during, std::string::npos) << r.err;
  ASSERT_NE(frames, std::string::npos) << r.err;
  ASSERT_NE(where, std::string::npos) << "the spinning function is not in the backtrace:\n" << r.err;
  EXPECT_LT(during, frames) << r.err;
  EXPECT_LT(frames, where) << r.err;
  EXPECT_LT(where, after) << "the backtrace is printed while the greenlet blocks:\n" << r.err;
  EXPECT_EQ(r.err.find("no backtrace"), std::string::npos) << r.err;
}

TEST(Monitor, ATaskThatComputesIsReportedWhileItBlocksAndNamedWhenItSwitches) {
  auto r = in_child("100", [] {
    auto idle = moss::spawn([] { moss::sleep(10ms); });  // starved while the spinner runs
    auto t = moss::spawn(moss::spawn_options{.name = "spinner"}, [] { spin_for(500ms); });
    t.join();
    idle.join();
  });
  EXPECT_EQ(r.status, 0) << r.err;
  auto during = r.err.find("moss: monitor: the hub of thread ");
  auto after = r.err.find("\"spinner\" ran for at least ");
  ASSERT_NE(during, std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has been blocked for ", during), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(MOSS_MONITOR_MS=100)", during), std::string::npos) << r.err;
  ASSERT_NE(after, std::string::npos) << r.err;
  EXPECT_LT(during, after) << "reported while blocked, named afterwards:\n" << r.err;
}

[[gnu::noinline]] void moss_monitor_test_blocks_in_usleep() {
  auto start = std::chrono::steady_clock::now();
  ::usleep(400 * 1000);  // libc's: this program does not link the patch layer
  if (std::chrono::steady_clock::now() - start < 390ms) _exit(4);  // the monitor cut it short
  asm volatile("" ::: "memory");
}

// A thread asleep in a system call is not signalled (the call would end
// with EINTR); its stack is scanned instead.
TEST(Monitor, ACallThatBlocksTheThreadIsReportedWithItsStackAndNotInterrupted) {
  auto r = in_child("100", [] {
    auto t = moss::spawn(moss::spawn_options{.name = "sleeper"}, [] { moss_monitor_test_blocks_in_usleep(); });
    t.join();
  });
  EXPECT_EQ(r.status, 0) << "4: usleep returned early\n" << r.err;
  EXPECT_NE(r.err.find("\"sleeper\" ran for at least "), std::string::npos) << r.err;
  auto scanned = r.err.find("is blocked in system call ");
  ASSERT_NE(scanned, std::string::npos) << r.err;
  EXPECT_NE(r.err.find("moss_monitor_test_blocks_in_usleep", scanned), std::string::npos) << r.err;
}

// Busy tasks that switch often, and a hub asleep in its poller, are not
// blocked: a monitor that missed switches or sleep would report them.
TEST(Monitor, TasksThatSwitchOftenAndAnIdleHubAreNotReported) {
  auto r = in_child("200", [] {
    auto busy = [] {
      auto end = std::chrono::steady_clock::now() + 800ms;
      while (std::chrono::steady_clock::now() < end) {
        spin_for(1ms);
        moss::yield();
      }
    };
    auto a = moss::spawn(busy), b = moss::spawn(busy);
    a.join();
    b.join();
    moss::spawn([] { moss::sleep(600ms); }).join();
  });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("moss: monitor"), std::string::npos) << r.err;
}

TEST(Monitor, ZeroTurnsItOff) {
  auto r = in_child("0", [] { moss::spawn([] { spin_for(300ms); }).join(); });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("moss: monitor"), std::string::npos) << r.err;
}

TEST(Monitor, AMalformedValueIsAnErrorSayingWhatIsAccepted) {
  for (const char* bad : {"soon", "-5", "1.5", "3600001", "100ms"}) {
    auto r = in_child(bad, [] {});
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.err;  // the program ends (lib/core/config.hpp)
    EXPECT_NE(r.err.find(std::string("moss: MOSS_MONITOR_MS=\"") + bad +
                         "\" is not valid; use a number of milliseconds from 1 to 3600000, or 0 for no monitor"),
              std::string::npos)
        << r.err;
  }
}

// sleep_hook_test: plain sleep(), usleep(), nanosleep() and clock_nanosleep()
// calls yield to the hub in a program linked with libmoss_patch.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <string>
#include <thread>
#include <unistd.h>

namespace moss::patch {
extern thread_local int signal_depth;
}

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

void plain_nanosleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

TEST_F(WithHub, ThreeTasksSleepingOneTwoAndFourUnitsTakeFourUnitsNotSeven) {
  auto t0 = clk::now();
  auto a = moss::spawn(plain_nanosleep_ms, 100);
  auto b = moss::spawn([] { usleep(200'000); });
  auto c = moss::spawn([] {
    timespec ts{0, 400'000'000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
  });
  a.join();
  b.join();
  c.join();
  auto took = clk::now() - t0;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 650ms);  // 700 ms if the calls blocked the thread
}

TEST_F(WithHub, SleepSecondsYields) {
  bool other_ran = false;
  auto t = moss::spawn([&] { other_ran = true; });
  auto t0 = clk::now();
  EXPECT_EQ(sleep(1), 0u);
  EXPECT_TRUE(other_ran);
  EXPECT_GE(clk::now() - t0, 1s);
  t.join();
}

TEST_F(WithHub, AbsoluteClockNanosleepWakesAtTheDeadline) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  timespec at = now;
  at.tv_nsec += 50'000'000;
  if (at.tv_nsec >= 1'000'000'000) {
    at.tv_sec += 1;
    at.tv_nsec -= 1'000'000'000;
  }
  int ticks = 0;
  auto ticker = moss::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      ++ticks;
      moss::sleep(1ms);
    }
  });
  auto t0 = clk::now();
  EXPECT_EQ(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr), 0);
  EXPECT_GE(clk::now() - t0, 40ms);
  EXPECT_EQ(ticks, 3);  // the hub ran the ticker meanwhile
  timespec past{1, 0};
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr), 0);
  ticker.join();
}

TEST_F(WithHub, BadArgumentsGiveTheKernelsErrors) {
  timespec bad{0, 1'000'000'000};
  errno = 0;
  EXPECT_EQ(nanosleep(&bad, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  timespec negative{-1, 0};
  EXPECT_EQ(nanosleep(&negative, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr), EINVAL);
  EXPECT_EQ(nanosleep(nullptr, nullptr), -1);
  EXPECT_EQ(errno, EFAULT);
}

TEST_F(WithHub, AKillInsideAHookedSleepReturnsEcanceledAndRaisesAtTheNextWait) {
  int result = 0, err = 0;
  bool reached_wait = false;
  auto t = moss::spawn([&] {
    timespec ts{10, 0};
    timespec rem{};
    result = nanosleep(&ts, &rem);
    err = errno;
    reached_wait = true;
    moss::sleep(1ms);  // the kill is raised here
    ADD_FAILURE() << "survived the kill";
  });
  moss::yield();
  t.kill();
  EXPECT_EQ(result, -1);
  EXPECT_EQ(err, ECANCELED);
  EXPECT_TRUE(reached_wait);
  EXPECT_TRUE(t.killed());
}

TEST_F(WithHub, PlainThreadsPassThroughToTheRealSleep) {
  auto t0 = clk::now();
  std::thread([] { usleep(30'000); }).join();
  EXPECT_GE(clk::now() - t0, 30ms);
}

namespace {
int depth_seen = -1;
void record_depth(int) { depth_seen = moss::patch::signal_depth; }
}  // namespace

TEST_F(WithHub, SignalHandlersRunWithTheHooksOffAndOldactShowsTheUsersHandler) {
  sighandler_t before = signal(SIGUSR1, &record_depth);
  EXPECT_NE(before, SIG_ERR);
  raise(SIGUSR1);
  EXPECT_EQ(depth_seen, 1);
  EXPECT_EQ(moss::patch::signal_depth, 0);
  struct sigaction old {};
  sigaction(SIGUSR1, nullptr, &old);
  EXPECT_EQ(old.sa_handler, &record_depth);
  signal(SIGUSR1, before);
}

TEST(MossHook, AnUnknownFamilyStopsTheProgramWithTheAcceptedList) {
  std::string cmd = "MOSS_HOOK=socket,sleeep /proc/" + std::to_string(getpid()) + "/exe --gtest_list_tests 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_NE(out.find("bad MOSS_HOOK \"socket,sleeep\": unknown family \"sleeep\""), std::string::npos) << out;
  EXPECT_NE(out.find("socket, sleep, dns, poll"), std::string::npos) << out;
}

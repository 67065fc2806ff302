// wait_hook_test: in a program linked with libmoss_patch, a task's wait for
// one child (waitpid, system) or for a file lock (flock, fcntl F_OFD_SETLKW)
// parks it, so other tasks run, and a kill ends the wait with ECANCELED
// (a shell started by system() is killed and reaped with it).
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

// spawn_sleep() starts `sleep SECONDS` as a child; its pid.
pid_t spawn_sleep(const char* seconds) {
  pid_t pid = -1;
  const char* argv[] = {"sleep", seconds, nullptr};
  EXPECT_EQ(posix_spawnp(&pid, "sleep", nullptr, nullptr, const_cast<char* const*>(argv), environ), 0);
  return pid;
}

// ticks_while() counts a task's 10 ms naps while f() runs in this greenlet.
template <class F>
int ticks_while(F f) {
  int ticks = 0;
  bool stop = false;
  auto ticker = moss::spawn([&] {
    while (!stop) {
      moss::sleep(10ms);
      ++ticks;
    }
  });
  moss::yield();
  f();
  stop = true;
  ticker.join();
  return ticks;
}

std::string scratch(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string(name) + "." + std::to_string(getpid()))).string();
}

}  // namespace

TEST_F(WithHub, WaitpidForOneChildLetsOtherTasksRun) {
  pid_t pid = spawn_sleep("0.3");
  int status = -1;
  pid_t r = 0;
  int ticks = ticks_while([&] { r = waitpid(pid, &status, 0); });
  EXPECT_EQ(r, pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_GE(ticks, 10) << "30 naps of 10 ms fit in the child's 300 ms; none if waitpid blocked the thread";
}

TEST_F(WithHub, AKillInsideWaitpidReturnsEcanceledAndLeavesTheChildWaitable) {
  pid_t pid = spawn_sleep("30");
  pid_t r = 0;
  int err = 0;
  auto t = moss::spawn([&] {
    r = waitpid(pid, nullptr, 0);
    err = errno;
  });
  moss::yield();
  t.kill();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECANCELED);
  kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST_F(WithHub, SystemLetsOtherTasksRunAndGivesTheShellsStatus) {
  int status = -1;
  int ticks = ticks_while([&] { status = system("sleep 0.3; exit 4"); });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 4) << status;
  EXPECT_GE(ticks, 10);
}

TEST_F(WithHub, AKillInsideSystemKillsAndReapsTheShellAndRestoresSigint) {
  int r = 0;
  int err = 0;
  auto start = clk::now();
  auto t = moss::spawn([&] {
    r = system("exec sleep 30");  // exec: no grandchild outlives the shell holding our stdout
    err = errno;
  });
  moss::sleep(100ms);  // the shell runs
  t.kill();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECANCELED);
  EXPECT_LT(clk::now() - start, 10s);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1) << "the shell was reaped: no child is left";
  EXPECT_EQ(errno, ECHILD);
  struct sigaction now {};
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL) << "SIGINT is back as it was";
}

TEST_F(WithHub, FlockWaitsWhileAnotherTaskHoldsTheLock) {
  std::string path = scratch("wait_hook_flock");
  int a = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int b = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_EQ(flock(a, LOCK_EX), 0);
  auto holder = moss::spawn([&] {
    moss::sleep(200ms);
    flock(a, LOCK_UN);
  });
  auto start = clk::now();
  EXPECT_EQ(flock(b, LOCK_EX), 0);
  EXPECT_GE(clk::now() - start, 190ms);
  EXPECT_LT(clk::now() - start, 2s);
  holder.join();
  flock(b, LOCK_UN);

  // An OFD lock wait, killed: ECANCELED, and the lock was not taken.
  struct flock wr {};
  wr.l_type = F_WRLCK;
  wr.l_whence = SEEK_SET;
  ASSERT_EQ(fcntl(a, F_OFD_SETLK, &wr), 0);
  int r = 0, err = 0;
  auto waiter = moss::spawn([&] {
    r = fcntl(b, F_OFD_SETLKW, &wr);
    err = errno;
  });
  moss::sleep(50ms);
  waiter.kill();
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECANCELED);
  close(a);  // releases a's lock: b can take it now
  EXPECT_EQ(fcntl(b, F_OFD_SETLK, &wr), 0);
  close(b);
  unlink(path.c_str());
}

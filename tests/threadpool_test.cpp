// threadpool_test: run_in_thread — values and exceptions, a hub that keeps
// running meanwhile, the size limit, kills before and during a job, the
// MOSS_THREADPOOL_SIZE setting, and process exit with pool threads about.
#include <moss/moss.hpp>
#include <moss/threadpool.hpp>

#include "leak_check.hpp"
#include "thread/threadpool.hpp"

#include <atomic>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <limits.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {

// pool_size_scope sets the pool size for one test and restores it.
struct pool_size_scope {
  std::size_t before = moss::threadpool::size();
  explicit pool_size_scope(std::size_t n) { moss::threadpool::set_size(n); }
  ~pool_size_scope() { moss::threadpool::set_size(before); }
};

// run_child() runs one test of this program in a child process with an
// extra environment entry; returns its exit status (-1 if it did not exit).
int run_child(const std::string& test, const std::string& env) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  std::string filter = "--gtest_filter=" + test;
  std::vector<char*> argv{exe, filter.data(), nullptr};
  std::vector<std::string> env_store{env, "MOSS_TEST_CHILD=1"};
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e)
    if (std::string_view(*e).substr(0, 21) != "MOSS_THREADPOOL_SIZE=") envp.push_back(*e);
  envp.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, exe, nullptr, nullptr, argv.data(), envp.data()) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool in_child() { return std::getenv("MOSS_TEST_CHILD") != nullptr; }

}  // namespace

TEST_F(WithHub, RunInThreadReturnsTheValueComputedOnAnotherThread) {
  auto [id, sum] = moss::run_in_thread([](int a, int b) { return std::pair(std::this_thread::get_id(), a + b); }, 2, 3);
  EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(sum, 5);
}

TEST_F(WithHub, RunInThreadRethrowsTheFunctionsException) {
  EXPECT_THROW(moss::run_in_thread([] { throw std::out_of_range("from the pool"); }), std::out_of_range);
  moss::run_in_thread([] {});  // the pool is fine afterwards
}

TEST_F(WithHub, RunInThreadAcceptsMoveOnlyFunctionsAndArguments) {
  auto p = std::make_unique<int>(40);
  int r = moss::run_in_thread([](std::unique_ptr<int> q, int x) { return *q + x; }, std::move(p), 2);
  EXPECT_EQ(r, 42);
}

TEST_F(WithHub, TheHubKeepsRunningTasksWhileAJobBlocks) {
  std::atomic<int> ticks{0};
  bool stop = false;
  auto ticker = moss::spawn([&] {
    while (!stop) {
      moss::sleep(10ms);
      ++ticks;
    }
  });
  moss::run_in_thread([] { std::this_thread::sleep_for(200ms); });
  int during = ticks;
  stop = true;
  ticker.join();
  EXPECT_GE(during, 5) << "the hub was blocked while the job ran";
}

TEST_F(WithHub, JobsFromSeveralTasksRunInParallel) {
  pool_size_scope size(4);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 4; ++i) ts.push_back(moss::spawn([] { moss::run_in_thread([] { std::this_thread::sleep_for(200ms); }); }));
  for (auto& t : ts) t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 600ms) << "four 200 ms jobs ran one after another";
}

TEST_F(WithHub, ThePoolNeverRunsMoreJobsAtOnceThanItsSize) {
  pool_size_scope size(2);
  std::atomic<int> running{0}, peak{0};
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 6; ++i)
    ts.push_back(moss::spawn([&] {
      moss::run_in_thread([&] {
        int now = ++running;
        int p = peak;
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        std::this_thread::sleep_for(30ms);
        --running;
      });
    }));
  for (auto& t : ts) t.join();
  EXPECT_EQ(peak, 2);
}

TEST_F(WithHub, KillingATaskWhoseJobHasNotStartedCancelsTheJob) {
  pool_size_scope size(1);
  std::promise<void> release;
  auto blocker = moss::spawn([f = release.get_future().share()] { moss::run_in_thread([f] { f.wait(); }); });
  std::atomic<bool> ran{false};
  auto queued = moss::spawn([&] { moss::run_in_thread([&] { ran = true; }); });
  moss::sleep(20ms);  // both have submitted; the single thread is busy
  queued.kill(false);
  bool died_at_once = queued.join(5s);
  release.set_value();
  blocker.join();
  queued.join();
  moss::run_in_thread([] {});  // FIFO: a queued job would have run before this one
  EXPECT_TRUE(died_at_once) << "the kill waited for the job ahead of it";
  EXPECT_TRUE(queued.killed());
  EXPECT_FALSE(ran);
}

TEST_F(WithHub, KillingATaskWhoseJobRunsWaitsForTheJobToReturn) {
  std::atomic<bool> returned{false};
  auto t = moss::spawn([&] {
    int on_my_stack = 0;
    moss::run_in_thread([&] {
      std::this_thread::sleep_for(100ms);
      on_my_stack = 1;  // the caller's frame must still be there
      returned = true;
    });
  });
  moss::sleep(20ms);
  t.kill();
  EXPECT_TRUE(returned) << "the killed task unwound while its job still ran";
  EXPECT_TRUE(t.killed());
}

TEST_F(WithHub, RunInThreadWorksOnAPlainThreadAndOnSeveralHubsAtOnce) {
  std::atomic<int> done{0};
  auto body = [&] {
    std::vector<moss::task<int>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(moss::spawn([i] { return moss::run_in_thread([i] { return i * 10; }); }));
    int sum = 0;
    for (auto& t : ts) sum += t.get();
    if (sum == 30) ++done;
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
  EXPECT_EQ(done, 2);
}

TEST_F(WithHub, ThePoolStartsOverInAForkedChild) {
  moss::run_in_thread([] {});  // the parent's pool has a thread, idle now
  int status = -1;
  std::thread([&] {
    // Forked from a thread without a hub, so the child makes its own.
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);  // a hang ends the child with SIGALRM
      int v = moss::run_in_thread([] { return 7; });
      _exit(v == 7 ? 0 : 1);
    }
    waitpid(pid, &status, 0);
  }).join();
  EXPECT_TRUE(WIFEXITED(status)) << "the child hung (status " << status << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(WithHub, BadPoolSizesAreClearErrors) {
  EXPECT_THROW(moss::threadpool::set_size(0), moss::error);
  EXPECT_THROW(moss::threadpool::set_size(5000), moss::error);
  EXPECT_EQ(moss::detail::parse_pool_size("8"), 8u);
  for (const char* bad : {"0", "-1", "abc", "12x", "", "99999"}) {
    try {
      moss::detail::parse_pool_size(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const moss::error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("MOSS_THREADPOOL_SIZE=\"") + bad + "\""), std::string::npos)
          << e.what();
    }
  }
}

TEST_F(WithHub, TheDefaultSizeIsAtLeastFour) {
  if (std::getenv("MOSS_THREADPOOL_SIZE") != nullptr) GTEST_SKIP() << "MOSS_THREADPOOL_SIZE is set";
  EXPECT_GE(moss::threadpool::size(), 4u);
}

// Child programs, run by the tests below in a process of their own.
TEST(ThreadpoolChild, ReportsTheSizeFromTheEnvironment) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of MossThreadpoolSizeIsReadFromTheEnvironment";
  EXPECT_EQ(moss::threadpool::size(), 3u);
  EXPECT_EQ(moss::run_in_thread([] { return 1; }), 1);
}

TEST(ThreadpoolChild, RejectsABadSizeInTheEnvironment) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of AMalformedMossThreadpoolSizeIsAnError";
  moss::run_in_thread([] {});  // a malformed MOSS_* value ends the program with status 2 (lib/core/config.hpp)
  ADD_FAILURE() << "run_in_thread ran with MOSS_THREADPOOL_SIZE=many";
}

TEST(ThreadpoolChild, ExitsWhileAPoolThreadIsBusyAndAnotherIdle) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of TheProcessExitsPromptlyWithPoolThreadsAlive";
  moss::threadpool::set_size(2);
  moss::run_in_thread([] {});  // one thread now idle
  std::thread([] { moss::run_in_thread([] { std::this_thread::sleep_for(30s); }); }).detach();
  std::this_thread::sleep_for(50ms);  // the second thread is inside its job
  std::exit(0);
}

TEST(Threadpool, MossThreadpoolSizeIsReadFromTheEnvironment) {
  EXPECT_EQ(run_child("ThreadpoolChild.ReportsTheSizeFromTheEnvironment", "MOSS_THREADPOOL_SIZE=3"), 0);
}

TEST(Threadpool, AMalformedMossThreadpoolSizeIsAnError) {
  EXPECT_EQ(run_child("ThreadpoolChild.RejectsABadSizeInTheEnvironment", "MOSS_THREADPOOL_SIZE=many"), 2);
}

TEST(Threadpool, TheProcessExitsPromptlyWithPoolThreadsAlive) {
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_child("ThreadpoolChild.ExitsWhileAPoolThreadIsBusyAndAnotherIdle", "MOSS_UNUSED=1"), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "exit waited for a busy pool thread";
}

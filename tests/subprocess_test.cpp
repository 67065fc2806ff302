// subprocess_test: children spawned with pipes — output captured, stdin
// piped through cat, exit codes and deaths by signal, wait with a timeout,
// the hub running while children are waited on, no zombie after a cancelled
// wait or a dropped subprocess, and programs that cannot be run.
#include <moss/moss.hpp>
#include <moss/subprocess.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <csignal>
#include <string>
#include <system_error>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

// reaped() is true when pid is no child of ours any more (no zombie left).
bool reaped(pid_t pid) {
  int st = 0;
  return waitpid(pid, &st, WNOHANG) < 0 && errno == ECHILD;
}

bool proc_exists(pid_t pid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

}  // namespace

TEST_F(WithHub, RunProcessCapturesStdoutStderrAndStatus) {
  auto r = moss::run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status, 3);
}

TEST_F(WithHub, RunProcessCapturesMoreThanAPipeHolds) {
  // 200,000 bytes on each stream: reading one stream only would deadlock.
  auto r = moss::run_process({"/bin/sh", "-c", "head -c 200000 /dev/zero; head -c 200000 /dev/zero >&2"});
  EXPECT_EQ(r.out.size(), 200000u);
  EXPECT_EQ(r.err.size(), 200000u);
  EXPECT_EQ(r.status, 0);
}

TEST_F(WithHub, StdinIsPipedThroughCat) {
  moss::subprocess p = moss::spawn_process({"cat"}, {.in = moss::stdio::pipe, .out = moss::stdio::pipe});
  EXPECT_GT(p.pid(), 0);
  std::string big(100000, 'x');  // more than a pipe holds: the writer must park while cat drains it
  auto reader = moss::spawn([&] { return p.read_all_stdout(); });
  p.write_stdin("hello\n");
  p.write_stdin(big);
  p.close_stdin();
  EXPECT_EQ(reader.get(), "hello\n" + big);
  EXPECT_EQ(p.wait(), 0);
}

TEST_F(WithHub, ReadStdoutReturnsPiecesThenEmptyAtEnd) {
  moss::subprocess p = moss::spawn_process({"/bin/sh", "-c", "printf abc"}, {.out = moss::stdio::pipe});
  std::string got;
  for (std::string s; !(s = p.read_stdout(2)).empty();) {
    EXPECT_LE(s.size(), 2u);
    got += s;
  }
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(p.wait(), 0);
}

TEST_F(WithHub, ExitCodeAndDeathBySignalAreReported) {
  EXPECT_EQ(moss::spawn_process({"/bin/sh", "-c", "exit 0"}).wait(), 0);
  EXPECT_EQ(moss::spawn_process({"/bin/sh", "-c", "exit 42"}).wait(), 42);
  EXPECT_EQ(moss::spawn_process({"/bin/sh", "-c", "kill -TERM $$"}).wait(), -SIGTERM);
  moss::subprocess p = moss::spawn_process({"sleep", "10"});
  p.kill(SIGINT);
  EXPECT_EQ(p.wait(), -SIGINT);
  EXPECT_EQ(p.wait(), -SIGINT);  // the same status again
  p.kill(SIGKILL);               // reaped: nothing
  EXPECT_TRUE(reaped(p.pid()));
}

TEST_F(WithHub, WaitWithTimeoutTimesOutThenSucceeds) {
  moss::subprocess p = moss::spawn_process({"/bin/sh", "-c", "sleep 0.3; exit 7"});
  auto t0 = clk::now();
  EXPECT_EQ(p.wait(50ms), std::nullopt);
  EXPECT_GE(clk::now() - t0, 45ms);
  EXPECT_EQ(p.poll(), std::nullopt);
  EXPECT_EQ(p.wait(5s), 7);
  EXPECT_LT(clk::now() - t0, 3s);
  EXPECT_EQ(p.poll(), 7);
}

TEST_F(WithHub, WaitingOnChildrenDoesNotBlockTheHub) {
  int ticks = 0;
  bool done = false;
  auto ticker = moss::spawn([&] {
    while (!done) {
      moss::sleep(20ms);
      ++ticks;
    }
  });
  auto t0 = clk::now();
  auto a = moss::spawn([] { return moss::spawn_process({"sleep", "0.3"}).wait(); });
  auto b = moss::spawn([] { return moss::run_process({"/bin/sh", "-c", "sleep 0.3; echo b"}); });
  EXPECT_EQ(a.get(), 0);
  auto rb = b.get();
  auto took = clk::now() - t0;
  done = true;
  ticker.join();
  EXPECT_EQ(rb.out, "b\n");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 550ms) << "the two children were waited on one after the other";
  EXPECT_GE(ticks, 8) << "the hub was blocked while children ran";
}

TEST_F(WithHub, KillingTheWaiterKillsAndReapsTheChild) {
  moss::subprocess p = moss::spawn_process({"sleep", "30"});
  pid_t pid = p.pid();
  auto waiter = moss::spawn([&] { return p.wait(); });
  moss::sleep(50ms);
  ASSERT_FALSE(waiter.ready());
  auto t0 = clk::now();
  waiter.kill();
  EXPECT_TRUE(waiter.killed());
  EXPECT_LT(clk::now() - t0, 2s);
  // p still exists: the wait itself killed and reaped the child.
  EXPECT_TRUE(reaped(pid));
  EXPECT_FALSE(proc_exists(pid));
  EXPECT_EQ(p.poll(), -SIGKILL);
}

TEST_F(WithHub, TimeoutAroundWaitKillsAndReapsTheChild) {
  moss::subprocess p = moss::spawn_process({"sleep", "30"});
  EXPECT_THROW(moss::with_timeout(50ms, [&] { return p.wait(); }), moss::timeout_error);
  EXPECT_TRUE(reaped(p.pid()));
  EXPECT_FALSE(proc_exists(p.pid()));
}

TEST_F(WithHub, DroppingARunningSubprocessKillsAndReapsIt) {
  pid_t pid;
  {
    moss::subprocess p = moss::spawn_process({"sleep", "30"}, {.in = moss::stdio::pipe, .out = moss::stdio::pipe});
    pid = p.pid();
    ASSERT_TRUE(proc_exists(pid));
  }
  EXPECT_TRUE(reaped(pid));
  EXPECT_FALSE(proc_exists(pid));
}

TEST_F(WithHub, MovedSubprocessKeepsTheChild) {
  moss::subprocess a = moss::spawn_process({"/bin/sh", "-c", "exit 5"});
  moss::subprocess b = std::move(a);
  EXPECT_EQ(a.pid(), -1);
  EXPECT_EQ(b.wait(), 5);
  EXPECT_THROW(a.wait(), moss::error);
}

TEST_F(WithHub, DevnullGivesEndOfFileAndSwallowsOutput) {
  auto r = moss::run_process({"/bin/sh", "-c", "cat; echo done"}, {.in = moss::stdio::devnull});
  EXPECT_EQ(r.out, "done\n");
  moss::subprocess p = moss::spawn_process({"/bin/sh", "-c", "echo hidden"}, {.out = moss::stdio::devnull});
  EXPECT_EQ(p.wait(), 0);
}

TEST_F(WithHub, WritingToAnExitedChildIsAnErrorNotSigpipe) {
  moss::subprocess p = moss::spawn_process({"/bin/sh", "-c", "exit 0"}, {.in = moss::stdio::pipe});
  EXPECT_EQ(p.wait(), 0);
  try {
    for (int i = 0; i < 100; ++i) p.write_stdin(std::string(65536, 'x'));
    FAIL() << "no error writing to a child that has exited";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EPIPE);
  }
}

TEST_F(WithHub, AMissingProgramIsAClearError) {
  try {
    (void)moss::spawn_process({"/nonexistent/moss-no-such-program", "x"});
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/moss-no-such-program"), std::string::npos) << e.what();
  }
  try {
    (void)moss::spawn_process({"moss-no-such-program-on-path"}, {.out = moss::stdio::pipe});
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

TEST_F(WithHub, ANonExecutableFileIsEacces) {
  char path[] = "/tmp/moss-subprocess-test-XXXXXX";
  int fd = mkstemp(path);  // mode 0600: no execute bit for anyone, root included
  ASSERT_GE(fd, 0);
  close(fd);
  try {
    (void)moss::spawn_process({path});
    ADD_FAILURE() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EACCES);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  unlink(path);
}

TEST_F(WithHub, EmptyArgvIsAnError) {
  EXPECT_THROW((void)moss::spawn_process({}), moss::error);
}

TEST_F(WithHub, CwdRunsTheChildInThatDirectory) {
  auto r = moss::run_process({"/bin/sh", "-c", "pwd"}, {.cwd = "/usr/bin"});
  EXPECT_EQ(r.out, "/usr/bin\n");
  char here[4096];
  ASSERT_NE(getcwd(here, sizeof here), nullptr);
  EXPECT_EQ(moss::run_process({"/bin/sh", "-c", "pwd"}).out, std::string(here) + "\n");  // the parent's by default
}

TEST_F(WithHub, AMissingCwdIsAnErrorNamingTheDirectory) {
  try {
    (void)moss::spawn_process({"/bin/true"}, {.cwd = "/nonexistent/moss-dir"});
    ADD_FAILURE() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("working directory \"/nonexistent/moss-dir\""), std::string::npos) << e.what();
  }
  try {
    (void)moss::spawn_process({"/bin/true"}, {.cwd = "/bin/sh"});
    ADD_FAILURE() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOTDIR) << e.what();
  }
}

TEST_F(WithHub, EnvReplacesTheParentsEnvironment) {
  setenv("MOSS_TEST_PARENT_ONLY", "1", 1);
  auto r = moss::run_process({"/usr/bin/env"}, {.env = std::vector<std::string>{"A=1", "B=two words"}});
  EXPECT_EQ(r.out, "A=1\nB=two words\n");
  auto empty = moss::run_process({"/usr/bin/env"}, {.env = std::vector<std::string>{}});
  EXPECT_EQ(empty.out, "");
  unsetenv("MOSS_TEST_PARENT_ONLY");
}

TEST_F(WithHub, EnvSetAddsReplacesAndRemovesOnTopOfTheParents) {
  setenv("MOSS_TEST_KEEP", "kept", 1);
  setenv("MOSS_TEST_REPLACE", "old", 1);
  setenv("MOSS_TEST_REMOVE", "gone", 1);
  auto r = moss::run_process({"/bin/sh", "-c", "echo $MOSS_TEST_KEEP,$MOSS_TEST_REPLACE,${MOSS_TEST_REMOVE-unset},$MOSS_TEST_NEW"},
                             {.env_set = {"MOSS_TEST_REPLACE=new", "MOSS_TEST_REMOVE", "MOSS_TEST_NEW=x=y"}});
  EXPECT_EQ(r.out, "kept,new,unset,x=y\n");
  auto on_env = moss::run_process({"/usr/bin/env"}, {.env = std::vector<std::string>{"A=1", "B=2"}, .env_set = {"A=3"}});
  EXPECT_EQ(on_env.out, "B=2\nA=3\n");
  unsetenv("MOSS_TEST_KEEP");
  unsetenv("MOSS_TEST_REPLACE");
  unsetenv("MOSS_TEST_REMOVE");
}

TEST_F(WithHub, AMalformedEnvironmentEntryIsAnErrorNamingIt) {
  try {
    (void)moss::spawn_process({"/bin/true"}, {.env = std::vector<std::string>{"A=1", "novalue"}});
    ADD_FAILURE() << "no error";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("\"novalue\""), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)moss::spawn_process({"/bin/true"}, {.env_set = {"=x"}}), moss::error);
}

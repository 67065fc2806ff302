// config_test: a malformed MOSS_* variable stops the program with one line
// naming the variable, the value and what is accepted, and exit status 2 —
// at the first hub, and wherever else it is first read (lib/core/config.hpp).
//
// Each case runs this program again (one ConfigChild test) with the
// variable in its environment, as a user's program would start.
#include <moss/moss.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netdb.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

struct child_result {
  int status = -1;  // exit status; -1 if it did not exit (a signal: abort, terminate)
  int signal = 0;
  std::string err;
};

bool in_child() { return std::getenv("MOSS_CONFIG_TEST_CHILD") != nullptr; }

// run_child() runs one ConfigChild test of this program with `env` added
// (every other MOSS_* variable removed), and collects its stderr.
child_result run_child(const std::string& test, const std::vector<std::string>& env) {
  child_result r;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return r;
  exe[n] = '\0';
  std::string filter = "--gtest_filter=ConfigChild." + test;
  std::vector<char*> argv{exe, filter.data(), nullptr};
  std::vector<std::string> store = env;
  store.emplace_back("MOSS_CONFIG_TEST_CHILD=1");
  std::vector<char*> envp;
  for (auto& e : store) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e)
    if (std::string_view(*e).substr(0, 5) != "MOSS_") envp.push_back(*e);
  envp.push_back(nullptr);
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawn(&pid, exe, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(err[1]);
  if (rc != 0) {
    close(err[0]);
    return r;
  }
  char buf[4096];
  while ((n = read(err[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

struct bad_value {
  const char* name;
  const char* value;
  const char* accepted;  // a phrase of what the message says is accepted
};

// The examples, and one more malformed spelling of each.
const bad_value bad_values[] = {
    {"MOSS_DNS_SERVERS", "999.1.1.1:99999", "accepted: ip[:port]"},
    {"MOSS_DNS_SERVERS", "127.0.0.1:0", "accepted: ip[:port]"},
    {"MOSS_RESOLVER", "c-ares", "accepted: ares, thread, block"},
    {"MOSS_DNS_TRIES", "0", "from 1 to 100"},
    {"MOSS_DNS_TRIES", "two", "from 1 to 100"},
    {"MOSS_DNS_TIMEOUT_MS", "-1", "from 1 to 3600000"},
    {"MOSS_STACK_SIZE", "abc", "accepted: a byte count"},
    {"MOSS_STACK_SIZE", "1K", "from 16K to 1G"},
    {"MOSS_MONITOR_MS", "-5", "from 1 to 3600000, or 0"},
    {"MOSS_THREADPOOL_SIZE", "x", "from 1 to 1024"},
    {"MOSS_THREADPOOL_SIZE", "0", "from 1 to 1024"},
};

// expect_reported() checks the child's end: status 2 and exactly one line
// naming the variable, the value and what is accepted.
void expect_reported(const child_result& r, const bad_value& b, const char* how) {
  std::string label = std::string(b.name) + "=" + b.value + " (" + how + ")";
  EXPECT_EQ(r.signal, 0) << label << ": killed by signal " << r.signal << "\n" << r.err;
  EXPECT_EQ(r.status, 2) << label << "\n" << r.err;
  ASSERT_FALSE(r.err.empty()) << label;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << label << ": not one line:\n" << r.err;
  EXPECT_EQ(r.err.rfind("moss: ", 0), 0u) << label << "\n" << r.err;
  EXPECT_NE(r.err.find(b.name), std::string::npos) << label << "\n" << r.err;
  EXPECT_NE(r.err.find(std::string("\"") + b.value + "\""), std::string::npos) << label << "\n" << r.err;
  EXPECT_NE(r.err.find(b.accepted), std::string::npos) << label << "\n" << r.err;
}

}  // namespace

// ---- the children -------------------------------------------------------------

// The usual first use: moss::run makes the process's first hub, which checks
// every variable.
TEST(ConfigChild, RunsATask) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of the Config tests";
  int v = moss::run([] { return moss::spawn([] { return 3; }).get(); });
  std::exit(v == 3 ? 0 : 1);
}

// The dns settings read without a hub (as moss-resolve --server does
// before moss::run). A lookup from a plain thread reads none: it is libc's.
TEST(ConfigChild, ReadsTheDnsSettingsWithoutAHub) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of the Config tests";
  std::exit(moss::dns::current_settings().tries >= 1 ? 0 : 1);
}

// A raw greenlet without a hub: its stack is the first reader of
// MOSS_STACK_SIZE.
TEST(ConfigChild, SwitchesToAGreenletWithoutAHub) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of the Config tests";
  moss::greenlet g([](std::any) -> std::any { return 1; });
  std::exit(std::any_cast<int>(g.switch_to()) == 1 ? 0 : 1);
}

// The thread pool's size, asked without a hub.
TEST(ConfigChild, AsksThePoolSizeWithoutAHub) {
  if (!in_child()) GTEST_SKIP() << "runs as a child of the Config tests";
  std::exit(moss::threadpool::size() >= 1 ? 0 : 1);
}

// ---- the tests -------------------------------------------------------------------

TEST(Config, EachMalformedVariableEndsTheProgramWithOneLineAndStatusTwo) {
  if (in_child()) GTEST_SKIP();
  for (const bad_value& b : bad_values) {
    child_result r = run_child("RunsATask", {std::string(b.name) + "=" + b.value});
    expect_reported(r, b, "first hub");
  }
}

TEST(Config, AMalformedVariableIsReportedWhereverItIsFirstRead) {
  if (in_child()) GTEST_SKIP();
  for (const bad_value& b : bad_values) {
    std::string_view name = b.name;
    const char* child = nullptr;
    if (name.substr(0, 9) == "MOSS_DNS_" || name == "MOSS_RESOLVER") child = "ReadsTheDnsSettingsWithoutAHub";
    else if (name == "MOSS_STACK_SIZE") child = "SwitchesToAGreenletWithoutAHub";
    else if (name == "MOSS_THREADPOOL_SIZE") child = "AsksThePoolSizeWithoutAHub";
    else continue;  // MOSS_MONITOR_MS is read by the first hub only
    child_result r = run_child(child, {std::string(b.name) + "=" + b.value});
    expect_reported(r, b, child);
  }
}

TEST(Config, GoodAndEmptyValuesRunNormally) {
  if (in_child()) GTEST_SKIP();
  const std::vector<std::string> good = {
      "MOSS_DNS_SERVERS=127.0.0.1:53,[::1]:5353", "MOSS_RESOLVER=thread", "MOSS_DNS_TRIES=3",
      "MOSS_DNS_TIMEOUT_MS=1500",                 "MOSS_STACK_SIZE=512K",  "MOSS_MONITOR_MS=0",
      "MOSS_THREADPOOL_SIZE=2",                   "MOSS_STACK_SIZE=",      "MOSS_RESOLVER="};
  for (const std::string& g : good) {
    child_result r = run_child("RunsATask", {g});
    EXPECT_EQ(r.status, 0) << g << "\n" << r.err;
    EXPECT_EQ(r.err, "") << g;
  }
  child_result all = run_child("RunsATask", good);
  EXPECT_EQ(all.status, 0) << all.err;
}

// Programmatic settings are not the environment: they throw, they never exit.
TEST(Config, ProgrammaticSettingsThrowInstead) {
  if (in_child()) GTEST_SKIP();
  moss::dns::settings s = moss::dns::current_settings();
  s.servers = "999.1.1.1:99999";
  EXPECT_THROW(moss::dns::configure(s), moss::error);
  EXPECT_THROW(moss::threadpool::set_size(0), moss::error);
}

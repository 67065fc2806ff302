// run_info_test: format_run_info() lists every greenlet of the hub with its
// state, what it waits on and where it was spawned.
#include <moss/moss.hpp>
#include <moss/run_info.hpp>
#include <moss/wait.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {

// line_of() returns the line describing the greenlet named name.
std::string line_of(const std::string& info, const std::string& name) {
  std::istringstream in(info);
  std::string line;
  while (std::getline(in, line))
    if (line.find("\"" + name + "\"") != std::string::npos) return line;
  return "(no line for " + name + ")";
}

int sleeper_fn() {
  moss::sleep(10s);
  return 0;
}

}  // namespace

TEST_F(WithHub, RunInfoShowsEachTasksStateWaitAndSpawnSite) {
  auto sleeper = moss::spawn(moss::spawn_options{.name = "sleeper"}, &sleeper_fn);
  auto joiner = moss::spawn(moss::spawn_options{.name = "joiner"}, [&] { sleeper.join(); });
  auto waiter = moss::spawn(moss::spawn_options{.name = "waiter"}, [&] {
    moss::wait(std::vector{sleeper}, moss::return_when::first_completed);
  });
  auto later = moss::spawn_later(10s, [] {});
  later.set_name("later");
  moss::sleep(1ms);  // let the first three start and park
  auto fresh = moss::spawn(moss::spawn_options{.name = "fresh"}, [] {});

  std::string info = moss::format_run_info();
  EXPECT_NE(info.find("5 unfinished tasks"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "main").find("main: running"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "hub").find("hub: idle"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "sleeper").find("task: waiting"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "sleeper").find("spawned from int (*)()"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "joiner").find("waiting on join sleeper"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "joiner").find("spawned from WithHub_RunInfoShowsEachTasksStateWaitAndSpawnSite_Test::TestBody()"),
            std::string::npos)
      << info;
  EXPECT_NE(line_of(info, "waiter").find("waiting on moss::wait"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "later").find("not started (spawn_later)"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "fresh").find("not started"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "fresh").find("#" + std::to_string(fresh.id()) + " "), std::string::npos) << info;
  // Spawn order.
  EXPECT_LT(info.find("\"sleeper\""), info.find("\"joiner\"")) << info;
  EXPECT_LT(info.find("\"joiner\""), info.find("\"fresh\"")) << info;

  moss::killall({sleeper, joiner, waiter, later, fresh});
}

TEST_F(WithHub, RunInfoFromATaskShowsMainWaitingAndTheTaskRunning) {
  std::string info;
  auto t = moss::spawn(moss::spawn_options{.name = "reporter"}, [&] {
    moss::yield();
    info = moss::format_run_info();
  });
  t.join();
  EXPECT_NE(line_of(info, "reporter").find("task: running"), std::string::npos) << info;
  EXPECT_NE(line_of(info, "main").find("waiting on join reporter"), std::string::npos) << info;
}

TEST_F(WithHub, RunInfoShowsATaskRunningItsDoneCallbacks) {
  std::string info;
  auto t = moss::spawn(moss::spawn_options{.name = "cb"}, [] {});
  t.add_done_callback([&](const moss::task<void>&) { moss::sleep(20ms); });
  auto probe = moss::spawn([&] {
    moss::sleep(5ms);
    info = moss::format_run_info();
  });
  t.join();
  probe.join();
  EXPECT_NE(line_of(info, "cb").find("running its done callbacks"), std::string::npos) << info;
}

// dump_test: moss::dump_greenlets and MOSS_DUMP_SIGNAL print every greenlet
// of every hub with what it waits on and its native backtrace. The
// environment is read once per process, so each case runs in a forked child;
// this process never makes a hub.
#include <moss/moss.hpp>

#include <gtest/gtest.h>

#include "forked_child.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// In an anonymous namespace, in a test not linked with -rdynamic: dladdr
// cannot name them (nor libmoss's hidden functions); the backtraces name
// them from the executable's .symtab.
[[gnu::noinline]] void moss_dump_test_parked_in_sleep() {
  moss::sleep(30s);
  asm volatile("" ::: "memory");  // not a tail call: keeps this frame
}

[[gnu::noinline]] void moss_dump_test_waits_on_the_other_hub(const std::atomic<bool>& stop) {
  while (!stop.load()) moss::sleep(5ms);
  asm volatile("" ::: "memory");
}

using moss_test::child_result;

// in_child() runs body as moss::run's main in a child process, with
// MOSS_DUMP_SIGNAL=value, or without it when value is null (forked_child.hpp).
child_result in_child(const char* value, const std::function<void()>& body) {
  return moss_test::run_in_child("MOSS_DUMP_SIGNAL", value, body);
}

// block_of() is the part of a dump about the greenlet named `name`: its line
// and the backtrace lines below it, up to the next greenlet or hub.
std::string block_of(const std::string& dump, const std::string& name) {
  auto at = dump.find("\"" + name + "\"");
  if (at == std::string::npos) return {};
  auto end = dump.find("\n  #", at);
  auto next_hub = dump.find("\nmoss: ", at);
  if (next_hub < end) end = next_hub;
  return dump.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Dump, ListsEveryHubsGreenletsAndWhereTheParkedOnesWait) {
  auto r = in_child(nullptr, [] {
    std::atomic<bool> stop{false}, other_ready{false};
    std::thread other([&] {
      moss::run([&] {
        auto t = moss::spawn(moss::spawn_options{.name = "on-the-other-hub"},
                             [&] { moss_dump_test_waits_on_the_other_hub(stop); });
        other_ready = true;
        t.join();
      });
    });
    auto parked = moss::spawn(moss::spawn_options{.name = "parked-here"}, [] { moss_dump_test_parked_in_sleep(); });
    moss::yield();  // it parks in its sleep
    while (!other_ready.load()) moss::sleep(1ms);
    moss::sleep(20ms);
    moss::dump_greenlets(STDERR_FILENO);
    stop = true;
    parked.kill();
    other.join();
  });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("moss: every greenlet of every hub of process "), std::string::npos) << r.err;
  EXPECT_EQ(count_of(r.err, "moss: hub of thread "), 2u) << "two hubs:\n" << r.err;
  std::string here = block_of(r.err, "parked-here");
  EXPECT_NE(here.find("task: waiting on sleep"), std::string::npos) << r.err;
  EXPECT_NE(here.find("moss_dump_test_parked_in_sleep"), std::string::npos)
      << "the parked greenlet's backtrace names the function that sleeps:\n" << r.err;
  EXPECT_NE(here.find("moss::detail::waiter::wait"), std::string::npos)
      << "libmoss's hidden functions are named too:\n" << r.err;
  EXPECT_EQ(here.find("??"), std::string::npos) << "every frame of the parked task is named:\n" << r.err;
  std::string there = block_of(r.err, "on-the-other-hub");
  EXPECT_NE(there.find("task: waiting on sleep"), std::string::npos) << r.err;
  EXPECT_NE(there.find("moss_dump_test_waits_on_the_other_hub"), std::string::npos)
      << "the other hub's greenlet has its backtrace too:\n" << r.err;
  // Each hub lists its main greenlet and its hub greenlet.
  EXPECT_EQ(count_of(r.err, "\"main\" main: "), 2u) << r.err;
  EXPECT_EQ(count_of(r.err, "\"hub\" hub: "), 2u) << r.err;
}

TEST(Dump, TheDumpSignalPrintsEveryGreenletOnStderr) {
  struct variant {
    const char* value;
    int sig;
  };
  for (variant v : {variant{"SIGUSR1", SIGUSR1}, variant{"usr2", SIGUSR2}, variant{"10", SIGUSR1}}) {
    auto r = in_child(v.value, [sig = v.sig] {
      auto parked = moss::spawn(moss::spawn_options{.name = "parked-at-the-signal"},
                                [] { moss_dump_test_parked_in_sleep(); });
      moss::yield();
      ::kill(getpid(), sig);  // the handler only wakes the dump thread
      moss::sleep(500ms);     // the dump thread's request runs on this hub meanwhile
      parked.kill();
    });
    EXPECT_EQ(r.status, 0) << v.value << " (a dump signal with no handler kills the child)\n" << r.err;
    EXPECT_EQ(count_of(r.err, "moss: every greenlet of every hub of process "), 1u) << v.value << "\n" << r.err;
    std::string parked = block_of(r.err, "parked-at-the-signal");
    EXPECT_NE(parked.find("task: waiting on sleep"), std::string::npos) << v.value << "\n" << r.err;
    EXPECT_NE(parked.find("moss_dump_test_parked_in_sleep"), std::string::npos) << v.value << "\n" << r.err;
  }
}

// A forked child has a dump thread of its own: the signal sent to it dumps
// its greenlets, not the parent's (whose dump thread would read a shared
// pipe).
TEST(Dump, AForkedChildDumpsItsOwnGreenletsOnTheSignal) {
  auto r = in_child("SIGUSR1", [] {
    auto left = moss::spawn(moss::spawn_options{.name = "stays-in-the-parent"}, [] { moss_dump_test_parked_in_sleep(); });
    moss::yield();
    pid_t pid = fork();
    if (pid == 0) {
      auto mine = moss::spawn(moss::spawn_options{.name = "made-in-the-child"}, [] { moss_dump_test_parked_in_sleep(); });
      moss::yield();
      ::kill(getpid(), SIGUSR1);
      moss::sleep(500ms);
      mine.kill();
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);  // blocks this hub: a dump of the parent could not answer
    left.kill();
  });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count_of(r.err, "moss: every greenlet of every hub of process "), 1u) << r.err;
  std::string mine = block_of(r.err, "made-in-the-child");
  EXPECT_NE(mine.find("moss_dump_test_parked_in_sleep"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("did not answer"), std::string::npos) << r.err;
}

TEST(Dump, AMalformedSignalIsAnErrorSayingWhatIsAccepted) {
  for (const char* bad : {"SIGFOO", "0", "65", "SIGKILL", "9", "sigsegv", "USR1x", "-10", "SIGRTMIN"}) {
    auto r = in_child(bad, [] {});
    EXPECT_EQ(r.status, 2) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find(std::string("moss: MOSS_DUMP_SIGNAL=\"") + bad +
                         "\" is not valid; use a signal name such as SIGUSR1 or USR2, or a number from 1 to "),
              std::string::npos)
        << r.err;
  }
}

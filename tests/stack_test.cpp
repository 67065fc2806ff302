// stack_test: greenlet stacks — MOSS_STACK_SIZE parsing, the guard page and
// the overflow report (in subprocesses), other crashes left alone, pooling,
// per-spawn sizes, and a malformed MOSS_STACK_SIZE in a real program.
#include <moss/moss.hpp>

#include "leak_check.hpp"
#include "core/stack.hpp"

#include <gmock/gmock.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using moss_test::WithHub;
using moss::detail::stack_area;

// Death tests re-run the test in a fresh child (threadsafe style), so the
// child's moss state is its own; gtest runs *DeathTest suites first.
using WithHubDeathTest = WithHub;

namespace {

std::string parse_error(const char* text) {
  try {
    moss::detail::parse_stack_size(text);
  } catch (const moss::error& e) {
    return e.what();
  }
  return "(accepted)";
}

// dive() recurses until the stack runs out. The volatile frame and the use of
// it after the call keep it a real recursion (no tail call, no loop).
[[gnu::noinline]] std::size_t dive(std::size_t depth) {
  volatile char frame[512];
  frame[depth % sizeof frame] = static_cast<char>(depth);
  if (depth == std::numeric_limits<std::size_t>::max()) return 0;
  return dive(depth + 1) + static_cast<std::size_t>(frame[depth % sizeof frame]);
}

// use_big_frame() needs a 600 KiB frame. It touches the frame a page at a time
// from the top down, as the stack grows, so on a stack too small for it the
// first touch past the end lands in the guard page rather than in whatever is
// mapped below.
[[gnu::noinline]] int use_big_frame() {
  constexpr std::size_t size = 600 * 1024;
  volatile char big[size];
  for (std::size_t i = size; i >= 4096; i -= 4096) big[i - 1] = 1;
  big[0] = 1;
  int pages = 0;
  for (std::size_t i = size; i >= 4096; i -= 4096) pages += big[i - 1];
  return pages + big[0];
}

// The permissions of the mapping that holds addr, from /proc/self/maps.
std::string vma_perms(const void* addr) {
  auto a = reinterpret_cast<std::uintptr_t>(addr);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "(unmapped)";
}

// write_to_null() stores through a null pointer the compiler cannot see as
// null (it would drop or trap the store otherwise). UBSan's checks are
// off here: with halt_on_error it would end the process before the fault
// this is about.
volatile std::uintptr_t null_address = 0;
[[gnu::no_sanitize_undefined]] void write_to_null() { *reinterpret_cast<volatile int*>(null_address) = 42; }

bool is_mapped(const void* addr) { return vma_perms(addr) != "(unmapped)"; }

// A fault moss does not claim must reach the SIGSEGV handler that was there
// before moss's, as if moss had never been there. In a plain build there is
// none: the process is killed by SIGSEGV and says nothing. Under ASan, UBSan
// or TSan it is the sanitizer's, which reports "SEGV on unknown address" and
// exits 1. Every sanitizer
// runtime defines __sanitizer_print_stack_trace.
extern "C" [[gnu::weak]] void __sanitizer_print_stack_trace();
bool under_sanitizer() { return &__sanitizer_print_stack_trace != nullptr; }

// died_of_a_fault() is the exit status of such a fault in this build.
bool died_of_a_fault(int status) {
  if (under_sanitizer())
    return (WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
           (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT));
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

// its_stderr() is what such a fault leaves on stderr: nothing, or the
// sanitizer's report; never a line of moss's.
testing::Matcher<const std::string&> its_stderr() {
  using namespace testing;
  if (under_sanitizer()) return AllOf(HasSubstr("SEGV on unknown address"), Not(HasSubstr("moss: ")));
  return Eq(std::string());
}

}  // namespace

TEST_F(WithHub, ParseStackSizeAcceptsBytesAndBinaryUnitsInAnyCase) {
  using moss::detail::parse_stack_size;
  EXPECT_EQ(parse_stack_size("262144"), 262144u);
  for (const char* s : {"256K", "256k", "256KiB", "256kib", "256KIB"}) EXPECT_EQ(parse_stack_size(s), 262144u) << s;
  for (const char* s : {"1M", "1m", "1MiB", "1mib", "1MIB"}) EXPECT_EQ(parse_stack_size(s), 1048576u) << s;
  EXPECT_EQ(parse_stack_size("16K"), 16384u);      // the smallest
  EXPECT_EQ(parse_stack_size("1024M"), 1u << 30);  // the largest
  EXPECT_EQ(parse_stack_size("20000"), 20480u);    // rounded up to whole pages
}

TEST_F(WithHub, ParseStackSizeRejectsBadValuesSayingWhatIsAccepted) {
  const std::pair<const char*, const char*> bad[] = {
      {"abc", "not a number"}, {"12Q", "unknown unit"}, {"", "not a number"},
      {"1K", "too small"},     {"2G", "too large"},     {"99999999999999999999999", "too large"},
  };
  for (const auto& [text, why] : bad) {
    std::string msg = parse_error(text);
    EXPECT_NE(msg.find(std::string("moss: bad MOSS_STACK_SIZE \"") + text + "\": " + why), std::string::npos) << msg;
    EXPECT_NE(msg.find("accepted: a byte count, or a number with K/KB/KiB, M/MB/MiB or G/GB/GiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("256K"), std::string::npos) << msg;
    EXPECT_NE(msg.find("from 16K to 1G"), std::string::npos) << msg;
  }
}

TEST_F(WithHubDeathTest, AStackOverflowInAGreenletIsReportedWithItsNameAndSize) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::string expected = "moss: stack overflow in greenlet \"deep-diver\" \\(" +
                         std::to_string(moss::detail::default_stack_size() / 1024) +
                         " KiB stack\\); raise MOSS_STACK_SIZE or spawn with a larger stack_size";
  EXPECT_DEATH(
      {
        moss::greenlet g([] { return dive(0); });
        g.set_name("deep-diver");
        g.switch_to();
      },
      expected);
}

TEST_F(WithHubDeathTest, AStackOverflowInATaskNamesTheTaskAndItsOwnStackSize) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto t = moss::spawn(moss::spawn_options{.stack_size = 64 * 1024, .name = "small-stack"},
                             [] { return dive(0); });
        t.join();
      },
      "moss: stack overflow in greenlet \"small-stack\" \\(64 KiB stack\\); raise MOSS_STACK_SIZE");
}

TEST_F(WithHubDeathTest, AStackOverflowOnAnotherThreadIsReportedToo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The handler runs on a per-thread alternate stack; a thread that only
  // ever ran greenlets must have one as well.
  EXPECT_DEATH(
      {
        std::thread([] {
          moss::greenlet g([] { return dive(0); });
          g.set_name("off-main");
          g.switch_to();
        }).join();
      },
      "moss: stack overflow in greenlet \"off-main\"");
}

TEST_F(WithHubDeathTest, ANullWriteInAGreenletIsAnOrdinarySegfault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        moss::greenlet g([] { write_to_null(); });
        g.switch_to();
      },
      died_of_a_fault, its_stderr());
  EXPECT_EXIT(write_to_null(), died_of_a_fault, its_stderr());
}

TEST_F(WithHubDeathTest, GuardPagesUseMadviseAndFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  stack_area s = moss::detail::stack_allocate(0);
  EXPECT_STREQ(moss::detail::guard_mode(), "madvise");
  // A madvise guard keeps the stack one read-write mapping; an mprotect guard
  // would be a separate ---p mapping.
  EXPECT_EQ(vma_perms(s.mapping), "rw-p");
  EXPECT_EQ(s.lo - s.mapping, 64 * 1024);  // a 64 KiB guard
  // The usable range starts right above the guard.
  s.lo[0] = 1;
  s.lo[s.size - 1] = 1;
  EXPECT_EQ(s.lo[0] + s.lo[s.size - 1], 2);
  EXPECT_EXIT(*reinterpret_cast<volatile char*>(s.lo - 1) = 1, died_of_a_fault, its_stderr());
  EXPECT_EXIT((void)*reinterpret_cast<volatile char*>(s.mapping), died_of_a_fault, its_stderr());
  moss::detail::stack_release(s);
}

namespace {

// frame_address() is where a new greenlet's first frame holds a local.
std::uintptr_t frame_address() {
  moss::greenlet g([] {
    volatile char local = 0;
    return reinterpret_cast<std::uintptr_t>(&local);
  });
  return std::any_cast<std::uintptr_t>(g.switch_to());
}

}  // namespace

TEST_F(WithHub, ReleasedDefaultSizeStacksAreReusedFromThePool) {
  stack_area a = moss::detail::stack_allocate(0);
  char* lo = a.lo;
  moss::detail::stack_release(a);
  EXPECT_EQ(a.mapping, nullptr);
  EXPECT_TRUE(is_mapped(lo)) << "a pooled stack stays mapped";
  stack_area b = moss::detail::stack_allocate(0);
  EXPECT_EQ(b.lo, lo);
  moss::detail::stack_release(b);

  // The same through greenlets: the second runs on the first one's stack
  // (its frames start a few cache lines away: see the next test).
  std::uintptr_t first = frame_address();
  std::uintptr_t second = frame_address();
  EXPECT_LT(second > first ? second - first : first - second, 4096u);
}

// Stack colouring: the first frames of successive greenlets start at
// different offsets in their page (different cache sets), even on the same
// pooled stack.
TEST_F(WithHub, SuccessiveGreenletsStartTheirFramesAtDifferentCacheLines) {
  std::set<std::uintptr_t> lines;
  for (int i = 0; i < 32; ++i) lines.insert(frame_address() % 4096 / 64);
  EXPECT_EQ(lines.size(), 32u);
}

// The pool grows as stacks come back (it starts small): a burst of releases
// is all kept, and each stack is handed out again, most recent first.
TEST_F(WithHub, APoolGrowsToHoldABurstOfReleasedStacks) {
  constexpr int n = 100;
  std::vector<stack_area> held;
  for (int i = 0; i < n; ++i) held.push_back(moss::detail::stack_allocate(0));
  std::vector<char*> released;
  for (auto& s : held) {
    released.push_back(s.lo);
    moss::detail::stack_release(s);
  }
  for (char* lo : released) EXPECT_TRUE(is_mapped(lo)) << "a pooled stack stays mapped";
  for (int i = n - 1; i >= 0; --i) {
    held[static_cast<std::size_t>(i)] = moss::detail::stack_allocate(0);
    EXPECT_EQ(held[static_cast<std::size_t>(i)].lo, released[static_cast<std::size_t>(i)]);
  }
  for (auto& s : held) moss::detail::stack_release(s);
}

TEST_F(WithHub, StacksOfOtherSizesAreUnmappedWhenReleased) {
  stack_area a = moss::detail::stack_allocate(1 << 20);
  char* lo = a.lo;
  EXPECT_GE(a.size, std::size_t{1} << 20);
  EXPECT_TRUE(is_mapped(lo));
  moss::detail::stack_release(a);
  EXPECT_FALSE(is_mapped(lo));
}

TEST_F(WithHub, ASpawnWithALargerStackHoldsA600KiBFrame) {
  auto t = moss::spawn(moss::spawn_options{.stack_size = 1 << 20, .name = "big-frame"}, []() -> int {
    // Checked first so that a wrong size fails the test instead of crashing it.
    if (moss::detail::current_impl()->stack_.size < (1u << 20)) return -1;
    return use_big_frame();
  });
  EXPECT_EQ(t.get(), 600 / 4 + 1);
}

TEST_F(WithHub, AStackSizeAboveTheLimitIsRefusedNotCutDown) {
  std::size_t too_big = (std::size_t{1} << 30) + 4096;
  try {
    moss::spawn(moss::spawn_options{.stack_size = too_big, .name = "greedy"}, [] {});
    FAIL() << "spawn accepted a stack above 1 GiB";
  } catch (const moss::error& e) {
    EXPECT_STREQ(e.what(), "moss: a stack_size of 1073745920 bytes is too large (at most 1G)");
  }
  // Small requests are raised to the 16 KiB minimum.
  stack_area s = moss::detail::stack_allocate(1);
  EXPECT_EQ(s.size, 16u * 1024);
  moss::detail::stack_release(s);
}

TEST_F(WithHub, AMalformedStackSizeStopsARealProgramWithAMessageOnStderr) {
  int err[2];
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    setenv("MOSS_STACK_SIZE", "bogus", 1);
    execl(MOSS_TOUR, MOSS_TOUR, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(err[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status << "\n" << out;
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(WEXITSTATUS(status), 127) << "could not run " << MOSS_TOUR;
  EXPECT_NE(out.find("moss: bad MOSS_STACK_SIZE \"bogus\": not a number"), std::string::npos) << out;
  EXPECT_NE(out.find("accepted:"), std::string::npos) << out;
}

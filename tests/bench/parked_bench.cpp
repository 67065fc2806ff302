// parked_bench.cpp: the memory a parked task costs. A million tasks (guard
// pages on, default stack size, the kernel's default vm.max_map_count) each
// park on one shared wake-up — a detail::waiter in one detail::waiter_list,
// what every event-like primitive is built on — then are woken together and
// joined. Reported, for the moment all of them are parked:
//
//   rss_total_MiB / rss_per_task_B  peak RSS (VmHWM) above the baseline taken
//                                   just before spawning
//   maps_at_peak                    lines in /proc/self/maps: with
//                                   MADV_GUARD_INSTALL a guarded stack stays
//                                   one VMA and neighbours merge, so this stays
//                                   far below 65530 (mprotect guards would need
//                                   two VMAs a stack and fail near 32k tasks)
//   page_tables_MiB                 VmPTE, kernel memory not counted in RSS
//   stack_used_B                    how deep a parked task's stack is: the
//                                   whole figure rests on it staying in the
//                                   one page a task touches
//
// Boost.Fiber does the same with fewer fibers (its default stack has no guard
// page; fibers park on a fibers::condition_variable), for context.
//
// Each measurement runs in a child process of its own so that its peak RSS is
// its own; the child sends its figures back through a pipe. Run once: it is
// heavy (about 4 GiB and a few seconds).
//
//   parked_bench [--tasks=N[,N...]] [Google Benchmark flags]
//
// --tasks (for the suite, tests/bench/suite.py): park N moss tasks and, for
// N <= 100,000, N Boost.Fiber fibers, for each N given; without it, 1,000,000
// tasks and 100,000 fibers.
#include "bench_summary.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

#include "core/stack.hpp"

#include <boost/fiber/all.hpp>

#include <benchmark/benchmark.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr std::size_t default_tasks = 1'000'000;
constexpr std::size_t max_fibers = 100'000;
constexpr double target_total_gib = 4.5;

using clock_type = std::chrono::steady_clock;

// What a child measures; sent back as raw bytes (same program both sides).
struct figures {
  bool ok = false;
  char error[256] = {};
  std::uint64_t count = 0;
  std::int64_t baseline_kib = 0;  // VmHWM (= VmRSS) just before spawning
  std::int64_t peak_kib = 0;      // VmHWM after every task was parked
  std::int64_t rss_at_peak_kib = 0;
  std::int64_t pte_kib = 0;       // VmPTE with every task parked
  std::int64_t maps_at_peak = 0;
  std::int64_t stack_used = -1;   // bytes of the first task's stack in use while parked
  char guard[16] = "none";        // how moss made the guard pages
  double park_seconds = 0;        // spawn + run until parked, all of them
  double wake_seconds = 0;        // wake_all + join all
};

// status_kib() reads a "Vm...:  1234 kB" line of /proc/self/status.
std::int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') return std::atoll(line.c_str() + n + 1);
  return -1;
}

std::int64_t map_count() {
  std::ifstream in("/proc/self/maps");
  std::int64_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// reset_peak() makes VmHWM start again from the current RSS (writing 5 to
// clear_refs, Linux >= 4.0), so a forked child does not inherit its parent's
// peak.
void reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

void park_moss(figures& f, std::size_t moss_tasks) {
  moss::run([&] {
    moss::spawn([] {}).join();  // the hub, its stack and the pool exist before the baseline
    std::vector<moss::task<void>> tasks;
    tasks.reserve(moss_tasks);
    moss::detail::waiter_list wake_up;
    std::size_t parked = 0;
    reset_peak();
    f.baseline_kib = status_kib("VmHWM");

    auto start = clock_type::now();
    for (std::size_t i = 0; i < moss_tasks; ++i)
      tasks.push_back(moss::spawn([&] {
        moss::detail::waiter w;
        wake_up.push_back(w);
        ++parked;
        w.wait();
      }));
    while (parked < moss_tasks) moss::yield();
    f.park_seconds = seconds_since(start);

    f.peak_kib = status_kib("VmHWM");
    f.rss_at_peak_kib = status_kib("VmRSS");
    f.pte_kib = status_kib("VmPTE");
    f.maps_at_peak = map_count();
    f.count = wake_up.size();
    // A suspended greenlet's saved context sits at its stack pointer: what
    // lies above it is the depth of a parked task, which must stay within the
    // one page each task touches.
    const moss::detail::greenlet_impl* first = tasks.front().base_ptr();
    f.stack_used = (first->stack_.lo + first->stack_.size) - static_cast<const char*>(first->ctx_.fctx);

    start = clock_type::now();
    wake_up.wake_all();
    for (auto& t : tasks) t.join();
    f.wake_seconds = seconds_since(start);
  });
  std::snprintf(f.guard, sizeof f.guard, "%s", moss::detail::guard_mode());
  f.ok = f.count == moss_tasks;
  if (!f.ok) std::snprintf(f.error, sizeof f.error, "only %llu of %zu tasks were parked", (unsigned long long)f.count, moss_tasks);
}

void park_boost_fiber(figures& f, std::size_t fiber_count) {
  boost::fibers::mutex m;
  boost::fibers::condition_variable cv;
  bool go = false;
  std::size_t parked = 0;
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(fiber_count);
  boost::this_fiber::yield();  // the scheduler exists before the baseline
  reset_peak();
  f.baseline_kib = status_kib("VmHWM");

  auto start = clock_type::now();
  for (std::size_t i = 0; i < fiber_count; ++i)
    fibers.emplace_back([&] {
      std::unique_lock<boost::fibers::mutex> lock(m);
      ++parked;
      cv.wait(lock, [&] { return go; });
    });
  while (parked < fiber_count) boost::this_fiber::yield();
  f.park_seconds = seconds_since(start);

  f.peak_kib = status_kib("VmHWM");
  f.rss_at_peak_kib = status_kib("VmRSS");
  f.pte_kib = status_kib("VmPTE");
  f.maps_at_peak = map_count();
  f.count = parked;

  start = clock_type::now();
  {
    std::unique_lock<boost::fibers::mutex> lock(m);
    go = true;
  }
  cv.notify_all();
  for (auto& fb : fibers) fb.join();
  f.wake_seconds = seconds_since(start);
  f.ok = true;
}

// in_child() runs measure in a forked child and returns what it sent back.
figures in_child(void (*measure)(figures&, std::size_t), std::size_t count) {
  figures f;
  int fds[2];
  if (pipe(fds) != 0) {
    std::snprintf(f.error, sizeof f.error, "pipe: %s", std::strerror(errno));
    return f;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    std::snprintf(f.error, sizeof f.error, "fork: %s", std::strerror(errno));
    return f;
  }
  if (pid == 0) {
    close(fds[0]);
    figures mine;
    try {
      measure(mine, count);
    } catch (const std::exception& e) {
      std::snprintf(mine.error, sizeof mine.error, "%s", e.what());
      mine.ok = false;
    }
    ssize_t w = write(fds[1], &mine, sizeof mine);
    _exit(w == static_cast<ssize_t>(sizeof mine) ? 0 : 1);
  }
  close(fds[1]);
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof f)) {
    ssize_t n = read(fds[0], reinterpret_cast<char*>(&f) + got, sizeof f - static_cast<std::size_t>(got));
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof f)) {
    f = figures{};
    if (WIFSIGNALED(status))
      std::snprintf(f.error, sizeof f.error, "the measuring child died of signal %d (%s)", WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
    else
      std::snprintf(f.error, sizeof f.error, "the measuring child exited with %d without a report",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return f;
}

struct result {
  std::string what;
  figures f;
  bool moss = false;
};
std::vector<result> results;  // in the order measured

void report(benchmark::State& state, const figures& f) {
  if (!f.ok) {
    state.SkipWithError(f.error);
    return;
  }
  double total = static_cast<double>(f.peak_kib - f.baseline_kib) * 1024.0;
  double n = static_cast<double>(f.count);
  state.counters["tasks"] = n;
  state.counters["rss_total_MiB"] = total / (1024.0 * 1024.0);
  state.counters["rss_per_task_B"] = total / n;
  state.counters["maps_at_peak"] = static_cast<double>(f.maps_at_peak);
  if (f.stack_used >= 0) state.counters["stack_used_B"] = static_cast<double>(f.stack_used);
  state.counters["page_tables_MiB"] = static_cast<double>(f.pte_kib) / 1024.0;
  state.counters["park_ns_per_task"] = f.park_seconds * 1e9 / n;
  state.counters["wake_join_ns_per_task"] = f.wake_seconds * 1e9 / n;
  state.SetIterationTime(f.park_seconds + f.wake_seconds);
}

void parked_moss(benchmark::State& state, std::size_t n) {
  figures f;
  for (auto _ : state) f = in_child(&park_moss, n);
  report(state, f);
  results.push_back({"moss tasks:", f, true});
}

void parked_boost_fiber(benchmark::State& state, std::size_t n) {
  figures f;
  for (auto _ : state) f = in_child(&park_boost_fiber, n);
  report(state, f);
  results.push_back({"Boost.Fiber fibers:", f, false});
}

// tasks_flag() takes --tasks=N[,N...] out of argv; empty without it. Exits
// with a message on a malformed list.
std::vector<std::size_t> tasks_flag(int& argc, char** argv) {
  std::vector<std::size_t> counts;
  const std::string flag = "--tasks=";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.compare(0, flag.size(), flag) != 0) continue;
    std::string list = a.substr(flag.size());
    std::size_t pos = 0;
    while (pos <= list.size()) {
      std::size_t comma = std::min(list.find(',', pos), list.size());
      std::string item = list.substr(pos, comma - pos);
      char* end = nullptr;
      unsigned long long n = std::strtoull(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || n == 0) {
        std::fprintf(stderr, "parked_bench: --tasks wants counts like 10000,100000, not \"%s\"\n", list.c_str());
        std::exit(2);
      }
      counts.push_back(static_cast<std::size_t>(n));
      pos = comma + 1;
    }
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    --i;
  }
  return counts;
}

void print_summary(const char* what, const figures& f, bool with_target) {
  if (!f.ok) {
    std::printf("summary: %-22s FAILED: %s\n", what, f.error);
    return;
  }
  double total = static_cast<double>(f.peak_kib - f.baseline_kib) * 1024.0;
  double gib = total / (1024.0 * 1024.0 * 1024.0);
  std::printf("summary: %-22s %llu parked: peak RSS +%.2f GiB (%.0f B a task; RSS at peak %.2f GiB above baseline), "
              "page tables %.0f MiB, %lld mappings at peak, park %.0f ns a task, wake+join %.0f ns a task",
              what, (unsigned long long)f.count, gib, total / static_cast<double>(f.count),
              static_cast<double>(f.rss_at_peak_kib - f.baseline_kib) / (1024.0 * 1024.0),
              static_cast<double>(f.pte_kib) / 1024.0, (long long)f.maps_at_peak,
              f.park_seconds * 1e9 / static_cast<double>(f.count), f.wake_seconds * 1e9 / static_cast<double>(f.count));
  if (f.stack_used >= 0)
    std::printf(", %lld B of stack in use while parked, guard pages by %s", (long long)f.stack_used, f.guard);
  if (with_target) std::printf("; target <= %.1f GiB: %s", target_total_gib, moss_bench::verdict(gib <= target_total_gib));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> counts = tasks_flag(argc, argv);
  bool custom = !counts.empty();
  if (!custom) counts = {default_tasks};
  auto name = [](const char* who, std::size_t n) {
    return std::string("parked/") + who + "/" + std::to_string(n);
  };
  for (std::size_t n : counts) {
    benchmark::RegisterBenchmark(name("moss", n).c_str(), &parked_moss, n)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    std::size_t fibers = custom ? n : max_fibers;
    if (fibers <= max_fibers)
      benchmark::RegisterBenchmark(name("boost_fiber", fibers).c_str(), &parked_boost_fiber, fibers)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    else
      std::printf("parked_bench: Boost.Fiber at %zu fibers not run (at most %zu, as ever)\n", n, max_fibers);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf("\n");
  bool failed = false;
  for (const auto& r : results) {
    print_summary(r.what.c_str(), r.f, r.moss && r.f.count == default_tasks);
    failed |= !r.f.ok;
  }
  return failed ? 1 : 0;
}

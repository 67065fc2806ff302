// threadsafe_bench.cpp: handing work to a hub on another thread, next to the
// classic way of handing work to another thread:
//
//   handoff_idle        one function at a time from this thread to a hub
//                       that sleeps in epoll in between: post, eventfd wake,
//                       spawn, run; this thread spins until it has run.
//                       Against a worker thread sleeping on a
//                       std::mutex + std::condition_variable queue.
//   handoff_burst       256 functions posted back to back, then wait for
//                       the last: the cost per function when the hub is
//                       busy (no eventfd write per post). Same comparison.
//   run_in_thread       a greenlet's round trip through the thread pool.
//
// After Google Benchmark's table, "summary:" lines give the fastest
// repetition of each side and the ratio (see bench_summary.hpp).
#include "bench_summary.hpp"

#include <moss/async_result.hpp>
#include <moss/hub.hpp>
#include <moss/task.hpp>
#include <moss/threadpool.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace {

constexpr int burst = 256;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// spin_until() waits for flag, yielding the core now and then: on a busy
// machine the thread we wait for may need it.
void spin_until(const std::atomic<bool>& flag) {
  for (int spins = 0; !flag.load(std::memory_order_acquire); ++spins) {
    cpu_relax();
    if (spins % 1024 == 1023) std::this_thread::yield();
  }
}

// hub_thread: a hub running on its own thread until destroyed (the seed's
// loop.run_forever() on a second thread).
class hub_thread {
 public:
  hub_thread() {
    std::promise<moss::hub*> p;
    thread_ = std::thread([&p, stop = stop_] {
      moss::run([&] {
        p.set_value(&moss::hub::current());
        stop.get();
      });
    });
    hub_ = p.get_future().get();
  }
  ~hub_thread() {
    stop_.set();
    thread_.join();
  }
  moss::hub& hub() { return *hub_; }

 private:
  moss::async_result<void> stop_;
  std::thread thread_;
  moss::hub* hub_ = nullptr;
};

// condvar_thread: the baseline — a thread running functions from a queue
// guarded by a mutex, sleeping on a condition variable when it is empty.
class condvar_thread {
 public:
  condvar_thread() : thread_([this] { work(); }) {}
  ~condvar_thread() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(m_);
      q_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    std::unique_lock lock(m_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto f = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      f();
      lock.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::thread thread_;
};

void handoff_idle_moss(benchmark::State& state) {
  hub_thread ht;
  std::atomic<bool> done{false};
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    ht.hub().call_threadsafe([&] { done.store(true, std::memory_order_release); });
    spin_until(done);
  }
}

void handoff_idle_condvar(benchmark::State& state) {
  condvar_thread ct;
  std::atomic<bool> done{false};
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    ct.post([&] { done.store(true, std::memory_order_release); });
    spin_until(done);
  }
}

void handoff_burst_moss(benchmark::State& state) {
  hub_thread ht;
  std::atomic<bool> done{false};
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    for (int i = 1; i < burst; ++i) ht.hub().call_threadsafe([] {});
    ht.hub().call_threadsafe([&] { done.store(true, std::memory_order_release); });
    spin_until(done);
  }
  state.SetItemsProcessed(state.iterations() * burst);
}

void handoff_burst_condvar(benchmark::State& state) {
  condvar_thread ct;
  std::atomic<bool> done{false};
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    for (int i = 1; i < burst; ++i) ct.post([] {});
    ct.post([&] { done.store(true, std::memory_order_release); });
    spin_until(done);
  }
  state.SetItemsProcessed(state.iterations() * burst);
}

void run_in_thread_moss(benchmark::State& state) {
  moss::run([&] {
    for (auto _ : state) benchmark::DoNotOptimize(moss::run_in_thread([] { return 1; }));
  });
}

// per_function() prints a burst's figures per function rather than per burst.
void per_function(const moss_bench::collecting_reporter& rep, const char* what, const char* a, const char* b) {
  const auto* fa = rep.find(a);
  const auto* fb = rep.find(b);
  if (fa == nullptr || fb == nullptr) return;
  std::printf("summary: %-30s %s %.1f ns, %s %.1f ns per function: ratio %.2f\n", what, a, fa->min / burst, b,
              fb->min / burst, fa->min / fb->min);
}

}  // namespace

int main(int argc, char** argv) {
  moss_bench::add("handoff_idle/moss_call_threadsafe", &handoff_idle_moss);
  moss_bench::add("handoff_idle/mutex_condvar_thread", &handoff_idle_condvar);
  moss_bench::add("handoff_burst/moss_call_threadsafe", &handoff_burst_moss);
  moss_bench::add("handoff_burst/mutex_condvar_thread", &handoff_burst_condvar);
  moss_bench::add("run_in_thread/moss", &run_in_thread_moss);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  moss_bench::collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\nsummary: fastest repetition, CPU time per iteration\n");
  moss_bench::print_ratio(reporter, "hand-off to a sleeping thread:", "handoff_idle/moss_call_threadsafe",
                          "handoff_idle/mutex_condvar_thread", 0);
  per_function(reporter, "hand-off in bursts of 256:", "handoff_burst/moss_call_threadsafe",
               "handoff_burst/mutex_condvar_thread");
  moss_bench::print_absolute(reporter, "run_in_thread round trip:", "run_in_thread/moss", 0);
  for (const auto& e : reporter.errors()) std::printf("error: %s\n", e.c_str());
  return reporter.errors().empty() ? 0 : 1;
}

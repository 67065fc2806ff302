// sync_bench: the synchronization primitives, side by side with what users
// would otherwise reach for (issue 3's targets):
//   - queue put/get round trip between two tasks vs. Boost.Fiber's
//     buffered_channel between two fibers (target: moss >= 3x faster) and vs.
//     a std::mutex + std::condition_variable queue between two OS threads
//     (target: >= 20x faster);
//   - event set -> wake round trip between two tasks;
//   - semaphore acquire + release, uncontended.
// A "summary:" line per comparison follows the table (bench_summary.hpp),
// in wall-clock time: the thread queue's cost is cross-core latency.
#include <moss/event.hpp>
#include <moss/moss.hpp>
#include <moss/queue.hpp>
#include <moss/semaphore.hpp>

#include <boost/fiber/all.hpp>
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "bench_summary.hpp"

namespace {

void queue_round_trip_moss(benchmark::State& state) {
  moss::run([&] {
    moss::queue<int> there, back;
    auto echo = moss::spawn([&] {
      for (;;) {
        int v = there.get();
        if (v < 0) return;
        back.put(v);
      }
    });
    int i = 0;
    for (auto _ : state) {
      there.put(++i);
      benchmark::DoNotOptimize(back.get());
    }
    there.put(-1);
    echo.join();
  });
}

void queue_round_trip_boost_fiber(benchmark::State& state) {
  boost::fibers::buffered_channel<int> there(2), back(2);
  boost::fibers::fiber echo([&] {
    int v = 0;
    while (there.pop(v) == boost::fibers::channel_op_status::success) back.push(v);
  });
  int i = 0;
  for (auto _ : state) {
    there.push(++i);
    int v = 0;
    back.pop(v);
    benchmark::DoNotOptimize(v);
  }
  there.close();
  echo.join();
}

// The queue a program without green threads writes.
class locked_queue {
 public:
  void put(int v) {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(v);
    }
    cv_.notify_one();
  }
  int get() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return !q_.empty(); });
    int v = q_.front();
    q_.pop_front();
    return v;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<int> q_;
};

void queue_round_trip_threads(benchmark::State& state) {
  locked_queue there, back;
  std::thread echo([&] {
    for (;;) {
      int v = there.get();
      if (v < 0) return;
      back.put(v);
    }
  });
  int i = 0;
  for (auto _ : state) {
    there.put(++i);
    benchmark::DoNotOptimize(back.get());
  }
  there.put(-1);
  echo.join();
}

void event_round_trip_moss(benchmark::State& state) {
  moss::run([&] {
    moss::event ping, pong;
    bool stop = false;
    auto other = moss::spawn([&] {
      for (;;) {
        ping.wait();
        ping.clear();
        if (stop) return;
        pong.set();
      }
    });
    for (auto _ : state) {
      ping.set();
      pong.wait();
      pong.clear();
    }
    stop = true;
    ping.set();
    other.join();
  });
}

void semaphore_uncontended_moss(benchmark::State& state) {
  moss::run([&] {
    moss::semaphore s(1);
    for (auto _ : state) {
      s.acquire();
      s.release();
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  moss_bench::add("queue_round_trip/moss", &queue_round_trip_moss);
  moss_bench::add("queue_round_trip/boost_fiber", &queue_round_trip_boost_fiber);
  moss_bench::add("queue_round_trip/threads", &queue_round_trip_threads);
  moss_bench::add("event_round_trip/moss", &event_round_trip_moss);
  moss_bench::add("semaphore_uncontended/moss", &semaphore_uncontended_moss);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  moss_bench::collecting_reporter reporter;
  reporter.real_time = true;  // the two-thread queue costs latency, not CPU here
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\nsummary: fastest repetition, wall-clock time per iteration (run unpinned: the thread queue uses both cores)\n");
  moss_bench::print_ratio(reporter, "queue vs Boost.Fiber channel:", "queue_round_trip/moss",
                          "queue_round_trip/boost_fiber", 1.0 / 3);
  moss_bench::print_ratio(reporter, "queue vs two-thread queue:", "queue_round_trip/moss", "queue_round_trip/threads",
                          1.0 / 20);
  moss_bench::print_absolute(reporter, "event set->wake round trip:", "event_round_trip/moss", 0);
  moss_bench::print_absolute(reporter, "semaphore acquire+release:", "semaphore_uncontended/moss", 0);
  for (const auto& e : reporter.errors()) std::printf("error: %s\n", e.c_str());
  return reporter.errors().empty() ? 0 : 1;
}

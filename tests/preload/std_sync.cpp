// std_sync: the rest of the standard library's thread support that ordinary
// C++ uses, each on top of a pthread call libstdc++ makes through the PLT:
//   std::call_once      eight threads, an initializer that sleeps 50 ms
//                       (pthread_once);
//   std::shared_mutex   four shared holders at once, a unique holder alone
//                       (pthread_rwlock_*);
//   std::timed_mutex    try_lock_for while another thread holds it: false
//                       after ~100 ms (pthread_mutex_clocklock);
//   std::async          a result from another thread (std::thread);
//   sleep_for           while a thread holds the mutex and sleeps.
//
// Prints "threads T", "once_runs", "once_early", "max_shared",
// "unique_overlap", "try_lock_for R elapsed_ms E", "async V".
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "report.h"

using namespace std::chrono_literals;

namespace {

std::once_flag once;
std::atomic<int> once_runs{0}, once_early{0};
std::atomic<bool> init_done{false};

std::shared_mutex rw;
std::atomic<int> shared_in{0}, max_shared{0}, unique_in{0}, unique_overlap{0};

void note_max(std::atomic<int>& max, int v) {
  int m = max.load();
  while (v > m && !max.compare_exchange_weak(m, v)) {
  }
}

void worker(int idx) {
  std::call_once(once, [] {
    ++once_runs;
    std::this_thread::sleep_for(50ms);
    init_done = true;
  });
  if (!init_done) ++once_early;
  for (int i = 0; i < 3; ++i) {
    if (idx < 4) {
      std::shared_lock lk(rw);
      note_max(max_shared, ++shared_in);
      if (unique_in != 0) ++unique_overlap;
      std::this_thread::sleep_for(30ms);
      --shared_in;
    } else {
      std::unique_lock lk(rw);
      if (shared_in != 0 || unique_in++ != 0) ++unique_overlap;
      std::this_thread::sleep_for(10ms);
      --unique_in;
    }
    std::this_thread::sleep_for(5ms);
  }
}

}  // namespace

int main() {
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) ts.emplace_back(worker, i);
  int threads = os_threads();
  for (auto& t : ts) t.join();

  std::timed_mutex tm;
  std::atomic<bool> held{false};
  std::thread holder([&] {
    std::lock_guard lk(tm);
    held = true;
    std::this_thread::sleep_for(400ms);
  });
  while (!held) std::this_thread::sleep_for(1ms);
  auto t0 = now_monotonic();
  bool got = tm.try_lock_for(100ms);
  long waited = ms_since(t0);
  if (got) tm.unlock();
  holder.join();

  auto answer = std::async(std::launch::async, [] {
    std::this_thread::sleep_for(20ms);
    return 42;
  });

  std::printf("threads %d\nonce_runs %d\nonce_early %d\nmax_shared %d\nunique_overlap %d\n", threads,
              once_runs.load(), once_early.load(), max_shared.load(), unique_overlap.load());
  std::printf("try_lock_for %d elapsed_ms %ld\nasync %d\n", got ? 1 : 0, waited, answer.get());
  return 0;
}

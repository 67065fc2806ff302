// prodcons: std::thread producers and consumers around a small bounded queue
// guarded by std::mutex and two std::condition_variables, as ordinary C++
// code does it. Both sides block often (the queue holds 8 items), consumers
// wait with wait_for (pthread_cond_clockwait in libstdc++ 12) and producers
// pause with std::this_thread::sleep_for now and then.
//
// Prints "threads T" (OS threads while every worker is alive), "items N",
// "sum S" and "expected E".
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "report.h"

namespace {

constexpr int producers = 4, consumers = 4, per_producer = 20000;
constexpr std::size_t capacity = 8;

std::mutex mu;
std::condition_variable not_empty, not_full, go;
std::deque<long> queue;
bool started = false;

void wait_for_start() {
  std::unique_lock lk(mu);
  go.wait(lk, [] { return started; });
}

void produce(int p) {
  wait_for_start();
  for (int i = 0; i < per_producer; ++i) {
    {
      std::unique_lock lk(mu);
      not_full.wait(lk, [] { return queue.size() < capacity; });
      queue.push_back(static_cast<long>(p) * 1000000 + i);
    }
    not_empty.notify_one();
    if (i % 5000 == 4999) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void consume(long* sum, long* items) {
  wait_for_start();
  for (;;) {
    long v;
    {
      std::unique_lock lk(mu);
      while (!not_empty.wait_for(lk, std::chrono::seconds(10), [] { return !queue.empty(); })) {
        std::fprintf(stderr, "prodcons: a consumer waited 10 s for an item\n");
      }
      v = queue.front();
      queue.pop_front();
    }
    not_full.notify_one();
    if (v < 0) return;
    *sum += v;
    ++*items;
  }
}

}  // namespace

int main() {
  std::vector<std::thread> ps, cs;
  std::vector<long> sums(consumers), counts(consumers);
  for (int c = 0; c < consumers; ++c) cs.emplace_back(consume, &sums[c], &counts[c]);
  for (int p = 0; p < producers; ++p) ps.emplace_back(produce, p);
  int threads = os_threads();
  {
    std::lock_guard lk(mu);
    started = true;
  }
  go.notify_all();
  for (auto& t : ps) t.join();
  for (int c = 0; c < consumers; ++c) {
    {
      std::unique_lock lk(mu);
      not_full.wait(lk, [] { return queue.size() < capacity; });
      queue.push_back(-1);
    }
    not_empty.notify_one();
  }
  for (auto& t : cs) t.join();
  long sum = 0, items = 0, expected = 0;
  for (int c = 0; c < consumers; ++c) sum += sums[c], items += counts[c];
  for (int p = 0; p < producers; ++p)
    for (int i = 0; i < per_producer; ++i) expected += static_cast<long>(p) * 1000000 + i;
  std::printf("threads %d\nitems %ld\nsum %ld\nexpected %ld\n", threads, items, sum, expected);
  return 0;
}

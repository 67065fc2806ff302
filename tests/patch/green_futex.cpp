// green_futex.cpp: an ordinary C++20 program (no moss header or library)
// whose threads wait the way libstdc++ waits without pthreads: on futexes,
// through syscall(2). std::atomic::wait/notify, std::latch, std::barrier and
// std::counting_semaphore, and a function-local static whose initializer
// sleeps while two other threads reach it (__cxa_guard_acquire). Under
// mossrun each of these must park the green thread, not the OS thread that
// every green thread shares (which would hang: the waker never runs). Prints
// "all ok" and exits 0; exits 1 on a wrong result.
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <latch>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::atomic<int> initializations{0};

int slow_init() {
  ++initializations;
  std::this_thread::sleep_for(100ms);  // the other threads reach the static meanwhile
  return 42;
}

int& shared_static() {
  static int value = slow_init();
  return value;
}

int os_threads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace

int main() {
  std::latch all_done(4);
  std::atomic<int> go{0};
  std::counting_semaphore<8> finished(0);
  std::barrier met(3);
  std::atomic<int> sum{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&] {
      sum += shared_static();
      met.arrive_and_wait();
      go.wait(0);
      finished.release();
      all_done.count_down();
    });
  std::this_thread::sleep_for(150ms);
  int during = os_threads();
  go = 1;
  go.notify_all();
  for (int i = 0; i < 3; ++i) finished.acquire();
  all_done.count_down();
  all_done.wait();
  for (auto& t : threads) t.join();
  auto t0 = std::chrono::steady_clock::now();
  bool got = finished.try_acquire_for(50ms);
  auto waited = std::chrono::steady_clock::now() - t0;
  bool ok = sum == 126 && initializations == 1 && !got && waited >= 45ms && during >= 1 && during <= 3;
  std::printf("sum %d initializations %d timed_out %d os_threads %d\n%s\n", sum.load(), initializations.load(), !got,
              during, ok ? "all ok" : "FAIL");
  return ok ? 0 : 1;
}

// moss_linked: a program that links libmoss.so itself, run under mossrun.
// libmoss_preload.so carries its own copy of libmoss and exports its public
// names, so the dynamic linker binds the program's moss calls to the
// preload's copy: one hub, one set of greenlets, which the hooks see. (Linked
// with libmoss.a instead, the program keeps a hidden copy of its own and its
// tasks block: woke 1, 3, 2, 4 in 1.4 s.) Three moss tasks sleep
// 1, 2 and 4 units with plain usleep() (hooked) while a pthread (a green
// thread) sleeps 3; under mossrun the whole takes 4 units, not 10, on one OS
// thread. Were there two copies of moss, the hooks would not know the
// program's greenlets and each usleep would block the thread.
//
// Prints "woke N" per sleeper in the order they wake, then "threads T"
// (OS threads while they sleep), "patched P" (moss::patch::active()) and
// "elapsed_ms E".
//
// moss_linked kill: a task waiting for a std::mutex (pthread_mutex_lock,
// hooked; a C function that cannot throw) is killed. It must get the mutex
// when it is released and then end killed at its next wait, never
// terminate the process. Prints "locked", "killed 1", "reached 0".
#include <moss/moss.hpp>
#include <moss/patch.hpp>

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "report.h"

namespace {

long unit_ms = 200;

void sleep_units(int units) {
  usleep(static_cast<useconds_t>(units * unit_ms * 1000));
  std::printf("woke %d\n", units);
  std::fflush(stdout);
}

void* thread_main(void*) {
  sleep_units(3);
  return nullptr;
}

}  // namespace

int kill_in_mutex_wait() {
  return moss::run([] {
    std::mutex mu;
    bool reached = false;
    mu.lock();
    auto t = moss::spawn([&] {
      std::lock_guard<std::mutex> hold(mu);  // parks: main holds it
      std::printf("locked\n");
      moss::sleep(std::chrono::seconds(5));  // the kill is raised here
      reached = true;
    });
    moss::sleep(std::chrono::milliseconds(50));
    t.kill(false);  // it waits in pthread_mutex_lock: the kill waits for it
    moss::sleep(std::chrono::milliseconds(50));
    mu.unlock();
    t.join();
    std::printf("killed %d\nreached %d\n", t.killed() ? 1 : 0, reached ? 1 : 0);
    return 0;
  });
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "kill") == 0) return kill_in_mutex_wait();
  if (argc > 1) unit_ms = std::atol(argv[1]);
  timespec t0 = now_monotonic();
  return moss::run([&] {
    pthread_t t;
    if (pthread_create(&t, nullptr, thread_main, nullptr) != 0) return 1;
    auto a = moss::spawn(sleep_units, 1), b = moss::spawn(sleep_units, 2), c = moss::spawn(sleep_units, 4);
    moss::sleep(std::chrono::milliseconds(unit_ms / 2));
    int threads = os_threads();
    moss::joinall({a, b, c});
    pthread_join(t, nullptr);
    std::printf("threads %d\npatched %d\nelapsed_ms %ld\n", threads, moss::patch::active() ? 1 : 0, ms_since(t0));
    return 0;
  });
}

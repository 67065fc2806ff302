// native_thread.cpp: see native_thread.hpp.
#include "thread/native_thread.hpp"

#include <atomic>
#include <new>

#include <dlfcn.h>
#include <pthread.h>

namespace moss::detail {
namespace {

using create_fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

create_fn real_create() noexcept {
  static constinit std::atomic<create_fn> slot{nullptr};
  create_fn f = slot.load(std::memory_order_relaxed);
  if (f == nullptr) {
    f = reinterpret_cast<create_fn>(dlsym(RTLD_NEXT, "pthread_create"));
    if (f == nullptr) f = &pthread_create;  // nothing after us: ours is libc's
    slot.store(f, std::memory_order_relaxed);
  }
  return f;
}

struct start {
  void (*fn)(void*);
  void* arg;
};

void* trampoline(void* p) {
  start s = *static_cast<start*>(p);
  delete static_cast<start*>(p);
  s.fn(s.arg);
  return nullptr;
}

}  // namespace

int start_native_thread(void (*fn)(void*), void* arg) noexcept {
  auto* s = new (std::nothrow) start{fn, arg};
  if (s == nullptr) return ENOMEM;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t id;
  int r = real_create()(&id, &attr, &trampoline, s);
  pthread_attr_destroy(&attr);
  if (r != 0) delete s;
  return r;
}

}  // namespace moss::detail

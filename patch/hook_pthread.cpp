// hook_pthread.cpp: green pthreads — threads, joins, exit, cancellation,
// thread-specific data, once, names, and the functions that take a pthread_t.
//
// A green pthread_t is the address of its green_thread block (green.hpp);
// main keeps the OS thread's own pthread_t, keys and signal identity. A
// function that acts on an OS thread (scheduling, affinity, CPU clock,
// signals other than 0) applies to the OS thread a green thread runs on.
#include "green.hpp"
#include "real.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/error.hpp>
#include <moss/hub.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_set>

#include <linux/futex.h>
#include <sched.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(pthread_create, int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*))
MOSS_REAL(pthread_join, int (*)(pthread_t, void**))
MOSS_REAL(pthread_tryjoin_np, int (*)(pthread_t, void**))
MOSS_REAL(pthread_timedjoin_np, int (*)(pthread_t, void**, const timespec*))
MOSS_REAL(pthread_clockjoin_np, int (*)(pthread_t, void**, clockid_t, const timespec*))
MOSS_REAL(pthread_detach, int (*)(pthread_t))
MOSS_REAL(pthread_exit, void (*)(void*))
MOSS_REAL(pthread_self, pthread_t (*)())
MOSS_REAL(pthread_kill, int (*)(pthread_t, int))
MOSS_REAL(pthread_sigqueue, int (*)(pthread_t, int, const sigval))
MOSS_REAL(pthread_cancel, int (*)(pthread_t))
MOSS_REAL(pthread_setcancelstate, int (*)(int, int*))
MOSS_REAL(pthread_setcanceltype, int (*)(int, int*))
MOSS_REAL(pthread_testcancel, void (*)())
MOSS_REAL(pthread_key_create, int (*)(pthread_key_t*, void (*)(void*)))
MOSS_REAL(pthread_key_delete, int (*)(pthread_key_t))
MOSS_REAL(pthread_getspecific, void* (*)(pthread_key_t))
MOSS_REAL(pthread_setspecific, int (*)(pthread_key_t, const void*))
MOSS_REAL(pthread_once, int (*)(pthread_once_t*, void (*)()))
MOSS_REAL(pthread_setname_np, int (*)(pthread_t, const char*))
MOSS_REAL(pthread_getname_np, int (*)(pthread_t, char*, size_t))
MOSS_REAL(pthread_getattr_np, int (*)(pthread_t, pthread_attr_t*))
MOSS_REAL(pthread_getcpuclockid, int (*)(pthread_t, clockid_t*))
MOSS_REAL(pthread_setschedparam, int (*)(pthread_t, int, const sched_param*))
MOSS_REAL(pthread_getschedparam, int (*)(pthread_t, int*, sched_param*))
MOSS_REAL(pthread_setschedprio, int (*)(pthread_t, int))
MOSS_REAL(pthread_setaffinity_np, int (*)(pthread_t, size_t, const cpu_set_t*))
MOSS_REAL(pthread_getaffinity_np, int (*)(pthread_t, size_t, cpu_set_t*))
MOSS_REAL(sched_yield, int (*)())
MOSS_REAL(__pthread_register_cancel, void (*)(__pthread_unwind_buf_t*))
MOSS_REAL(__pthread_register_cancel_defer, void (*)(__pthread_unwind_buf_t*))
MOSS_REAL(__pthread_unregister_cancel, void (*)(__pthread_unwind_buf_t*))
MOSS_REAL(__pthread_unregister_cancel_restore, void (*)(__pthread_unwind_buf_t*))
MOSS_REAL(__pthread_unwind_next, void (*)(__pthread_unwind_buf_t*))

// live counts green threads that have not finished; pthread_exit from main
// waits for it to reach zero (all_done).
std::size_t live = 0;
int all_done_tag;
std::uint64_t created = 0;  // names green threads "pthread-<n>" until they name themselves

// The OS thread a green thread runs on, for functions that act on one.
pthread_t os_thread(pthread_t t) noexcept { return as_green(t) != nullptr ? real_pthread_self()() : t; }

// Keys: glibc makes the key (so native threads and main use glibc's own
// storage); green threads keep their values in their block, tagged with the
// key's generation so a deleted and re-made key starts empty.
struct key_slot {
  unsigned generation = 0;
  void (*destructor)(void*) = nullptr;
};
key_slot keys[PTHREAD_KEYS_MAX];

void run_key_destructors(green_thread* gt) {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool any = false;
    for (std::size_t k = 0; k < gt->values.size(); ++k) {
      auto& [gen, value] = gt->values[k];
      if (value == nullptr || gen != keys[k].generation || keys[k].destructor == nullptr) continue;
      void* v = std::exchange(value, nullptr);
      keys[k].destructor(v);
      any = true;
    }
    if (!any) return;
  }
}

void destroy(green_thread* gt) noexcept {
  gt->magic = 0;
  delete gt;
}

void finish(green_thread* gt) noexcept {
  gt->finished = true;
  gt->g = nullptr;
  gt->joiners.wake_all();
  if (--live == 0) wake_all_at(&all_done_tag);
  if (gt->detached) destroy(gt);
}

void run_green(green_thread* gt) noexcept {
  detail::greenlet_impl* self = detail::current_impl();
  self->user_data_ = gt;
  gt->g = self;
  if (gt->name[0] != '\0') self->name_ = gt->name;  // named before it started
  try {
    try {
      gt->result = gt->start(gt->arg);
    } catch (const green_exit& e) {
      gt->result = e.value;
    } catch (const moss::greenlet_exit&) {
      gt->result = PTHREAD_CANCELED;  // the hub is being torn down
    }
    try {
      run_key_destructors(gt);
    } catch (const green_exit&) {
    } catch (const moss::greenlet_exit&) {
    }
  } catch (...) {
    // As for a native thread: an exception leaving the thread's function ends
    // the program.
    std::terminate();
  }
  self->user_data_ = nullptr;
  finish(gt);
}

// spawn_here() says whether pthread_create should make a green thread: green
// threads are on and the caller runs on a thread with a hub (main's), or is
// main itself before the hub exists (a constructor making a thread).
bool spawn_here() {
  if (!green_threads) return false;
  if (interpose::has_hub()) return interpose::may_park();
  if (getpid() != static_cast<pid_t>(syscall(SYS_gettid))) return false;
  moss::hub::current();
  return true;
}

std::size_t default_stack_size() noexcept {
  pthread_attr_t a;
  std::size_t size = 8u << 20;
  if (pthread_getattr_default_np(&a) == 0) {
    pthread_attr_getstacksize(&a, &size);
    pthread_attr_destroy(&a);
  }
  return size;
}

int join_until(green_thread* gt, void** ret, const detail::time_point* deadline, bool try_only) {
  if (gt == current_green()) return EDEADLK;
  if (gt->detached || gt->joined) return EINVAL;
  if (!gt->finished) {
    if (try_only) return EBUSY;
    gt->joined = true;
    try {
      while (!gt->finished) {
        detail::waiter w;
        gt->joiners.push_back(w);
        if (!park(w, deadline != nullptr ? *deadline : detail::no_deadline, "pthread_join", true) && !gt->finished &&
            deadline != nullptr && detail::clock::now() >= *deadline) {
          gt->joined = false;
          return ETIMEDOUT;
        }
      }
    } catch (...) {
      gt->joined = false;  // cancelled while joining: the target stays joinable
      throw;
    }
  }
  if (ret != nullptr) *ret = gt->result;
  destroy(gt);
  return 0;
}

int futex_wake_all(int* addr) noexcept {
  return static_cast<int>(syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0));
}

// Addresses of once controls whose routine a green thread of this hub is running.
thread_local std::unordered_set<const void*> once_running;

// In a forked child only the thread that called fork() goes on (POSIX):
// the other green threads stay parked forever, so they no longer count.
void after_fork_in_child() noexcept {
  forget_waits_after_fork();
  live = current_green() != nullptr ? 1 : 0;
}

[[gnu::constructor]] void watch_forks() { pthread_atfork(nullptr, nullptr, &after_fork_in_child); }

}  // namespace

}  // namespace moss::patch

using namespace moss::patch;
namespace detail = moss::detail;

extern "C" {

int pthread_create(pthread_t* out, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  bool green = false;
  try {
    green = spawn_here();
  } catch (...) {
    return EAGAIN;
  }
  if (!green) return real_pthread_create()(out, attr, fn, arg);
  std::size_t size = 0;
  int detach = PTHREAD_CREATE_JOINABLE;
  if (attr != nullptr) {
    pthread_attr_getstacksize(attr, &size);
    pthread_attr_getdetachstate(attr, &detach);
  }
  if (size == 0) size = default_stack_size();
  size = std::clamp<std::size_t>(size, 16 * 1024, std::size_t{1} << 30);
  auto* gt = new (std::nothrow) green_thread;
  if (gt == nullptr) return EAGAIN;
  gt->start = fn;
  gt->arg = arg;
  gt->detached = detach == PTHREAD_CREATE_DETACHED;
  try {
    moss::spawn_options o;
    o.stack_size = size;
    o.name = "pthread-" + std::to_string(++created);
    moss::spawn(o, [gt] { run_green(gt); });
  } catch (...) {
    destroy(gt);
    return EAGAIN;
  }
  ++live;
  // glibc clears this when it makes a second thread; libstdc++ reads it and,
  // while it is set, takes shortcuts only one thread may take (a static's
  // guard without the futex wait: a second green thread reaching a static
  // being initialised would get recursive_init_error).
  __libc_single_threaded = 0;
  *out = reinterpret_cast<pthread_t>(gt);
  return 0;
}

int pthread_join(pthread_t t, void** ret) {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_join()(t, ret);
  if (!green_context()) return unsupported("pthread_join of a green thread from a native thread", "it would block");
  return join_until(gt, ret, nullptr, false);
}

int pthread_tryjoin_np(pthread_t t, void** ret) {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_tryjoin_np()(t, ret);
  return join_until(gt, ret, nullptr, true);
}

int pthread_clockjoin_np(pthread_t t, void** ret, clockid_t c, const timespec* abstime) {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_clockjoin_np()(t, ret, c, abstime);
  if (!green_context()) return unsupported("pthread_clockjoin_np of a green thread from a native thread", "it would block");
  detail::time_point deadline;
  if (!deadline_from(c, abstime, &deadline)) return EINVAL;
  return join_until(gt, ret, &deadline, false);
}

int pthread_timedjoin_np(pthread_t t, void** ret, const timespec* abstime) {
  if (as_green(t) == nullptr) return real_pthread_timedjoin_np()(t, ret, abstime);
  return pthread_clockjoin_np(t, ret, CLOCK_REALTIME, abstime);
}

int pthread_detach(pthread_t t) {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_detach()(t);
  if (gt->detached || gt->joined) return EINVAL;
  if (gt->finished) destroy(gt);
  else gt->detached = true;
  return 0;
}

[[noreturn]] void pthread_exit(void* value) {
  if (green_context()) {
    if (green_thread* gt = current_green()) exit_green(gt, value);
    // main: the process lives on until the last thread has ended, then
    // exits 0 (POSIX), so wait for every green thread first.
    while (live > 0) {
      detail::waiter w;
      waiters_at(&all_done_tag).push_back(w);
      try {
        park(w, detail::no_deadline, "pthread_exit (main waits for the other threads)", false);
      } catch (...) {
        break;
      }
    }
    std::exit(0);
  }
  real_pthread_exit()(value);
  __builtin_unreachable();
}

pthread_t pthread_self() noexcept {
  if (green_thread* gt = current_green()) return reinterpret_cast<pthread_t>(gt);
  return real_pthread_self()();
}

int pthread_equal(pthread_t a, pthread_t b) noexcept { return a == b; }

int pthread_kill(pthread_t t, int sig) noexcept {
  if (green_thread* gt = as_green(t)) {
    if (sig == 0) return gt->finished ? ESRCH : 0;
    return real_pthread_kill()(real_pthread_self()(), sig);  // signals are per OS thread
  }
  return real_pthread_kill()(t, sig);
}

int pthread_sigqueue(pthread_t t, int sig, const sigval value) noexcept {
  return real_pthread_sigqueue()(os_thread(t), sig, value);
}

int pthread_cancel(pthread_t t) {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_cancel()(t);
  if (!gt->finished) cancel(gt);
  return 0;
}

int pthread_setcancelstate(int state, int* old) {
  green_thread* gt = green_context() ? current_green() : nullptr;
  if (gt == nullptr) return real_pthread_setcancelstate()(state, old);
  if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
  if (old != nullptr) *old = gt->cancel_enabled ? PTHREAD_CANCEL_ENABLE : PTHREAD_CANCEL_DISABLE;
  gt->cancel_enabled = state == PTHREAD_CANCEL_ENABLE;
  return 0;
}

int pthread_setcanceltype(int type, int* old) {
  green_thread* gt = green_context() ? current_green() : nullptr;
  if (gt == nullptr) return real_pthread_setcanceltype()(type, old);
  if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
  // A green thread runs only between its own calls, so asynchronous
  // cancellation is acted upon at the next cancellation point, as deferred.
  if (old != nullptr) *old = PTHREAD_CANCEL_DEFERRED;
  return 0;
}

void pthread_testcancel() {
  if (green_context() && current_green() != nullptr) {
    test_cancel();
    return;
  }
  real_pthread_testcancel()();
}

int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) noexcept {
  int r = real_pthread_key_create()(key, destructor);
  if (r == 0 && *key < PTHREAD_KEYS_MAX) {
    __atomic_add_fetch(&keys[*key].generation, 1, __ATOMIC_RELAXED);
    keys[*key].destructor = destructor;
  }
  return r;
}

int pthread_key_delete(pthread_key_t key) noexcept {
  int r = real_pthread_key_delete()(key);
  if (r == 0 && key < PTHREAD_KEYS_MAX) {
    keys[key].destructor = nullptr;
    __atomic_add_fetch(&keys[key].generation, 1, __ATOMIC_RELAXED);
  }
  return r;
}

void* pthread_getspecific(pthread_key_t key) noexcept {
  green_thread* gt = current_green();
  if (gt == nullptr) return real_pthread_getspecific()(key);
  if (key >= gt->values.size()) return nullptr;
  auto& [gen, value] = gt->values[key];
  return gen == keys[key].generation ? value : nullptr;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
  green_thread* gt = current_green();
  if (gt == nullptr) return real_pthread_setspecific()(key, value);
  if (key >= PTHREAD_KEYS_MAX) return EINVAL;
  try {
    if (key >= gt->values.size()) gt->values.resize(key + 1);
  } catch (...) {
    return ENOMEM;
  }
  gt->values[key] = {keys[key].generation, const_cast<void*>(value)};
  return 0;
}

// glibc's pthread_once_t: 0 not run, bit 0 in progress, bit 1 done (the
// other bits are a fork generation glibc adds while in progress). A green
// thread marks "in progress" the same way, so native callers wait on the
// futex, and wakes both kinds of waiters when done.
int pthread_once(pthread_once_t* control, void (*routine)()) {
  if (!green_context()) return real_pthread_once()(control, routine);
  for (;;) {
    int s = __atomic_load_n(control, __ATOMIC_ACQUIRE);
    if ((s & 2) != 0) return 0;
    if (s == 0) {
      if (!__atomic_compare_exchange_n(control, &s, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) continue;
      once_running.insert(control);
      try {
        routine();
      } catch (...) {
        once_running.erase(control);
        __atomic_store_n(control, 0, __ATOMIC_RELEASE);
        wake_all_at(control);
        futex_wake_all(control);
        throw;
      }
      once_running.erase(control);
      __atomic_store_n(control, 2, __ATOMIC_RELEASE);
      wake_all_at(control);
      futex_wake_all(control);
      return 0;
    }
    if (once_running.count(control) == 0) return real_pthread_once()(control, routine);  // a native thread runs it
    detail::waiter w;
    waiters_at(control).push_back(w);
    park(w, detail::no_deadline, "pthread_once", false);
  }
}

int pthread_setname_np(pthread_t t, const char* name) noexcept {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_setname_np()(t, name);
  if (std::strlen(name) >= sizeof gt->name) return ERANGE;
  std::strcpy(gt->name, name);
  if (gt->g != nullptr) {
    try {
      gt->g->name_ = name;
    } catch (...) {
    }
  }
  return 0;
}

int pthread_getname_np(pthread_t t, char* buf, size_t len) noexcept {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_getname_np()(t, buf, len);
  if (gt->name[0] == '\0') return real_pthread_getname_np()(real_pthread_self()(), buf, len);
  if (len < std::strlen(gt->name) + 1) return ERANGE;
  std::strcpy(buf, gt->name);
  return 0;
}

int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) noexcept {
  green_thread* gt = as_green(t);
  if (gt == nullptr) return real_pthread_getattr_np()(t, attr);
  if (gt->g == nullptr) return ESRCH;
  pthread_attr_init(attr);
  pthread_attr_setstack(attr, gt->g->stack_.lo, gt->g->stack_.size);
  pthread_attr_setdetachstate(attr, gt->detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
  return 0;
}

int pthread_getcpuclockid(pthread_t t, clockid_t* c) noexcept { return real_pthread_getcpuclockid()(os_thread(t), c); }
int pthread_setschedparam(pthread_t t, int policy, const sched_param* p) noexcept {
  return real_pthread_setschedparam()(os_thread(t), policy, p);
}
int pthread_getschedparam(pthread_t t, int* policy, sched_param* p) noexcept {
  return real_pthread_getschedparam()(os_thread(t), policy, p);
}
int pthread_setschedprio(pthread_t t, int prio) noexcept { return real_pthread_setschedprio()(os_thread(t), prio); }
int pthread_setaffinity_np(pthread_t t, size_t n, const cpu_set_t* set) noexcept {
  return real_pthread_setaffinity_np()(os_thread(t), n, set);
}
int pthread_getaffinity_np(pthread_t t, size_t n, cpu_set_t* set) noexcept {
  return real_pthread_getaffinity_np()(os_thread(t), n, set);
}

// pthread_cleanup_push/pop of C code built without exceptions.
void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
  green_thread* gt = current_green();
  if (gt == nullptr) return real___pthread_register_cancel()(buf);
  buf->__pad[0] = gt->cleanup_top;
  gt->cleanup_top = buf;
}
void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf) {
  green_thread* gt = current_green();
  if (gt == nullptr) return real___pthread_register_cancel_defer()(buf);
  __pthread_register_cancel(buf);
}
void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
  green_thread* gt = current_green();
  if (gt == nullptr) return real___pthread_unregister_cancel()(buf);
  gt->cleanup_top = buf->__pad[0];
}
void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf) {
  green_thread* gt = current_green();
  if (gt == nullptr) return real___pthread_unregister_cancel_restore()(buf);
  __pthread_unregister_cancel(buf);
}
[[noreturn]] void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
  if (green_thread* gt = current_green()) continue_exit(gt);
  real___pthread_unwind_next()(buf);
  __builtin_unreachable();
}

int sched_yield() noexcept {
  if (!green_context()) return real_sched_yield()();
  try {
    moss::yield();
  } catch (...) {
  }
  return 0;
}

}  // extern "C"

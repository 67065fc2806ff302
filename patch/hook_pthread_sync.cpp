// hook_pthread_sync.cpp: green mutexes, condition variables, rwlocks,
// barriers, spinlocks and semaphores.
//
// Mutexes, rwlocks, spinlocks and semaphores keep glibc's layout and state:
// a green thread takes them with glibc's own try-lock and parks on the hub
// while another green thread holds them, so native threads (moss's pool,
// threads libc makes) can share them. Every green thread of an OS thread has
// the same TID, which glibc uses as the owner of recursive and error-checking
// mutexes, so the owning greenlet is recorded too: in the mutex's robust-list
// link, which glibc uses only for robust mutexes (those, priority-inheriting,
// priority-protected and process-shared ones stay native). A green rwlock
// counts its green holders in a padding word glibc never touches.
//
// Condition variables and barriers are green-only waits: a green wait never
// enters glibc's condvar, a signal wakes green waiters and then glibc's own.
#include "green.hpp"
#include "hooks.hpp"
#include "real.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/time.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <semaphore.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(pthread_mutex_lock, int (*)(pthread_mutex_t*))
MOSS_REAL(pthread_mutex_trylock, int (*)(pthread_mutex_t*))
MOSS_REAL(pthread_mutex_timedlock, int (*)(pthread_mutex_t*, const timespec*))
MOSS_REAL(pthread_mutex_clocklock, int (*)(pthread_mutex_t*, clockid_t, const timespec*))
MOSS_REAL(pthread_mutex_unlock, int (*)(pthread_mutex_t*))
MOSS_REAL(pthread_cond_wait, int (*)(pthread_cond_t*, pthread_mutex_t*))
MOSS_REAL(pthread_cond_timedwait, int (*)(pthread_cond_t*, pthread_mutex_t*, const timespec*))
MOSS_REAL(pthread_cond_clockwait, int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*))
MOSS_REAL(pthread_cond_signal, int (*)(pthread_cond_t*))
MOSS_REAL(pthread_cond_broadcast, int (*)(pthread_cond_t*))
MOSS_REAL(pthread_rwlock_rdlock, int (*)(pthread_rwlock_t*))
MOSS_REAL(pthread_rwlock_tryrdlock, int (*)(pthread_rwlock_t*))
MOSS_REAL(pthread_rwlock_timedrdlock, int (*)(pthread_rwlock_t*, const timespec*))
MOSS_REAL(pthread_rwlock_clockrdlock, int (*)(pthread_rwlock_t*, clockid_t, const timespec*))
MOSS_REAL(pthread_rwlock_wrlock, int (*)(pthread_rwlock_t*))
MOSS_REAL(pthread_rwlock_trywrlock, int (*)(pthread_rwlock_t*))
MOSS_REAL(pthread_rwlock_timedwrlock, int (*)(pthread_rwlock_t*, const timespec*))
MOSS_REAL(pthread_rwlock_clockwrlock, int (*)(pthread_rwlock_t*, clockid_t, const timespec*))
MOSS_REAL(pthread_rwlock_unlock, int (*)(pthread_rwlock_t*))
MOSS_REAL(pthread_barrier_init, int (*)(pthread_barrier_t*, const pthread_barrierattr_t*, unsigned))
MOSS_REAL(pthread_barrier_destroy, int (*)(pthread_barrier_t*))
MOSS_REAL(pthread_barrier_wait, int (*)(pthread_barrier_t*))
MOSS_REAL(pthread_spin_lock, int (*)(pthread_spinlock_t*))
MOSS_REAL(pthread_spin_trylock, int (*)(pthread_spinlock_t*))
MOSS_REAL(sem_wait, int (*)(sem_t*))
MOSS_REAL(sem_trywait, int (*)(sem_t*))
MOSS_REAL(sem_timedwait, int (*)(sem_t*, const timespec*))
MOSS_REAL(sem_clockwait, int (*)(sem_t*, clockid_t, const timespec*))
MOSS_REAL(sem_post, int (*)(sem_t*))

using detail::greenlet_impl;
using detail::time_point;

// glibc's mutex kind bits (the low two are the type).
constexpr int kind_type_mask = 3;
constexpr int kind_robust = 16, kind_pi = 32, kind_pp = 64, kind_pshared = 128;

bool stays_native(const pthread_mutex_t* m) noexcept {
  return (m->__data.__kind & (kind_robust | kind_pi | kind_pp | kind_pshared)) != 0;
}
int type_of(const pthread_mutex_t* m) noexcept { return m->__data.__kind & kind_type_mask; }

greenlet_impl* owner_of(const pthread_mutex_t* m) noexcept {
  return reinterpret_cast<greenlet_impl*>(m->__data.__list.__next);
}
void set_owner(pthread_mutex_t* m, greenlet_impl* g) noexcept {
  m->__data.__list.__next = reinterpret_cast<__pthread_internal_list*>(g);
}

timespec monotonic_abs(time_point deadline) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

bool expired(const time_point* deadline) noexcept { return deadline != nullptr && detail::clock::now() >= *deadline; }

// green_lock() takes m for the calling green thread, waiting until the
// deadline (null: none).
int green_lock(pthread_mutex_t* m, const time_point* deadline) {
  if (stays_native(m)) {
    int r = real_pthread_mutex_trylock()(m);
    if (r != EBUSY) return r;
    if (deadline == nullptr) return real_pthread_mutex_lock()(m);
    timespec ts = monotonic_abs(*deadline);
    return real_pthread_mutex_clocklock()(m, CLOCK_MONOTONIC, &ts);
  }
  greenlet_impl* me = detail::current_impl();
  deferred_interrupt defer;
  for (;;) {
    greenlet_impl* owner = owner_of(m);
    if (owner == me && type_of(m) == PTHREAD_MUTEX_RECURSIVE) return real_pthread_mutex_lock()(m);  // glibc counts
    if (owner == me && type_of(m) == PTHREAD_MUTEX_ERRORCHECK) return EDEADLK;
    if (owner == nullptr) {
      int r = real_pthread_mutex_trylock()(m);
      if (r == 0) {
        set_owner(m, me);
        return 0;
      }
      if (r != EBUSY) return r;
      // Held, and not by a green thread: a native thread holds it (briefly,
      // as moss's own threads do). Wait for it for real.
      if (deadline == nullptr) r = real_pthread_mutex_lock()(m);
      else {
        timespec ts = monotonic_abs(*deadline);
        r = real_pthread_mutex_clocklock()(m, CLOCK_MONOTONIC, &ts);
      }
      if (r == 0) set_owner(m, me);
      return r;
    }
    detail::waiter w;
    waiters_at(m).push_back(w);
    try {
      if (!park(w, deadline != nullptr ? *deadline : detail::no_deadline, "pthread_mutex_lock", false, &defer) &&
          expired(deadline)) {
        forget_if_empty(m);
        return ETIMEDOUT;
      }
    } catch (...) {
      forget_if_empty(m);
      if (owner_of(m) == nullptr) wake_one_at(m);  // pass on a wake-up this waiter may have taken
      throw;
    }
  }
}

int green_unlock(pthread_mutex_t* m) {
  if (stays_native(m)) return real_pthread_mutex_unlock()(m);
  greenlet_impl* owner = owner_of(m);
  int type = type_of(m);
  if ((type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) && owner != detail::current_impl()) return EPERM;
  int r = real_pthread_mutex_unlock()(m);
  if (r != 0) return r;
  if (m->__data.__owner == 0) {  // released (a recursive one: its last level)
    set_owner(m, nullptr);
    wake_one_at(m);
  }
  return 0;
}

// relock() takes m back after a condition wait, whatever happens.
void relock(pthread_mutex_t* m) {
  for (;;) {
    try {
      green_lock(m, nullptr);
      return;
    } catch (...) {
      // A kill while re-acquiring: keep trying; it is raised at the next wait.
    }
  }
}

clockid_t clock_of(const pthread_cond_t* c) noexcept {
  return (c->__data.__wrefs & 2) != 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

bool process_shared(const pthread_cond_t* c) noexcept { return (c->__data.__wrefs & 1) != 0; }

// A process-shared condvar is signalled from other processes, which only
// glibc's own wait sees: it stays native (and blocks the OS thread). Such a
// wait, like one for a held process-shared or robust mutex, says nothing on
// the program's stderr: --monitor-ms reports a hub blocked that way, with the
// blocking call's backtrace.
bool native_cond(pthread_cond_t* c) noexcept {
  if (!green_context()) return true;
  return process_shared(c);
}

int green_cond_wait(pthread_cond_t* c, pthread_mutex_t* m, const time_point* deadline) {
  int type = type_of(m);
  if (!stays_native(m) && (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) &&
      owner_of(m) != detail::current_impl())
    return EPERM;
  detail::waiter w;
  waiters_at(c).push_back(w);
  green_unlock(m);
  bool woken = false;
  try {
    woken = park(w, deadline != nullptr ? *deadline : detail::no_deadline, "pthread_cond_wait", true);
  } catch (...) {
    forget_if_empty(c);
    relock(m);  // POSIX: a cancelled waiter holds the mutex again when its cleanup runs
    throw;
  }
  forget_if_empty(c);
  relock(m);
  return woken || !expired(deadline) ? 0 : ETIMEDOUT;
}

// rwlocks: the green holders are counted in __pad2.
unsigned long& green_holders(pthread_rwlock_t* rw) noexcept { return rw->__data.__pad2; }

int green_rwlock(pthread_rwlock_t* rw, bool write, const time_point* deadline) {
  auto try_fn = write ? real_pthread_rwlock_trywrlock() : real_pthread_rwlock_tryrdlock();
  deferred_interrupt defer;
  for (;;) {
    int r = try_fn(rw);
    if (r == 0) {
      ++green_holders(rw);
      return 0;
    }
    if (r != EBUSY) return r;
    if (green_holders(rw) == 0) {  // a native thread holds it
      if (deadline == nullptr) r = write ? real_pthread_rwlock_wrlock()(rw) : real_pthread_rwlock_rdlock()(rw);
      else {
        timespec ts = monotonic_abs(*deadline);
        r = write ? real_pthread_rwlock_clockwrlock()(rw, CLOCK_MONOTONIC, &ts)
                  : real_pthread_rwlock_clockrdlock()(rw, CLOCK_MONOTONIC, &ts);
      }
      if (r == 0) ++green_holders(rw);
      return r;
    }
    detail::waiter w;
    waiters_at(rw).push_back(w);
    try {
      if (!park(w, deadline != nullptr ? *deadline : detail::no_deadline, write ? "pthread_rwlock_wrlock" : "pthread_rwlock_rdlock",
                false, &defer) &&
          expired(deadline)) {
        forget_if_empty(rw);
        return ETIMEDOUT;
      }
    } catch (...) {
      forget_if_empty(rw);
      wake_all_at(rw);
      throw;
    }
  }
}

// Barriers are moss's own; the state lives in the pthread_barrier_t.
struct green_barrier {
  static constexpr unsigned live = 0x6d627272;
  unsigned count;
  unsigned arrived;
  unsigned generation;
  unsigned magic;
};
static_assert(sizeof(green_barrier) <= sizeof(pthread_barrier_t));

green_barrier* as_barrier(pthread_barrier_t* b) noexcept { return reinterpret_cast<green_barrier*>(b); }

// A process-shared semaphore (sem_init with pshared != 0, or sem_open) is
// posted from other processes, whose posts no green wait of ours sees. Its
// word is glibc's `struct new_sem` {data, private, pad} (64-bit atomics, as on
// x86-64 and aarch64): `private` is the value glibc XORs into its futex calls,
// 0 for a private semaphore and FUTEX_PRIVATE_FLAG (128) for a shared one.
constexpr std::size_t sem_private_offset = 8;
constexpr int futex_private_flag = 128;
static_assert(sizeof(void*) == 8, "glibc's 64-bit sem_t layout");
static_assert(sem_private_offset + sizeof(int) <= sizeof(sem_t));

bool process_shared(const sem_t* s) noexcept {
  int flag = 0;
  std::memcpy(&flag, reinterpret_cast<const char*>(s) + sem_private_offset, sizeof flag);
  return flag == futex_private_flag;
}

// A green wait on a process-shared semaphore must not block the OS thread
// (the post may need another green thread of this process to run first, as
// Python's queue feeder thread), and glibc's futex wake reaches only
// futex sleepers: the waiter polls with sem_trywait between naps that start
// at 0.5 ms and double to 20 ms. The doubling keeps a short wait short (a post
// is seen within the time already waited, plus 0.5 ms); the cap bounds the
// lateness of a long wait at 20 ms, at 50 wake-ups a second per waiter
// (measured: about 0.2% of a core), the same period pause() polls at. A post
// from this process's green threads wakes the waiter at once (sem_post wakes
// the address's list).
constexpr auto shared_sem_first_nap = std::chrono::microseconds(500);
constexpr auto shared_sem_max_nap = std::chrono::milliseconds(20);

int green_shared_sem_wait(sem_t* s, const time_point* deadline) {
  std::chrono::microseconds nap = shared_sem_first_nap;
  for (;;) {
    if (real_sem_trywait()(s) == 0) return 0;
    if (errno != EAGAIN) return -1;
    time_point now = detail::clock::now();
    if (deadline != nullptr && now >= *deadline) {
      errno = ETIMEDOUT;
      return -1;
    }
    time_point until = now + nap;
    if (deadline != nullptr && *deadline < until) until = *deadline;
    detail::waiter w;
    waiters_at(s).push_back(w);
    try {
      park(w, until, "sem_wait (process-shared)", true);
    } catch (...) {
      forget_if_empty(s);
      throw;
    }
    forget_if_empty(s);
    nap = std::min<std::chrono::microseconds>(nap * 2, shared_sem_max_nap);
  }
}

int green_sem_wait(sem_t* s, const time_point* deadline) {
  if (process_shared(s)) return green_shared_sem_wait(s, deadline);
  for (;;) {
    if (real_sem_trywait()(s) == 0) return 0;
    if (errno != EAGAIN) return -1;
    detail::waiter w;
    waiters_at(s).push_back(w);
    bool woken = false;
    try {
      woken = park(w, deadline != nullptr ? *deadline : detail::no_deadline, "sem_wait", true);
    } catch (...) {
      forget_if_empty(s);
      throw;
    }
    if (!woken && expired(deadline)) {
      forget_if_empty(s);
      if (real_sem_trywait()(s) == 0) return 0;
      errno = ETIMEDOUT;
      return -1;
    }
  }
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;
namespace detail = moss::detail;

extern "C" {

// ---- mutexes
int pthread_mutex_lock(pthread_mutex_t* m) noexcept {
  if (!green_context()) return real_pthread_mutex_lock()(m);
  return green_lock(m, nullptr);
}

int pthread_mutex_trylock(pthread_mutex_t* m) noexcept {
  if (!green_context() || stays_native(m)) return real_pthread_mutex_trylock()(m);
  detail::greenlet_impl* me = detail::current_impl();
  detail::greenlet_impl* owner = owner_of(m);
  if (owner == me && type_of(m) == PTHREAD_MUTEX_RECURSIVE) return real_pthread_mutex_trylock()(m);
  if (owner != nullptr) return EBUSY;
  int r = real_pthread_mutex_trylock()(m);
  if (r == 0) set_owner(m, me);
  return r;
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t c, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_mutex_clocklock()(m, c, abstime);
  detail::time_point deadline;
  if (!deadline_from(c, abstime, &deadline)) return EINVAL;
  return green_lock(m, &deadline);
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_mutex_timedlock()(m, abstime);
  return pthread_mutex_clocklock(m, CLOCK_REALTIME, abstime);
}

int pthread_mutex_unlock(pthread_mutex_t* m) noexcept {
  if (!green_context()) return real_pthread_mutex_unlock()(m);
  return green_unlock(m);
}

// ---- condition variables
int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  if (native_cond(c)) return real_pthread_cond_wait()(c, m);
  return green_cond_wait(c, m, nullptr);
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime) {
  if (native_cond(c)) return real_pthread_cond_clockwait()(c, m, clock, abstime);
  detail::time_point deadline;
  if (!deadline_from(clock, abstime, &deadline)) return EINVAL;
  return green_cond_wait(c, m, &deadline);
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* abstime) {
  if (native_cond(c)) return real_pthread_cond_timedwait()(c, m, abstime);
  return pthread_cond_clockwait(c, m, clock_of(c), abstime);
}

int pthread_cond_signal(pthread_cond_t* c) noexcept {
  if (green_threads) wake_one_at(c);
  return real_pthread_cond_signal()(c);
}

int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
  if (green_threads) wake_all_at(c);
  return real_pthread_cond_broadcast()(c);
}

// ---- rwlocks
int pthread_rwlock_rdlock(pthread_rwlock_t* rw) noexcept {
  if (!green_context()) return real_pthread_rwlock_rdlock()(rw);
  return green_rwlock(rw, false, nullptr);
}
int pthread_rwlock_wrlock(pthread_rwlock_t* rw) noexcept {
  if (!green_context()) return real_pthread_rwlock_wrlock()(rw);
  return green_rwlock(rw, true, nullptr);
}
int pthread_rwlock_tryrdlock(pthread_rwlock_t* rw) noexcept {
  int r = real_pthread_rwlock_tryrdlock()(rw);
  if (r == 0 && green_context()) ++green_holders(rw);
  return r;
}
int pthread_rwlock_trywrlock(pthread_rwlock_t* rw) noexcept {
  int r = real_pthread_rwlock_trywrlock()(rw);
  if (r == 0 && green_context()) ++green_holders(rw);
  return r;
}
int pthread_rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t c, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_rwlock_clockrdlock()(rw, c, abstime);
  detail::time_point deadline;
  if (!deadline_from(c, abstime, &deadline)) return EINVAL;
  return green_rwlock(rw, false, &deadline);
}
int pthread_rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t c, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_rwlock_clockwrlock()(rw, c, abstime);
  detail::time_point deadline;
  if (!deadline_from(c, abstime, &deadline)) return EINVAL;
  return green_rwlock(rw, true, &deadline);
}
int pthread_rwlock_timedrdlock(pthread_rwlock_t* rw, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_rwlock_timedrdlock()(rw, abstime);
  return pthread_rwlock_clockrdlock(rw, CLOCK_REALTIME, abstime);
}
int pthread_rwlock_timedwrlock(pthread_rwlock_t* rw, const timespec* abstime) noexcept {
  if (!green_context()) return real_pthread_rwlock_timedwrlock()(rw, abstime);
  return pthread_rwlock_clockwrlock(rw, CLOCK_REALTIME, abstime);
}
int pthread_rwlock_unlock(pthread_rwlock_t* rw) noexcept {
  int r = real_pthread_rwlock_unlock()(rw);
  if (r == 0 && green_context()) {
    if (green_holders(rw) > 0) --green_holders(rw);
    wake_all_at(rw);
  }
  return r;
}

// ---- barriers
int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) noexcept {
  int pshared = PTHREAD_PROCESS_PRIVATE;
  if (attr != nullptr) pthread_barrierattr_getpshared(attr, &pshared);
  // A process-shared barrier is glibc's (other processes wait on it too).
  if (!green_threads || pshared == PTHREAD_PROCESS_SHARED) return real_pthread_barrier_init()(b, attr, count);
  if (count == 0) return EINVAL;
  *as_barrier(b) = green_barrier{count, 0, 0, green_barrier::live};
  return 0;
}

int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
  if (!green_threads || as_barrier(b)->magic != green_barrier::live) return real_pthread_barrier_destroy()(b);
  if (as_barrier(b)->arrived != 0) return EBUSY;
  as_barrier(b)->magic = 0;
  return 0;
}

int pthread_barrier_wait(pthread_barrier_t* b) {
  green_barrier* gb = as_barrier(b);
  if (!green_threads || gb->magic != green_barrier::live) return real_pthread_barrier_wait()(b);
  if (!green_context()) return unsupported("pthread_barrier_wait from a native thread", "the barrier is green");
  unsigned generation = gb->generation;
  if (++gb->arrived == gb->count) {
    gb->arrived = 0;
    ++gb->generation;
    wake_all_at(b);
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  deferred_interrupt defer;
  while (gb->generation == generation) {
    detail::waiter w;
    waiters_at(b).push_back(w);
    park(w, detail::no_deadline, "pthread_barrier_wait", false, &defer);
  }
  return 0;
}

// ---- spinlocks: a green thread that finds one held lets the others run
int pthread_spin_lock(pthread_spinlock_t* s) noexcept {
  if (!green_context()) return real_pthread_spin_lock()(s);
  while (real_pthread_spin_trylock()(s) != 0) {
    try {
      moss::yield();
    } catch (...) {
    }
  }
  return 0;
}

// ---- semaphores
int sem_wait(sem_t* s) {
  if (!green_context()) return real_sem_wait()(s);
  return green_sem_wait(s, nullptr);
}

int sem_clockwait(sem_t* s, clockid_t c, const timespec* abstime) {
  if (!green_context()) return real_sem_clockwait()(s, c, abstime);
  detail::time_point deadline;
  if (!deadline_from(c, abstime, &deadline)) {
    errno = EINVAL;
    return -1;
  }
  return green_sem_wait(s, &deadline);
}

int sem_timedwait(sem_t* s, const timespec* abstime) {
  if (!green_context()) return real_sem_timedwait()(s, abstime);
  return sem_clockwait(s, CLOCK_REALTIME, abstime);
}

int sem_post(sem_t* s) noexcept {
  int r = real_sem_post()(s);
  // Not from a signal handler: the wait table is not async-signal-safe.
  if (r == 0 && green_threads && signal_depth == 0) wake_one_at(s);
  return r;
}

}  // extern "C"

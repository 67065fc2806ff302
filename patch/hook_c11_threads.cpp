// hook_c11_threads.cpp: C11 <threads.h> and glibc's old __pthread_* names,
// mapped onto the pthread hooks.
//
// glibc implements thrd_*, mtx_*, cnd_*, tss_* and call_once with hidden calls
// to its own pthread functions, which no interposer sees: without these
// definitions a C11 program's threads would be OS threads locking the same
// mutexes green threads lock. Each maps to the pthread function of the same
// meaning (the types are glibc's pthread types underneath) and its result
// to the C11 codes. The __pthread_* aliases are what some old binaries and
// libraries call.
#include <pthread.h>
#include <sched.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <new>

namespace {

int c11(int pthread_result) noexcept {
  switch (pthread_result) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
  }
}

struct c11_start {
  thrd_start_t fn;
  void* arg;
};

void* run_c11(void* p) {
  c11_start s = *static_cast<c11_start*>(p);
  delete static_cast<c11_start*>(p);
  return reinterpret_cast<void*>(static_cast<std::intptr_t>(s.fn(s.arg)));
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
  auto* s = new (std::nothrow) c11_start{fn, arg};
  if (s == nullptr) return thrd_nomem;
  int r = pthread_create(thr, nullptr, &run_c11, s);
  if (r != 0) delete s;
  return r == EAGAIN ? thrd_nomem : c11(r);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  int r = pthread_join(thr, &value);
  if (r == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<std::intptr_t>(value));
  return c11(r);
}

int thrd_detach(thrd_t thr) noexcept { return c11(pthread_detach(thr)); }
thrd_t thrd_current() noexcept { return pthread_self(); }
int thrd_equal(thrd_t a, thrd_t b) noexcept { return pthread_equal(a, b); }
[[noreturn]] void thrd_exit(int res) { pthread_exit(reinterpret_cast<void*>(static_cast<std::intptr_t>(res))); }
void thrd_yield() noexcept { sched_yield(); }

int thrd_sleep(const timespec* d, timespec* rem) {
  if (nanosleep(d, rem) == 0) return 0;
  return errno == EINTR ? -1 : -2;
}

int mtx_init(mtx_t* m, int type) noexcept {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  if ((type & mtx_recursive) != 0) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  int r = pthread_mutex_init(reinterpret_cast<pthread_mutex_t*>(m), &a);
  pthread_mutexattr_destroy(&a);
  return c11(r);
}
int mtx_lock(mtx_t* m) noexcept { return c11(pthread_mutex_lock(reinterpret_cast<pthread_mutex_t*>(m))); }
int mtx_trylock(mtx_t* m) noexcept { return c11(pthread_mutex_trylock(reinterpret_cast<pthread_mutex_t*>(m))); }
int mtx_timedlock(mtx_t* m, const timespec* t) noexcept {
  return c11(pthread_mutex_timedlock(reinterpret_cast<pthread_mutex_t*>(m), t));
}
int mtx_unlock(mtx_t* m) noexcept { return c11(pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(m))); }
void mtx_destroy(mtx_t* m) noexcept { pthread_mutex_destroy(reinterpret_cast<pthread_mutex_t*>(m)); }

int cnd_init(cnd_t* c) noexcept { return c11(pthread_cond_init(reinterpret_cast<pthread_cond_t*>(c), nullptr)); }
int cnd_signal(cnd_t* c) noexcept { return c11(pthread_cond_signal(reinterpret_cast<pthread_cond_t*>(c))); }
int cnd_broadcast(cnd_t* c) noexcept { return c11(pthread_cond_broadcast(reinterpret_cast<pthread_cond_t*>(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) {
  return c11(pthread_cond_wait(reinterpret_cast<pthread_cond_t*>(c), reinterpret_cast<pthread_mutex_t*>(m)));
}
int cnd_timedwait(cnd_t* c, mtx_t* m, const timespec* t) {
  return c11(pthread_cond_timedwait(reinterpret_cast<pthread_cond_t*>(c), reinterpret_cast<pthread_mutex_t*>(m), t));
}
void cnd_destroy(cnd_t* c) noexcept { pthread_cond_destroy(reinterpret_cast<pthread_cond_t*>(c)); }

int tss_create(tss_t* key, tss_dtor_t dtor) noexcept { return c11(pthread_key_create(key, dtor)); }
void* tss_get(tss_t key) noexcept { return pthread_getspecific(key); }
int tss_set(tss_t key, void* value) noexcept { return c11(pthread_setspecific(key, value)); }
void tss_delete(tss_t key) noexcept { pthread_key_delete(key); }

void call_once(once_flag* flag, void (*fn)()) { pthread_once(reinterpret_cast<pthread_once_t*>(flag), fn); }

// <pthread.h> redirects pthread_yield to sched_yield; define the symbol itself.
int moss_pthread_yield() noexcept __asm__("pthread_yield");
int moss_pthread_yield() noexcept { return sched_yield(); }

// glibc's old exported names for the same functions.
int __pthread_mutex_lock(pthread_mutex_t* m) noexcept { return pthread_mutex_lock(m); }
int __pthread_mutex_trylock(pthread_mutex_t* m) noexcept { return pthread_mutex_trylock(m); }
int __pthread_mutex_unlock(pthread_mutex_t* m) noexcept { return pthread_mutex_unlock(m); }
int __pthread_once(pthread_once_t* o, void (*fn)()) { return pthread_once(o, fn); }
int __pthread_key_create(pthread_key_t* k, void (*d)(void*)) noexcept { return pthread_key_create(k, d); }
void* __pthread_getspecific(pthread_key_t k) noexcept { return pthread_getspecific(k); }
int __pthread_setspecific(pthread_key_t k, const void* v) noexcept { return pthread_setspecific(k, v); }
int __pthread_rwlock_rdlock(pthread_rwlock_t* rw) noexcept { return pthread_rwlock_rdlock(rw); }
int __pthread_rwlock_wrlock(pthread_rwlock_t* rw) noexcept { return pthread_rwlock_wrlock(rw); }
int __pthread_rwlock_tryrdlock(pthread_rwlock_t* rw) noexcept { return pthread_rwlock_tryrdlock(rw); }
int __pthread_rwlock_trywrlock(pthread_rwlock_t* rw) noexcept { return pthread_rwlock_trywrlock(rw); }
int __pthread_rwlock_unlock(pthread_rwlock_t* rw) noexcept { return pthread_rwlock_unlock(rw); }

}  // extern "C"

/* mutex_kinds: what C programs ask of pthread mutexes and condition
 * variables beyond lock and unlock, with a second thread holding the lock:
 *   recursive     locked twice by its owner, trylock by another: EBUSY;
 *   errorcheck    relock by the owner: EDEADLK; unlock by another: EPERM;
 *   timedlock     while another thread holds it for 400 ms: ETIMEDOUT after
 *                 ~100 ms, and the holder keeps running meanwhile;
 *   condvar       a CLOCK_MONOTONIC condattr: timedwait times out after
 *                 ~100 ms; pthread_cond_clockwait too; signal wakes a waiter;
 *   spinlock      four threads add under it, one yielding (sched_yield)
 *                 while it holds the lock now and then.
 *
 * Prints one "name result..." line each and "threads T". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static pthread_mutex_t rec, chk, timed = PTHREAD_MUTEX_INITIALIZER;
static volatile int holding, holder_ticks;
static int other_result;

static const char* name_of(int e) {
  switch (e) {
    case 0: return "0";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case EPERM: return "EPERM";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
  }
}

static struct timespec in_ms(clockid_t clock, long ms) {
  struct timespec t;
  clock_gettime(clock, &t);
  t.tv_nsec += ms * 1000000;
  while (t.tv_nsec >= 1000000000) t.tv_sec += 1, t.tv_nsec -= 1000000000;
  return t;
}

static void* try_recursive(void* arg) {
  (void)arg;
  other_result = pthread_mutex_trylock(&rec);
  return NULL;
}

static void* unlock_errorcheck(void* arg) {
  (void)arg;
  other_result = pthread_mutex_unlock(&chk);
  return NULL;
}

static void* hold_timed(void* arg) {
  (void)arg;
  pthread_mutex_lock(&timed);
  holding = 1;
  for (int i = 0; i < 40; ++i) {
    usleep(10 * 1000);
    ++holder_ticks;
  }
  pthread_mutex_unlock(&timed);
  return NULL;
}

static pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int signalled;

static void* signal_later(void* arg) {
  (void)arg;
  usleep(50 * 1000);
  pthread_mutex_lock(&cv_mu);
  signalled = 1;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&cv_mu);
  return NULL;
}

static pthread_spinlock_t spin;
static long spin_sum;

static void* spin_add(void* arg) {
  (void)arg;
  for (int i = 0; i < 1000; ++i) {
    pthread_spin_lock(&spin);
    long v = spin_sum;
    if (i % 100 == 0) sched_yield();
    spin_sum = v + 1;
    pthread_spin_unlock(&spin);
    sched_yield();
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&rec, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&chk, &ma);

  int a = pthread_mutex_lock(&rec), b = pthread_mutex_lock(&rec);
  pthread_create(&t, NULL, try_recursive, NULL);
  pthread_join(t, NULL);
  pthread_mutex_unlock(&rec);
  int c = pthread_mutex_unlock(&rec);
  printf("recursive %s %s other_trylock %s %s\n", name_of(a), name_of(b), name_of(other_result), name_of(c));

  pthread_mutex_lock(&chk);
  a = pthread_mutex_lock(&chk);
  pthread_create(&t, NULL, unlock_errorcheck, NULL);
  pthread_join(t, NULL);
  b = pthread_mutex_unlock(&chk);
  printf("errorcheck relock %s other_unlock %s unlock %s\n", name_of(a), name_of(other_result), name_of(b));

  pthread_create(&t, NULL, hold_timed, NULL);
  while (!holding) usleep(1000);
  int ticks0 = holder_ticks;
  struct timespec deadline = in_ms(CLOCK_REALTIME, 100);
  struct timespec t0 = now_monotonic();
  a = pthread_mutex_timedlock(&timed, &deadline);
  long waited = ms_since(t0);
  printf("timedlock %s elapsed_ms %ld holder_ticks %d\n", name_of(a), waited, holder_ticks - ticks0);
  b = pthread_mutex_trylock(&timed);
  printf("trylock_held %s\n", name_of(b));
  pthread_join(t, NULL);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &ca);
  pthread_mutex_lock(&cv_mu);
  deadline = in_ms(CLOCK_MONOTONIC, 100);
  t0 = now_monotonic();
  a = pthread_cond_timedwait(&cv, &cv_mu, &deadline);
  printf("cond_timedwait %s elapsed_ms %ld\n", name_of(a), ms_since(t0));
  deadline = in_ms(CLOCK_MONOTONIC, 100);
  t0 = now_monotonic();
  a = pthread_cond_clockwait(&cv, &cv_mu, CLOCK_MONOTONIC, &deadline);
  printf("cond_clockwait %s elapsed_ms %ld\n", name_of(a), ms_since(t0));
  pthread_create(&t, NULL, signal_later, NULL);
  deadline = in_ms(CLOCK_MONOTONIC, 5000);
  t0 = now_monotonic();
  a = 0;
  while (!signalled && a == 0) a = pthread_cond_timedwait(&cv, &cv_mu, &deadline);
  printf("cond_signal %s elapsed_ms %ld\n", name_of(a), ms_since(t0));
  pthread_mutex_unlock(&cv_mu);
  pthread_join(t, NULL);

  pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
  pthread_t spinners[4];
  for (int i = 0; i < 4; ++i) pthread_create(&spinners[i], NULL, spin_add, NULL);
  int threads = os_threads();
  for (int i = 0; i < 4; ++i) pthread_join(spinners[i], NULL);
  printf("spin_sum %ld\nthreads %d\n", spin_sum, threads);
  return 0;
}

/* sem_timeout: POSIX unnamed semaphores. While four ticker threads count
 * 10 ms naps, main waits on a semaphore nobody posts: sem_timedwait
 * (CLOCK_REALTIME deadline, 300 ms) and sem_clockwait (CLOCK_MONOTONIC,
 * 100 ms) must fail with ETIMEDOUT after about that long while the tickers
 * keep ticking; then a thread's sem_post wakes main's sem_wait, and
 * sem_trywait on the empty semaphore fails with EAGAIN.
 *
 * Prints "threads T", "timedwait R errno_name elapsed_ms E ticks K",
 * "clockwait R errno_name elapsed_ms E", "post_wakes R elapsed_ms E",
 * "trywait R errno_name", "value V". */
#define _GNU_SOURCE /* sem_clockwait */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

enum { tickers = 4 };

static sem_t sem;
static volatile int stop;
static volatile long ticks[tickers];

static void* ticker(void* arg) {
  volatile long* mine = arg;
  while (!stop) {
    usleep(10 * 1000);
    ++*mine;
  }
  return NULL;
}

static void* poster(void* arg) {
  (void)arg;
  usleep(100 * 1000);
  sem_post(&sem);
  return NULL;
}

static long total_ticks(void) {
  long n = 0;
  for (int i = 0; i < tickers; ++i) n += ticks[i];
  return n;
}

static const char* errno_name(int r, int e) {
  if (r == 0) return "none";
  switch (e) {
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    default: return strerror(e);
  }
}

int main(void) {
  sem_init(&sem, 0, 0);
  pthread_t t[tickers];
  for (int i = 0; i < tickers; ++i) pthread_create(&t[i], NULL, ticker, (void*)&ticks[i]);
  int threads = os_threads();

  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += 300 * 1000 * 1000;
  if (deadline.tv_nsec >= 1000000000) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000;
  long before = total_ticks();
  struct timespec t0 = now_monotonic();
  int r = sem_timedwait(&sem, &deadline);
  int e = errno;
  long waited = ms_since(t0);
  printf("timedwait %d %s elapsed_ms %ld ticks %ld\n", r, errno_name(r, e), waited, total_ticks() - before);

  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_nsec += 100 * 1000 * 1000;
  if (deadline.tv_nsec >= 1000000000) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000;
  t0 = now_monotonic();
  r = sem_clockwait(&sem, CLOCK_MONOTONIC, &deadline);
  e = errno;
  printf("clockwait %d %s elapsed_ms %ld\n", r, errno_name(r, e), ms_since(t0));

  pthread_t p;
  pthread_create(&p, NULL, poster, NULL);
  t0 = now_monotonic();
  r = sem_wait(&sem);
  printf("post_wakes %d elapsed_ms %ld\n", r, ms_since(t0));
  pthread_join(p, NULL);

  r = sem_trywait(&sem);
  e = errno;
  printf("trywait %d %s\n", r, errno_name(r, e));
  int value = -1;
  sem_getvalue(&sem, &value);
  printf("value %d\n", value);

  stop = 1;
  for (int i = 0; i < tickers; ++i) pthread_join(t[i], NULL);
  printf("threads %d\n", threads);
  sem_destroy(&sem);
  return 0;
}

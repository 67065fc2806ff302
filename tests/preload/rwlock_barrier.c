/* rwlock_barrier: pthread rwlocks and barriers as C programs use them.
 * Six threads (four readers, two writers) meet at a barrier between phases:
 *   1. the readers hold the read lock together, each for 100 ms;
 *   2. readers and writers mix: a writer must be alone;
 *   3. five barrier rounds with staggered arrivals: nobody leaves a round
 *      before everyone arrived, and each round has one serial thread.
 * Then, with main holding a read lock, a thread's timed write lock times out
 * and its tryrdlock succeeds.
 *
 * Prints "threads T", "max_readers", "writer_overlap", "barrier_early",
 * "serial", "timedwrlock", "tryrdlock". */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

enum { readers = 4, writers = 2, nthreads = readers + writers, rounds = 5 };

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t barrier;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int readers_in, writers_in, max_readers, writer_overlap, arrived, barrier_early, serial;

static void note_reader(int delta) {
  pthread_mutex_lock(&mu);
  readers_in += delta;
  if (readers_in > max_readers) max_readers = readers_in;
  if (writers_in != 0) ++writer_overlap;
  pthread_mutex_unlock(&mu);
}

static void read_once(useconds_t hold) {
  pthread_rwlock_rdlock(&rw);
  note_reader(+1);
  usleep(hold);
  note_reader(-1);
  pthread_rwlock_unlock(&rw);
}

static void write_once(void) {
  pthread_rwlock_wrlock(&rw);
  pthread_mutex_lock(&mu);
  if (readers_in != 0 || writers_in != 0) ++writer_overlap;
  ++writers_in;
  pthread_mutex_unlock(&mu);
  usleep(20 * 1000);
  pthread_mutex_lock(&mu);
  --writers_in;
  pthread_mutex_unlock(&mu);
  pthread_rwlock_unlock(&rw);
}

static void* worker(void* arg) {
  int idx = (int)(intptr_t)arg;
  int is_reader = idx < readers;
  pthread_barrier_wait(&barrier);
  if (is_reader) read_once(100 * 1000); /* phase 1 */
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < 3; ++i) { /* phase 2 */
    if (is_reader) read_once(10 * 1000);
    else write_once();
  }
  for (int r = 0; r < rounds; ++r) { /* phase 3 */
    pthread_barrier_wait(&barrier);
    usleep((useconds_t)((idx * 7 + r * 3) % 5) * 2000);
    pthread_mutex_lock(&mu);
    ++arrived;
    pthread_mutex_unlock(&mu);
    int e = pthread_barrier_wait(&barrier);
    pthread_mutex_lock(&mu);
    if (arrived < nthreads * (r + 1)) ++barrier_early;
    if (e == PTHREAD_BARRIER_SERIAL_THREAD) ++serial;
    else if (e != 0) fprintf(stderr, "rwlock_barrier: pthread_barrier_wait: %s\n", strerror(e));
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static int timed_result, try_result;

static void* try_while_read_locked(void* arg) {
  (void)arg;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += 100 * 1000 * 1000;
  if (deadline.tv_nsec >= 1000000000) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000;
  timed_result = pthread_rwlock_timedwrlock(&rw, &deadline);
  try_result = pthread_rwlock_tryrdlock(&rw);
  if (try_result == 0) pthread_rwlock_unlock(&rw);
  return NULL;
}

int main(void) {
  pthread_barrier_init(&barrier, NULL, nthreads);
  pthread_t t[nthreads];
  for (int i = 0; i < nthreads; ++i) pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i);
  int threads = os_threads();
  for (int i = 0; i < nthreads; ++i) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);

  pthread_rwlock_rdlock(&rw);
  pthread_t u;
  pthread_create(&u, NULL, try_while_read_locked, NULL);
  pthread_join(u, NULL);
  pthread_rwlock_unlock(&rw);

  printf("threads %d\nmax_readers %d\nwriter_overlap %d\nbarrier_early %d\nserial %d\n", threads, max_readers,
         writer_overlap, barrier_early, serial);
  printf("timedwrlock %s\ntryrdlock %d\n", timed_result == ETIMEDOUT ? "ETIMEDOUT" : strerror(timed_result),
         try_result);
  return 0;
}

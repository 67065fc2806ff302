/* sleepers: the seeds' gevent scenario with ordinary threads. Three pthreads
 * sleep 1, 2 and 4 units; main joins them. On threads that wait concurrently
 * the whole takes 4 units, not 7; each worker says when it wakes.
 *
 *   sleepers          units of 1 s, slept with sleep()
 *   sleepers MS       units of MS milliseconds, slept with usleep()
 *
 * Prints "woke N" per worker, then "threads T" (OS threads while the workers
 * sleep) and "elapsed_ms E". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "report.h"

static long unit_ms; /* 0: whole seconds with sleep() */
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void* worker(void* arg) {
  int units = (int)(intptr_t)arg;
  if (unit_ms == 0) {
    unsigned left = sleep((unsigned)units);
    if (left != 0) fprintf(stderr, "sleepers: sleep(%d) returned %u early\n", units, left);
  } else {
    usleep((useconds_t)(units * unit_ms * 1000));
  }
  pthread_mutex_lock(&print_lock);
  printf("woke %d\n", units);
  fflush(stdout);
  pthread_mutex_unlock(&print_lock);
  return arg;
}

int main(int argc, char** argv) {
  unit_ms = argc > 1 ? atol(argv[1]) : 0;
  struct timespec t0 = now_monotonic();
  static const int units[3] = {1, 2, 4};
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) {
    int e = pthread_create(&t[i], NULL, worker, (void*)(intptr_t)units[i]);
    if (e != 0) {
      fprintf(stderr, "sleepers: pthread_create failed (%d)\n", e);
      return 1;
    }
  }
  int threads = os_threads();
  for (int i = 0; i < 3; ++i) {
    void* r = NULL;
    pthread_join(t[i], &r);
    if ((intptr_t)r != units[i]) {
      fprintf(stderr, "sleepers: worker %d returned %ld\n", units[i], (long)(intptr_t)r);
      return 1;
    }
  }
  printf("threads %d\nelapsed_ms %ld\n", threads, ms_since(t0));
  return 0;
}

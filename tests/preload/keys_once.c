/* keys_once: thread-specific data and pthread_once as C programs use them.
 * Eight threads race into one pthread_once whose init routine sleeps, so
 * the others must wait for it; each keeps its own value under a key across a
 * sleep; the key's destructor runs at each thread's exit with that thread's
 * value (one thread leaves through pthread_exit from a nested call); a second
 * key's destructor runs only where a value was set.
 *
 * Prints "threads T", "once_runs", "once_early" (callers that got past
 * pthread_once before init finished), "value_mismatch", "destructors",
 * "destructor_mismatch", "key2_destructors", "exit_value", "main_value". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "report.h"

enum { nthreads = 8 };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key, key2;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int init_done;
static int once_runs, once_early, value_mismatch, destructors, destructor_mismatch, key2_destructors;
static int destroyed[nthreads];

static void init_once(void) {
  pthread_mutex_lock(&mu);
  ++once_runs;
  pthread_mutex_unlock(&mu);
  usleep(50 * 1000); /* the other threads arrive meanwhile */
  init_done = 1;
}

static void destroy(void* v) {
  int* p = v;
  pthread_mutex_lock(&mu);
  ++destructors;
  if (*p < 0 || *p >= nthreads || destroyed[*p]++ != 0) ++destructor_mismatch;
  pthread_mutex_unlock(&mu);
  free(p);
}

static void destroy2(void* v) {
  (void)v;
  pthread_mutex_lock(&mu);
  ++key2_destructors;
  pthread_mutex_unlock(&mu);
}

static void leave_early(void) { pthread_exit((void*)(intptr_t)77); }

static void* worker(void* arg) {
  int idx = (int)(intptr_t)arg;
  pthread_once(&once, init_once);
  if (!init_done) {
    pthread_mutex_lock(&mu);
    ++once_early;
    pthread_mutex_unlock(&mu);
  }
  int* mine = malloc(sizeof *mine);
  *mine = idx;
  pthread_setspecific(key, mine);
  if (idx % 2 == 0) pthread_setspecific(key2, &destroyed[idx]); /* any non-NULL value */
  usleep(10 * 1000); /* the others set their values meanwhile */
  if (pthread_getspecific(key) != mine) {
    pthread_mutex_lock(&mu);
    ++value_mismatch;
    pthread_mutex_unlock(&mu);
  }
  if (idx == nthreads - 1) leave_early();
  return arg;
}

int main(void) {
  pthread_key_create(&key, destroy);
  pthread_key_create(&key2, destroy2);
  static int main_value = -1;
  pthread_setspecific(key, &main_value);
  pthread_t t[nthreads];
  for (int i = 0; i < nthreads; ++i) pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i);
  int threads = os_threads();
  void* exit_value = NULL;
  for (int i = 0; i < nthreads; ++i) {
    void* r = NULL;
    pthread_join(t[i], &r);
    if (i == nthreads - 1) exit_value = r;
  }
  printf("threads %d\nonce_runs %d\nonce_early %d\nvalue_mismatch %d\n", threads, once_runs, once_early,
         value_mismatch);
  printf("destructors %d\ndestructor_mismatch %d\nkey2_destructors %d\n", destructors, destructor_mismatch,
         key2_destructors);
  printf("exit_value %ld\nmain_value %s\n", (long)(intptr_t)exit_value,
         pthread_getspecific(key) == &main_value ? "ok" : "lost");
  return 0;
}

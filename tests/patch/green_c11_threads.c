/* green_c11_threads.c: an ordinary C11 <threads.h> program (no moss header or
 * library). glibc builds thrd_*, mtx_*, cnd_*, tss_* and call_once on hidden
 * calls to its own pthread functions, so without moss's own definitions
 * these threads would be OS threads. Under mossrun: three threads sleeping
 * 1, 2 and 4 tenths of a second take 0.4 s together, share one OS thread,
 * hand off through a mutex and condition variable, keep their own tss
 * values and run call_once's routine once. Exits 1 on a failed check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

static mtx_t m;
static cnd_t c;
static int ready;
static once_flag once = ONCE_FLAG_INIT;
static int once_runs;
static tss_t key;

static void once_routine(void) { once_runs++; }

static int worker(void* tenths) {
  struct timespec d = {0, (long)tenths * 100000000L};
  tss_set(key, tenths);
  thrd_sleep(&d, NULL);
  call_once(&once, once_routine);
  mtx_lock(&m);
  ready++;
  cnd_signal(&c);
  mtx_unlock(&m);
  return (int)(long)tss_get(key);
}

static int os_threads(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f != NULL && fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  if (f != NULL) fclose(f);
  return n;
}

int main(void) {
  struct timespec t0, t1, pause = {0, 50000000L};
  mtx_init(&m, mtx_plain);
  cnd_init(&c);
  tss_create(&key, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  thrd_t t[3];
  long tenths[3] = {1, 2, 4};
  for (int i = 0; i < 3; i++) thrd_create(&t[i], worker, (void*)tenths[i]);
  thrd_sleep(&pause, NULL);
  int threads = os_threads();
  mtx_lock(&m);
  while (ready < 3) cnd_wait(&c, &m);
  mtx_unlock(&m);
  int sum = 0;
  for (int i = 0; i < 3; i++) {
    int r = 0;
    thrd_join(t[i], &r);
    sum += r;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double elapsed = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("sum %d once %d threads %d elapsed %.2f\n", sum, once_runs, threads, elapsed);
  int ok = sum == 7 && once_runs == 1 && threads >= 1 && threads <= 3 && elapsed < 0.7 && tss_get(key) == NULL;
  puts(ok ? "all ok" : "FAIL");
  return ok ? 0 : 1;
}

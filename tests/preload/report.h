/* report.h: what the test programs print about themselves. Plain libc only:
 * these programs know nothing of moss.
 *
 *   os_threads()   the process's OS thread count ("Threads:" in
 *                  /proc/self/status): 1 per pthread natively, 1-3 under
 *                  mossrun's green threads;
 *   ms_since(t0)   milliseconds of CLOCK_MONOTONIC since t0. */
#ifndef PRELOAD_REPORT_H
#define PRELOAD_REPORT_H

#include <stdio.h>
#include <time.h>

static inline int os_threads(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Threads: %d", &n) == 1) break;
  if (f != NULL) fclose(f);
  return n;
}

static inline struct timespec now_monotonic(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t;
}

static inline long ms_since(struct timespec t0) {
  struct timespec t = now_monotonic();
  return (long)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
}

#endif

/* main_exit: how a program's main ends, with other threads still running.
 *
 *   main_exit pthread_exit   main starts three threads that sleep 100, 200
 *                            and 300 ms and print, then calls pthread_exit:
 *                            POSIX says the process lives on until the last
 *                            thread ends, with status 0;
 *   main_exit return         main starts a thread that sleeps 5 s, then
 *                            returns 3: the process exits at once with
 *                            status 3 and the thread never prints.
 *
 * Prints "threads T" first (OS threads with the workers alive). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

static void* worker(void* arg) {
  int n = (int)(intptr_t)arg;
  usleep((useconds_t)n * 100 * 1000);
  printf("worker %d\n", n);
  fflush(stdout);
  return NULL;
}

static void* late(void* arg) {
  (void)arg;
  sleep(5);
  puts("late");
  fflush(stdout);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "return") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, late, NULL);
    printf("threads %d\n", os_threads());
    fflush(stdout);
    return 3;
  }
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, worker, (void*)(intptr_t)(i + 1));
  printf("threads %d\n", os_threads());
  fflush(stdout);
  pthread_exit(NULL);
}

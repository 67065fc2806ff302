/* deadlock: the classic lock-order inversion. Thread "locker-a" takes m1 then
 * m2, thread "locker-b" takes m2 then m1, each sleeping 100 ms in between so
 * both hold their first lock before asking for the second; main joins them.
 * Natively this hangs forever. Under mossrun every green thread then waits on
 * something nothing can wake: moss must report the waits and exit 70.
 *
 * Prints "locked m1", "locked m2" as the first locks are taken. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER, m2 = PTHREAD_MUTEX_INITIALIZER;

static void* locker(void* arg) {
  int a = arg != NULL;
  pthread_setname_np(pthread_self(), a ? "locker-a" : "locker-b");
  pthread_mutex_t* first = a ? &m1 : &m2;
  pthread_mutex_t* second = a ? &m2 : &m1;
  pthread_mutex_lock(first);
  printf("locked %s\n", a ? "m1" : "m2");
  fflush(stdout);
  usleep(100 * 1000);
  pthread_mutex_lock(second);
  puts("never here");
  pthread_mutex_unlock(second);
  pthread_mutex_unlock(first);
  return NULL;
}

int main(void) {
  pthread_t a, b;
  pthread_create(&a, NULL, locker, (void*)1);
  pthread_create(&b, NULL, locker, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  puts("joined");
  return 0;
}

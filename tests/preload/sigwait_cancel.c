/* sigwait_cancel.c: a thread cancelled (deferred) before it reaches sigwait
 * ends at sigwait's cancellation point without leaving an fd open (moss's
 * green sigwait waits on a signalfd). The cancel is requested while the
 * thread waits for a mutex, which is no cancellation point.
 * Prints "canceled 1" and the open fd counts before and after. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static int open_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  while (readdir(d) != NULL) ++n;
  closedir(d);
  return n;
}

static void* waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&gate);
  pthread_mutex_unlock(&gate);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  int sig = 0;
  sigwait(&set, &sig); /* cancelled here */
  return NULL;
}

int main(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int before = open_fds();
  for (int i = 0; i < 20; ++i) {
    pthread_t t;
    pthread_mutex_lock(&gate);
    if (pthread_create(&t, NULL, waiter, NULL) != 0) return 1;
    pthread_cancel(t);
    pthread_mutex_unlock(&gate);
    void* ret = NULL;
    pthread_join(t, &ret);
    if (ret != PTHREAD_CANCELED) {
      printf("canceled 0\n");
      return 1;
    }
  }
  printf("canceled 1\nfds_before %d\nfds_after %d\n", before, open_fds());
  return 0;
}

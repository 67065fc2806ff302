/* sem_pshared: process-shared semaphores and condition variables, waited on
 * by one process and posted by another (fork), as Python's multiprocessing
 * and PostgreSQL do. Under mossrun a green wait on one must see the other
 * process's post, without blocking the green threads of its own process
 * (the child's ticker thread counts 10 ms naps meanwhile).
 *
 * Each cross-process case forks a child that waits and records what it saw
 * in shared memory; the parent posts after 200 ms and gives the child 10 s
 * before killing it. Prints:
 *   "unnamed S elapsed_ms E ticks K"   sem_init(pshared=1) + sem_wait
 *   "named S elapsed_ms E"             sem_open + sem_wait
 *   "timedwait S R elapsed_ms E"       sem_timedwait, 5 s deadline, posted at 200 ms
 *   "cond S"                           pshared condvar + mutex
 * (S: the child's exit status, -signal if killed; R: its return value)
 *   "timeout R errno_name elapsed_ms E" a 300 ms sem_timedwait nobody posts
 *   "einval R errno_name"              sem_timedwait with tv_nsec = 2e9
 *   "local_post R elapsed_ms E"        a thread of this process posts at 100 ms
 *   "threads T" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

struct shared {
  sem_t unnamed;
  pthread_mutex_t m;
  pthread_cond_t c;
  int flag;
  long elapsed_ms;
  long ticks;
  int result;
};

static struct shared* sh;
static sem_t* named;
static volatile int stop;
static volatile long ticks;

static void* ticker(void* arg) {
  (void)arg;
  while (!stop) {
    usleep(10 * 1000);
    ++ticks;
  }
  return NULL;
}

static const char* errno_name(int r, int e) {
  if (r == 0) return "none";
  switch (e) {
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    default: return strerror(e);
  }
}

static struct timespec realtime_in(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) t.tv_sec += 1, t.tv_nsec -= 1000000000L;
  return t;
}

/* reap() waits up to 10 s for the child; then kills it. */
static int reap(pid_t pid) {
  int st = 0;
  for (int i = 0; i < 1000; ++i) {
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    usleep(10 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void child_wait(const char* what) {
  if (strcmp(what, "unnamed") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    struct timespec t0 = now_monotonic();
    sh->result = sem_wait(&sh->unnamed);
    sh->elapsed_ms = ms_since(t0);
    sh->ticks = ticks;
    stop = 1;
    pthread_join(t, NULL);
  } else if (strcmp(what, "named") == 0) {
    struct timespec t0 = now_monotonic();
    sh->result = sem_wait(named);
    sh->elapsed_ms = ms_since(t0);
  } else if (strcmp(what, "timedwait") == 0) {
    struct timespec deadline = realtime_in(5000);
    struct timespec t0 = now_monotonic();
    sh->result = sem_timedwait(&sh->unnamed, &deadline);
    sh->elapsed_ms = ms_since(t0);
  } else {
    pthread_mutex_lock(&sh->m);
    while (!sh->flag) pthread_cond_wait(&sh->c, &sh->m);
    pthread_mutex_unlock(&sh->m);
    sh->result = 0;
  }
}

static int across_fork(const char* what) {
  sh->result = -2;
  sh->elapsed_ms = -1;
  sh->ticks = -1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    child_wait(what);
    _exit(0);
  }
  usleep(200 * 1000);
  if (strcmp(what, "named") == 0) sem_post(named);
  else if (strcmp(what, "cond") == 0) {
    pthread_mutex_lock(&sh->m);
    sh->flag = 1;
    pthread_cond_broadcast(&sh->c);
    pthread_mutex_unlock(&sh->m);
  } else sem_post(&sh->unnamed);
  return reap(pid);
}

static void* poster(void* arg) {
  (void)arg;
  usleep(100 * 1000);
  sem_post(&sh->unnamed);
  return NULL;
}

int main(void) {
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return perror("mmap"), 1;
  sem_init(&sh->unnamed, 1, 0);
  char name[64];
  snprintf(name, sizeof name, "/moss_sem_pshared_%d", (int)getpid());
  named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
  if (named == SEM_FAILED) return perror("sem_open"), 1;
  sem_unlink(name);
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&sh->m, &ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&sh->c, &ca);

  int st = across_fork("unnamed");
  printf("unnamed %d elapsed_ms %ld ticks %ld\n", st, sh->elapsed_ms, sh->ticks);
  st = across_fork("named");
  printf("named %d elapsed_ms %ld\n", st, sh->elapsed_ms);
  st = across_fork("timedwait");
  printf("timedwait %d %d elapsed_ms %ld\n", st, sh->result, sh->elapsed_ms);
  st = across_fork("cond");
  printf("cond %d\n", st);

  struct timespec deadline = realtime_in(300);
  struct timespec t0 = now_monotonic();
  int r = sem_timedwait(&sh->unnamed, &deadline);
  int e = errno;
  printf("timeout %d %s elapsed_ms %ld\n", r, errno_name(r, e), ms_since(t0));

  deadline.tv_nsec = 2000000000L;
  r = sem_timedwait(&sh->unnamed, &deadline);
  e = errno;
  printf("einval %d %s\n", r, errno_name(r, e));

  pthread_t p;
  pthread_create(&p, NULL, poster, NULL);
  int threads = os_threads();
  t0 = now_monotonic();
  r = sem_wait(&sh->unnamed);
  printf("local_post %d elapsed_ms %ld\n", r, ms_since(t0));
  pthread_join(p, NULL);
  printf("threads %d\n", threads);
  return 0;
}

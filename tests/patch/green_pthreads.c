/* green_pthreads.c: an ordinary C program (no moss header or library) that
 * checks POSIX thread semantics where green threads differ most from a naive
 * emulation: every green thread shares one OS thread and one TID, so owner
 * checks, thread-specific data, cancellation and cleanup handlers must all be
 * kept per green thread. Run under mossrun by meson (green_pthreads test); it
 * prints one line per check and exits 1 on the first failure. The last check
 * (one OS thread while three threads sleep) fails when run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, what)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      printf("FAIL %s (line %d, errno %d)\n", what, __LINE__, errno);      \
      exit(1);                                                              \
    }                                                                       \
    printf("ok %s\n", what);                                                \
    fflush(stdout);                                                         \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timespec in_ms(clockid_t c, long ms) {
  struct timespec ts;
  clock_gettime(c, &ts);
  ts.tv_nsec += (ms % 1000) * 1000000;
  ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  return ts;
}

static pthread_t spawn(void* (*fn)(void*), void* arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) {
    printf("FAIL pthread_create\n");
    exit(1);
  }
  return t;
}

/* ---- mutex owners */
static pthread_mutex_t errorcheck, recursive;
static int result;
static void* unlock_foreign(void* m) {
  result = pthread_mutex_unlock(m);
  return NULL;
}
static void* trylock_foreign(void* m) {
  result = pthread_mutex_trylock(m);
  return NULL;
}
static void* hold_for_200ms(void* m) {
  pthread_mutex_lock(m);
  usleep(200000);
  pthread_mutex_unlock(m);
  return NULL;
}

/* ---- keys */
static pthread_key_t key;
static int destructed;
static void destructor(void* v) { destructed += *(int*)v; }
static void* set_key(void* v) {
  pthread_setspecific(key, v);
  usleep(10000); /* the other thread sets its own value meanwhile */
  return pthread_getspecific(key);
}

/* ---- once */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void once_routine(void) {
  usleep(50000); /* others arrive while it runs */
  once_runs++;
}
static void* call_once(void* unused) {
  (void)unused;
  pthread_once(&once, once_routine);
  return (void*)(long)once_runs;
}

/* ---- cancellation and cleanup handlers */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int cleaned;
static void cleanup_unlock(void* m) {
  cleaned++;
  pthread_mutex_unlock(m);
}
static void* wait_forever(void* unused) {
  (void)unused;
  pthread_mutex_lock(&cm);
  pthread_cleanup_push(cleanup_unlock, &cm);
  for (;;) pthread_cond_wait(&cc, &cm);
  pthread_cleanup_pop(1);
  return NULL;
}
static void count_cleanup(void* n) { cleaned += (int)(long)n; }
static volatile int stop_early; /* never set: keeps the recursion finite to the compiler */
static int deep_exit(int depth) {
  if (stop_early) return 0;
  if (depth == 0) pthread_exit((void*)42);
  return deep_exit(depth - 1) + 1;
}
static void* exits_deep(void* unused) {
  (void)unused;
  pthread_cleanup_push(count_cleanup, (void*)10);
  pthread_cleanup_push(count_cleanup, (void*)100);
  deep_exit(5);
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* sleep_forever(void* unused) {
  (void)unused;
  pthread_cleanup_push(count_cleanup, (void*)1);
  for (;;) sleep(1);
  pthread_cleanup_pop(0);
  return NULL;
}
static void* recv_forever(void* fd) {
  char c;
  pthread_cleanup_push(count_cleanup, (void*)1);
  for (;;) recv((int)(long)fd, &c, 1, 0);
  pthread_cleanup_pop(0);
  return NULL;
}

/* ---- fork: the child goes on with the forking thread only, on a working hub */
static void* child_thread(void* unused) {
  (void)unused;
  usleep(20000);
  return (void*)5;
}
static int child_of_fork(void) {
  void* r;
  pthread_join(spawn(child_thread, NULL), &r);
  int sv[2];
  char c = 0;
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  if (write(sv[0], "x", 1) != 1 || read(sv[1], &c, 1) != 1) return 1;
  return (int)(long)r + (c == 'x');
}
static void* fork_here(void* unused) {
  (void)unused;
  pid_t p = fork();
  if (p == 0) {
    /* main, still parked in pthread_join in the parent, is not here: a
       pthread_exit of the only thread ends the child with status 0 */
    if (child_of_fork() != 6) _exit(1);
    pthread_exit(NULL);
  }
  int st = 0;
  waitpid(p, &st, 0);
  return (void*)(long)(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
}

/* ---- waiting for signals */
static int waited_signal;
static volatile sig_atomic_t handled;
static void on_usr2(int sig) { handled = sig; }
static void* sigwait_usr1(void* unused) {
  (void)unused;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigwait(&set, &waited_signal);
  return NULL;
}
static void* send_signals(void* unused) {
  (void)unused;
  usleep(50000);
  kill(getpid(), SIGUSR1);
  usleep(50000);
  kill(getpid(), SIGUSR2);
  return NULL;
}

/* ---- attributes, names */
static void* report_stack(void* out) {
  pthread_attr_t a;
  pthread_getattr_np(pthread_self(), &a);
  void* addr;
  size_t size;
  pthread_attr_getstack(&a, &addr, &size);
  int local;
  ((size_t*)out)[0] = size;
  ((size_t*)out)[1] = (char*)&local >= (char*)addr && (char*)&local < (char*)addr + size;
  pthread_attr_destroy(&a);
  return NULL;
}
static void* join_self(void* unused) {
  (void)unused;
  return (void*)(long)pthread_join(pthread_self(), NULL);
}
static void* nap(void* ms) {
  usleep((long)ms * 1000);
  return NULL;
}

/* ---- barrier, rwlock, semaphore, spinlock */
static pthread_barrier_t barrier;
static void* at_barrier(void* unused) {
  (void)unused;
  return (void*)(long)(pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD);
}
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static void* read_hold(void* ms) {
  pthread_rwlock_rdlock(&rw);
  usleep((long)ms * 1000);
  pthread_rwlock_unlock(&rw);
  return NULL;
}
static sem_t sem;
static void* post_later(void* unused) {
  (void)unused;
  usleep(50000);
  sem_post(&sem);
  return NULL;
}
static pthread_spinlock_t spin;
static void* spin_hold(void* unused) {
  (void)unused;
  pthread_spin_lock(&spin);
  usleep(50000);
  pthread_spin_unlock(&spin);
  return NULL;
}

int main(void) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&errorcheck, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&recursive, &ma);

  pthread_mutex_lock(&errorcheck);
  CHECK(pthread_mutex_lock(&errorcheck) == EDEADLK, "errorcheck relock by its owner is EDEADLK");
  pthread_join(spawn(unlock_foreign, &errorcheck), NULL);
  CHECK(result == EPERM, "errorcheck unlock by another thread is EPERM");
  pthread_mutex_unlock(&errorcheck);

  pthread_mutex_lock(&recursive);
  pthread_mutex_lock(&recursive);
  pthread_join(spawn(trylock_foreign, &recursive), NULL);
  CHECK(result == EBUSY, "recursive mutex held twice: another thread's trylock is EBUSY");
  pthread_mutex_unlock(&recursive);
  pthread_join(spawn(trylock_foreign, &recursive), NULL);
  CHECK(result == EBUSY, "recursive mutex still held once after one unlock");
  pthread_mutex_unlock(&recursive);
  pthread_join(spawn(trylock_foreign, &recursive), NULL);
  CHECK(result == 0, "recursive mutex free after the last unlock");

  pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
  pthread_t holder = spawn(hold_for_200ms, &plain);
  usleep(20000);
  struct timespec ts = in_ms(CLOCK_REALTIME, 50);
  double t0 = now();
  CHECK(pthread_mutex_timedlock(&plain, &ts) == ETIMEDOUT && now() - t0 >= 0.04, "timedlock of a held mutex times out");
  t0 = now();
  CHECK(pthread_mutex_lock(&plain) == 0 && now() - t0 < 1.0, "lock waits for the holder's unlock");
  pthread_mutex_unlock(&plain);
  pthread_join(holder, NULL);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_t mono;
  pthread_cond_init(&mono, &ca);
  pthread_mutex_lock(&plain);
  ts = in_ms(CLOCK_MONOTONIC, 100);
  t0 = now();
  int r = pthread_cond_timedwait(&mono, &plain, &ts);
  CHECK(r == ETIMEDOUT && now() - t0 >= 0.09 && now() - t0 < 2.0, "cond_timedwait on a CLOCK_MONOTONIC condvar times out on time");
  CHECK(pthread_mutex_unlock(&plain) == 0, "cond_timedwait returned with the mutex held");

  pthread_key_create(&key, destructor);
  int v1 = 1, v2 = 2;
  pthread_t k1 = spawn(set_key, &v1), k2 = spawn(set_key, &v2);
  void *g1, *g2;
  pthread_join(k1, &g1);
  pthread_join(k2, &g2);
  CHECK(g1 == &v1 && g2 == &v2, "thread-specific values are per thread");
  CHECK(destructed == 3, "key destructors ran at each thread's exit");
  CHECK(pthread_getspecific(key) == NULL, "main's value is its own");
  pthread_key_delete(key);

  pthread_t o[5];
  for (int i = 0; i < 5; i++) o[i] = spawn(call_once, NULL);
  int seen_done = 1;
  for (int i = 0; i < 5; i++) {
    void* runs;
    pthread_join(o[i], &runs);
    seen_done &= runs == (void*)1;
  }
  CHECK(once_runs == 1 && seen_done, "pthread_once ran once and every caller waited for it");

  pthread_t w = spawn(wait_forever, NULL);
  usleep(20000);
  CHECK(pthread_cancel(w) == 0, "pthread_cancel");
  void* ret;
  pthread_join(w, &ret);
  CHECK(ret == PTHREAD_CANCELED && cleaned == 1, "a thread cancelled in cond_wait ran its cleanup handler");
  CHECK(pthread_mutex_trylock(&cm) == 0, "the handler released the re-acquired mutex");
  pthread_mutex_unlock(&cm);

  cleaned = 0;
  pthread_join(spawn(exits_deep, NULL), &ret);
  CHECK(ret == (void*)42 && cleaned == 110, "pthread_exit deep in a call chain ran both cleanup handlers");

  cleaned = 0;
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  pthread_t sl = spawn(sleep_forever, NULL), rc = spawn(recv_forever, (void*)(long)sv[0]);
  usleep(20000);
  t0 = now();
  pthread_cancel(sl);
  pthread_cancel(rc);
  void *c1, *c2;
  struct timespec limit = in_ms(CLOCK_REALTIME, 2000);
  CHECK(pthread_timedjoin_np(sl, &c1, &limit) == 0 && pthread_timedjoin_np(rc, &c2, &limit) == 0,
        "cancelled threads can be joined within 2 s");
  CHECK(c1 == PTHREAD_CANCELED && c2 == PTHREAD_CANCELED && cleaned == 2 && now() - t0 < 0.5,
        "threads cancelled inside sleep() and recv() end at once and run their cleanup handlers");
  close(sv[0]);
  close(sv[1]);

  pthread_t busy = spawn(nap, (void*)300); /* parked in the parent while the fork happens */
  void* fork_status;
  pthread_join(spawn(fork_here, NULL), &fork_status);
  CHECK(fork_status == (void*)0, "a green thread forks: the child creates and joins a thread, does socket I/O and ends with pthread_exit (status 0)");
  pid_t child = fork();
  if (child == 0) _exit(child_of_fork());
  int st = 0;
  waitpid(child, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 6, "main forks: the child has a working hub");
  pthread_join(busy, NULL);

  pthread_t d = spawn(nap, (void*)50);
  CHECK(pthread_tryjoin_np(d, NULL) == EBUSY, "tryjoin of a running thread is EBUSY");
  CHECK(pthread_kill(d, 0) == 0, "pthread_kill(t, 0) of a live thread");
  CHECK(pthread_setname_np(d, "a-name-that-is-too-long") == ERANGE, "a name over 15 bytes is ERANGE");
  CHECK(pthread_setname_np(d, "napper") == 0, "setname_np");
  char name[16];
  CHECK(pthread_getname_np(d, name, sizeof name) == 0 && strcmp(name, "napper") == 0, "getname_np returns it");
  CHECK(pthread_detach(d) == 0, "detach");
  CHECK(pthread_join(d, NULL) == EINVAL, "join of a detached thread is EINVAL");
  void* self_join;
  pthread_join(spawn(join_self, NULL), &self_join);
  CHECK(self_join == (void*)(long)EDEADLK, "a thread joining itself gets EDEADLK");

  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 1 << 20);
  size_t stack[2];
  pthread_t s;
  pthread_create(&s, &a, report_stack, stack);
  pthread_join(s, NULL);
  CHECK(stack[0] >= (1u << 20) && stack[1], "getattr_np reports the thread's own stack of the requested size");

  pthread_barrier_init(&barrier, NULL, 3);
  pthread_t b[3];
  long serial = 0;
  for (int i = 0; i < 3; i++) b[i] = spawn(at_barrier, NULL);
  for (int i = 0; i < 3; i++) {
    void* x;
    pthread_join(b[i], &x);
    serial += (long)x;
  }
  CHECK(serial == 1, "a barrier of three: exactly one serial thread");

  pthread_t r1 = spawn(read_hold, (void*)200);
  usleep(20000);
  t0 = now();
  pthread_join(spawn(read_hold, (void*)1), NULL);
  CHECK(now() - t0 < 0.15, "a second reader does not wait for the first");
  t0 = now();
  pthread_rwlock_wrlock(&rw);
  CHECK(now() - t0 >= 0.1, "a writer waits for the reader");
  pthread_rwlock_unlock(&rw);
  pthread_join(r1, NULL);

  sem_init(&sem, 0, 0);
  ts = in_ms(CLOCK_REALTIME, 50);
  CHECK(sem_timedwait(&sem, &ts) == -1 && errno == ETIMEDOUT, "sem_timedwait times out");
  pthread_t p = spawn(post_later, NULL);
  CHECK(sem_wait(&sem) == 0, "sem_wait is woken by another thread's sem_post");
  pthread_join(p, NULL);

  pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
  pthread_t sp = spawn(spin_hold, NULL);
  usleep(10000);
  pthread_spin_lock(&spin);
  pthread_spin_unlock(&spin);
  pthread_join(sp, NULL);
  CHECK(1, "spin_lock waits for a holder that sleeps");

  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);
  signal(SIGUSR2, on_usr2);
  pthread_t sw = spawn(sigwait_usr1, NULL), ss = spawn(send_signals, NULL);
  errno = 0;
  CHECK(pause() == -1 && errno == EINTR && handled == SIGUSR2, "pause() in main returns after a handler ran, while other threads run");
  pthread_join(sw, NULL);
  pthread_join(ss, NULL);
  CHECK(waited_signal == SIGUSR1, "sigwait in a thread takes the blocked signal");

  pthread_t n[3];
  for (int i = 0; i < 3; i++) n[i] = spawn(nap, (void*)100);
  usleep(20000);
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  int threads = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) threads = atoi(line + 8);
  fclose(f);
  for (int i = 0; i < 3; i++) pthread_join(n[i], NULL);
  CHECK(threads >= 1 && threads <= 3, "three sleeping threads share one OS thread (or the documented few)");
  puts("all ok");
  return 0;
}

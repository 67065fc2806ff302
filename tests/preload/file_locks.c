/* file_locks: threads wait for file locks another holder has. Natively a
 * lock wait blocks only its own thread; under mossrun it must not block the
 * OS thread the other green threads run on.
 *
 *   file_locks PATH   (PATH: a scratch file it creates)
 *
 * flock and OFD locks belong to an open file description: main opens PATH
 * twice, locks it through the first, and a thread lets go after 300 ms;
 * main's wait through the second ends only if that thread runs meanwhile.
 * POSIX record locks (lockf, fcntl F_SETLKW) belong to a process: a child
 * holds the lock for 300 ms while main waits and a ticker thread naps 20 ms
 * at a time. Prints "<call> <result> elapsed_ms <E> ticks <K>" per wait,
 * then "<case> <result> <errno name>" for calls that fail at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

static volatile int ticks;
static volatile int stop;
static int held_fd;
static int (*let_go)(int fd);

static void* ticker(void* arg) {
  (void)arg;
  while (!stop) {
    usleep(20000);
    ++ticks;
  }
  return NULL;
}

static int flock_unlock(int fd) { return flock(fd, LOCK_UN); }

static int ofd_unlock(int fd) {
  struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
  return fcntl(fd, F_OFD_SETLK, &l);
}

static void* releaser(void* arg) {
  (void)arg;
  usleep(300000);
  let_go(held_fd);
  return NULL;
}

static const char* errname(int e) {
  switch (e) {
    case 0: return "0";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case EACCES: return "EACCES";
    default: return strerror(e);
  }
}

static void report(const char* call, int r, int ticks0, struct timespec t0) {
  printf("%s %d elapsed_ms %ld ticks %d\n", call, r, ms_since(t0), ticks - ticks0);
  fflush(stdout);
}

/* A child takes a POSIX lock on the whole file, says so through a pipe,
 * holds it 300 ms and exits (which releases it). */
static pid_t child_holding(const char* path) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(path, O_RDWR);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_SETLK, &l) != 0) _exit(1);
    if (write(p[1], "x", 1) != 1) _exit(1);
    usleep(300000);
    _exit(0);
  }
  close(p[1]);
  char c;
  if (read(p[0], &c, 1) != 1) pid = -1;
  close(p[0]);
  return pid;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: file_locks SCRATCH_FILE\n");
    return 2;
  }
  const char* path = argv[1];
  int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  int b = open(path, O_RDWR);
  if (a < 0 || b < 0) {
    perror(path);
    return 1;
  }
  pthread_t tick, rel;
  pthread_create(&tick, NULL, ticker, NULL);
  usleep(30000); /* the ticker is running */

  /* flock: a thread of this process holds it through the other open file. */
  flock(a, LOCK_EX);
  held_fd = a;
  let_go = flock_unlock;
  pthread_create(&rel, NULL, releaser, NULL);
  int k = ticks;
  struct timespec t0 = now_monotonic();
  int r = flock(b, LOCK_EX);
  report("flock", r, k, t0);
  pthread_join(rel, NULL);
  flock(b, LOCK_UN);

  /* OFD locks: the same, through fcntl. */
  struct flock wr = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  fcntl(a, F_OFD_SETLK, &wr);
  let_go = ofd_unlock;
  pthread_create(&rel, NULL, releaser, NULL);
  k = ticks;
  t0 = now_monotonic();
  r = fcntl(b, F_OFD_SETLKW, &wr);
  report("ofd", r, k, t0);
  pthread_join(rel, NULL);
  ofd_unlock(b);

  /* POSIX record locks held by another process. */
  pid_t holder = child_holding(path);
  k = ticks;
  t0 = now_monotonic();
  r = fcntl(a, F_SETLKW, &wr);
  report("setlkw", holder > 0 ? r : -2, k, t0);
  waitpid(holder, NULL, 0);
  struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
  fcntl(a, F_SETLK, &un);

  holder = child_holding(path);
  lseek(a, 0, SEEK_SET);
  k = ticks;
  t0 = now_monotonic();
  r = lockf(a, F_LOCK, 0);
  report("lockf", holder > 0 ? r : -2, k, t0);
  waitpid(holder, NULL, 0);
  lockf(a, F_ULOCK, 0);

  stop = 1;
  pthread_join(tick, NULL);

  /* Calls that fail at once keep the real call's errno. */
  flock(a, LOCK_EX);
  errno = 0;
  r = flock(b, LOCK_EX | LOCK_NB);
  printf("flock_nb %d %s\n", r, errname(errno));
  errno = 0;
  r = flock(-1, LOCK_EX);
  printf("flock_badfd %d %s\n", r, errname(errno));
  errno = 0;
  r = flock(b, 72); /* neither LOCK_SH, LOCK_EX nor LOCK_UN */
  printf("flock_badop %d %s\n", r, errname(errno));
  flock(a, LOCK_UN);
  int ro = open(path, O_RDONLY);
  errno = 0;
  r = lockf(ro, F_LOCK, 0); /* a write lock needs a file open for writing */
  printf("lockf_readonly %d %s\n", r, errname(errno));
  close(ro);
  close(a);
  close(b);
  unlink(path);
  return 0;
}

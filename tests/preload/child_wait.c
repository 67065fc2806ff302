/* child_wait: a thread waits for a child process while another thread runs.
 * Natively a wait blocks only its own thread; under mossrun it must not
 * block the OS thread the other green threads run on.
 *
 *   child_wait ticks    main waits for a child that lives 500 ms, with
 *                       waitpid, wait4, waitid(P_PID) and waitid(P_PIDFD),
 *                       while a ticker thread naps 20 ms at a time; prints
 *                       "<call> <pid_ok> <exit_status> ticks <K> elapsed_ms <E>"
 *   child_wait drain    a child writes 4 MiB into a pipe, a thread reads it,
 *                       main waits for the child: the child ends only if the
 *                       reader runs meanwhile; prints "drain <status> bytes <N>"
 *   child_wait system   the same with system("sleep 0.5; exit 5"): prints
 *                       "system <status> ticks <K> elapsed_ms <E> sigint_ignored
 *                       <0/1>" (as seen by the ticker meanwhile), then
 *                       "restored <0/1>" (SIGINT back to its handler) and
 *                       "shell <system(NULL) != 0>"
 *   child_wait cancel   a thread cancelled in waitpid, then one cancelled in
 *                       system(): prints "<call> canceled <0/1> cleanup <0/1>
 *                       fds_leaked <N>", and "shell_reaped <0/1>" (system's
 *                       shell was killed and reaped)
 *   child_wait errors   what the calls return where they do not wait: one
 *                       line per case, "<case> <result> <errno name or value>" */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

static volatile int ticks;
static volatile int stop;
static volatile int saw_sigint_ignored;

static void* ticker(void* arg) {
  (void)arg;
  while (!stop) {
    usleep(20000);
    ++ticks;
    struct sigaction now;
    if (sigaction(SIGINT, NULL, &now) == 0 && now.sa_handler == SIG_IGN) saw_sigint_ignored = 1;
  }
  return NULL;
}

static void on_sigint(int sig) { (void)sig; }

static int run_system(void) {
  struct sigaction mine;
  memset(&mine, 0, sizeof mine);
  mine.sa_handler = on_sigint;
  sigaction(SIGINT, &mine, NULL);
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  usleep(30000);
  int k = ticks;
  struct timespec t0 = now_monotonic();
  int st = system("sleep 0.5; exit 5");
  printf("system %d ticks %d elapsed_ms %ld sigint_ignored %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, ticks - k,
         ms_since(t0), saw_sigint_ignored);
  stop = 1;
  pthread_join(t, NULL);
  struct sigaction now;
  sigaction(SIGINT, NULL, &now);
  printf("restored %d\n", now.sa_handler == on_sigint);
  printf("shell %d\n", system(NULL) != 0);
  return 0;
}

static pid_t child_exiting(int ms, int code) {
  pid_t pid = fork();
  if (pid == 0) {
    usleep((useconds_t)ms * 1000);
    _exit(code);
  }
  return pid;
}

static const char* errname(int e) {
  switch (e) {
    case 0: return "0";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    default: return strerror(e);
  }
}

static void report(const char* call, int pid_ok, int status, int ticks0, struct timespec t0) {
  printf("%s %d %d ticks %d elapsed_ms %ld\n", call, pid_ok, status, ticks - ticks0, ms_since(t0));
  fflush(stdout);
}

static int run_ticks(void) {
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  usleep(30000); /* the ticker is running */
  int st = 0;

  pid_t pid = child_exiting(500, 7);
  int k = ticks;
  struct timespec t0 = now_monotonic();
  pid_t r = waitpid(pid, &st, 0);
  report("waitpid", r == pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1, k, t0);

  pid = child_exiting(500, 8);
  k = ticks;
  t0 = now_monotonic();
  struct rusage ru;
  r = wait4(pid, &st, 0, &ru);
  report("wait4", r == pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1, k, t0);

  pid = child_exiting(500, 9);
  k = ticks;
  t0 = now_monotonic();
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int w = waitid(P_PID, (id_t)pid, &info, WEXITED);
  report("waitid", w == 0 && info.si_pid == pid && info.si_code == CLD_EXITED, info.si_status, k, t0);

  pid = child_exiting(500, 10);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  k = ticks;
  t0 = now_monotonic();
  memset(&info, 0, sizeof info);
  w = waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
  report("pidfd", pidfd >= 0 && w == 0 && info.si_pid == pid, info.si_status, k, t0);
  close(pidfd);

  stop = 1;
  pthread_join(t, NULL);
  return 0;
}

static int pipe_fds[2];
static long drained;

static void* reader(void* arg) {
  (void)arg;
  char buf[65536];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) drained += n;
  return NULL;
}

static int run_drain(void) {
  if (pipe(pipe_fds) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    static char block[65536];
    for (int i = 0; i < 64; ++i)
      if (write(pipe_fds[1], block, sizeof block) != (ssize_t)sizeof block) _exit(3);
    _exit(0);
  }
  close(pipe_fds[1]);
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  int st = -1;
  pid_t r = waitpid(pid, &st, 0);
  pthread_join(t, NULL);
  printf("drain %d bytes %ld\n", r == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1, drained);
  return 0;
}

static int open_fds(void) {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (d != NULL && readdir(d) != NULL) ++n;
  if (d != NULL) closedir(d);
  return n;
}

static volatile int cleaned;
static pid_t cancel_child;

static void note_cleanup(void* arg) {
  (void)arg;
  cleaned = 1;
}

static void* wait_cancelled(void* arg) {
  const char* call = arg;
  pthread_cleanup_push(note_cleanup, NULL);
  if (strcmp(call, "waitpid") == 0) {
    waitpid(cancel_child, NULL, 0);
  } else {
    int st = system("exec sleep 30");
    (void)st;
  }
  pthread_cleanup_pop(0);
  return NULL;
}

static int run_cancel(void) {
  static const char* calls[] = {"waitpid", "system"};
  cancel_child = fork();
  if (cancel_child == 0) {
    pause();
    _exit(0);
  }
  for (int i = 0; i < 2; ++i) {
    cleaned = 0;
    int fds = open_fds();
    pthread_t t;
    pthread_create(&t, NULL, wait_cancelled, (void*)calls[i]);
    usleep(100000); /* the thread waits */
    pthread_cancel(t);
    void* r = NULL;
    pthread_join(t, &r);
    printf("%s canceled %d cleanup %d fds_leaked %d\n", calls[i], r == PTHREAD_CANCELED, cleaned, open_fds() - fds);
  }
  kill(cancel_child, SIGKILL);
  waitpid(cancel_child, NULL, 0);
  errno = 0;
  pid_t r = waitpid(-1, NULL, WNOHANG);
  printf("shell_reaped %d\n", r == -1 && errno == ECHILD);
  return 0;
}

static void line(const char* what, long r, int e) { printf("%s %ld %s\n", what, r, errname(e)); }

static int run_errors(void) {
  int st = 0;
  errno = 0;
  pid_t r = waitpid(1, &st, 0); /* init is nobody's child here */
  line("not_child", r, errno);

  pid_t pid = child_exiting(0, 1);
  waitpid(pid, &st, 0);
  errno = 0;
  r = waitpid(pid, &st, 0);
  line("reaped", r, errno);

  pid = child_exiting(300, 2);
  errno = 0;
  r = waitpid(pid, &st, WNOHANG);
  line("wnohang", r, errno);

  /* waitid with WNOWAIT leaves the child waitable; a null info is allowed. */
  errno = 0;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int w = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
  line("wnowait", w == 0 && info.si_pid == pid ? info.si_status : -1, errno);
  errno = 0;
  w = waitid(P_PID, (id_t)pid, NULL, WEXITED);
  line("null_info", w, errno);
  errno = 0;
  r = waitpid(pid, &st, 0);
  line("after_null_info", r, errno);

  /* A non-blocking pidfd: the real call says EAGAIN at once. */
  pid = child_exiting(300, 3);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0x800 /* PIDFD_NONBLOCK */);
  errno = 0;
  w = waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
  line("nonblocking_pidfd", w, errno);
  close(pidfd);
  waitpid(pid, &st, 0);

  errno = 0;
  w = waitid(P_PID, (id_t)getpid(), &info, 0); /* no WEXITED, WSTOPPED or WCONTINUED */
  line("no_event", w, errno);

  /* WUNTRACED: a stop is reported (the real call), then the kill. */
  pid = fork();
  if (pid == 0) {
    raise(SIGSTOP);
    _exit(0);
  }
  r = waitpid(pid, &st, WUNTRACED);
  line("stopped", r == pid && WIFSTOPPED(st) ? WSTOPSIG(st) : -1, 0);
  kill(pid, SIGKILL);
  r = waitpid(pid, &st, 0);
  line("killed", r == pid && WIFSIGNALED(st) ? WTERMSIG(st) : -1, 0);
  return 0;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "ticks") == 0) return run_ticks();
  if (strcmp(mode, "drain") == 0) return run_drain();
  if (strcmp(mode, "errors") == 0) return run_errors();
  if (strcmp(mode, "system") == 0) return run_system();
  if (strcmp(mode, "cancel") == 0) return run_cancel();
  fprintf(stderr, "usage: child_wait ticks|drain|system|cancel|errors\n");
  return 2;
}

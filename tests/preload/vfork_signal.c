/* vfork_signal: a vfork child that resets a signal to SIG_DFL before exec
 * (as gdb and shells do) must leave its parent's handler in place, and the
 * old actions sigaction() and signal() report follow the kernel's.
 *
 * Prints:
 *   "vfork_hits N"           the handler's runs over raise, vfork+exec, raise (2)
 *   "fork_child S"           a fork child's exit status: 0 when its SIG_IGN,
 *                            reinstall and raise behaved (its own copy)
 *   "fork_hits N"            the parent's runs after that child (3)
 *   "old_after_dfl W"        signal(SIG_DFL) after signal(h): "h"
 *   "old_after_dfl_again W"  a second signal(SIG_DFL): "SIG_DFL"
 *   "resethand_hits N W"     SA_RESETHAND: one run, then the action is "SIG_DFL"
 *   "ign_query W"            after SIG_IGN, a query reports "SIG_IGN" */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static void h(int sig) {
  (void)sig;
  ++hits;
}

static const char* name_of(void (*fn)(int)) {
  if (fn == h) return "h";
  if (fn == SIG_DFL) return "SIG_DFL";
  if (fn == SIG_IGN) return "SIG_IGN";
  return "other";
}

static int fork_child(void) {
  if (signal(SIGUSR1, SIG_IGN) != h) return 1;
  raise(SIGUSR1); /* ignored */
  if (signal(SIGUSR1, h) != SIG_IGN) return 2;
  int before = hits;
  raise(SIGUSR1);
  return hits == before + 1 ? 0 : 3;
}

int main(void) {
  signal(SIGUSR1, h);
  raise(SIGUSR1);
  fflush(stdout);
  pid_t pid = vfork();
  if (pid == 0) {
    signal(SIGUSR1, SIG_DFL);
    execl("/bin/true", "true", (char*)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  raise(SIGUSR1);
  printf("vfork_hits %d\n", (int)hits);

  pid = fork();
  if (pid == 0) _exit(fork_child());
  waitpid(pid, &st, 0);
  printf("fork_child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
  raise(SIGUSR1);
  printf("fork_hits %d\n", (int)hits);

  printf("old_after_dfl %s\n", name_of(signal(SIGUSR1, SIG_DFL)));
  printf("old_after_dfl_again %s\n", name_of(signal(SIGUSR1, SIG_DFL)));

  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = h;
  act.sa_flags = SA_RESETHAND;
  sigemptyset(&act.sa_mask);
  sigaction(SIGUSR2, &act, NULL);
  hits = 0;
  raise(SIGUSR2);
  sigaction(SIGUSR2, NULL, &old);
  printf("resethand_hits %d %s\n", (int)hits, name_of(old.sa_handler));

  signal(SIGUSR2, h);
  signal(SIGUSR2, SIG_IGN);
  sigaction(SIGUSR2, NULL, &old);
  printf("ign_query %s\n", name_of(old.sa_handler));
  return 0;
}

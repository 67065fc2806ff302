/* poll_spin.c: a thread that polls in a loop for what another thread must
 * do. Main fills a pipe and polls it (poll, poll with timeout 0, select,
 * epoll_wait) until a second thread, after a 50 ms sleep, has drained it:
 * every poll finds the pipe readable at once, so only a poll that lets the
 * other threads run ever ends the loop (natively the kernel preempts main).
 * Prints "<call> 0 <loops>" per call; a hang means the reader never ran. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static atomic_int drained;

static void* reader(void* arg) {
  (void)arg;
  struct timespec nap = {0, 50 * 1000 * 1000};
  nanosleep(&nap, NULL);
  char c;
  if (read(fds[0], &c, 1) != 1) return NULL;
  atomic_store(&drained, 1);
  return NULL;
}

static int ready(const char* call, int epfd) {
  if (strcmp(call, "poll") == 0 || strcmp(call, "poll0") == 0) {
    struct pollfd p = {fds[0], POLLIN, 0};
    return poll(&p, 1, strcmp(call, "poll") == 0 ? -1 : 0);
  }
  if (strcmp(call, "select") == 0) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fds[0], &r);
    return select(fds[0] + 1, &r, NULL, NULL, NULL);
  }
  struct epoll_event ev;
  return epoll_wait(epfd, &ev, 1, -1);
}

int main(void) {
  const char* calls[] = {"poll", "poll0", "select", "epoll_wait"};
  for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; ++i) {
    if (pipe(fds) != 0 || write(fds[1], "x", 1) != 1) return 1;
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = fds[0]}};  /* level-triggered */
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fds[0], &ev) != 0) return 1;
    atomic_store(&drained, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0) return 1;
    long loops = 0;
    while (!atomic_load(&drained)) {
      if (ready(calls[i], epfd) < 0) {
        perror(calls[i]);
        return 1;
      }
      ++loops;
    }
    pthread_join(t, NULL);
    printf("%s 0 %ld\n", calls[i], loops);
    close(epfd);
    close(fds[0]);
    close(fds[1]);
  }
  return 0;
}

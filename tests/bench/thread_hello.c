/* thread_hello: an ordinary thread-per-connection HTTP/1.1 "hello" server,
 * written as a server was written before event loops: main accepts, and
 * every connection gets a detached pthread doing blocking read() and write().
 * It knows nothing of moss; tests/preload runs it under mossrun (5,000
 * concurrent clients) and preload_bench.py measures it natively and under
 * mossrun against epoll_hello.
 *
 *   thread_hello [PORT [READ_SIZE]]   (port 0 or absent: a free port;
 *                                     prints "port N")
 *
 * The answer is the same bytes as epoll_hello's, once per request head
 * (counted by its blank line, as epoll_hello does), keep-alive. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char response[] =
    "HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 6\r\n\r\nhello\n";

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* How much one read() asks for: argv[2], at most the buffer's size. Not a
 * constant, so a fortified build checks it with __read_chk. */
static size_t read_size = 4096;

static void* serve(void* arg) {
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  char head[4096]; /* an unfinished request head carried to the next read */
  char out[16 * sizeof response];
  size_t held = 0;
  for (;;) {
    ssize_t r = read(fd, buf, read_size);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    /* The common case (whole heads in one read) scans buf without copying. */
    const char* data = buf;
    size_t len = (size_t)r;
    if (held > 0) {
      if (held + len > sizeof head) break; /* a head larger than the buffer */
      memcpy(head + held, buf, len);
      data = head;
      len += held;
    }
    size_t pos = 0, used = 0;
    for (;;) {
      const char* end = len - pos >= 4 ? memmem(data + pos, len - pos, "\r\n\r\n", 4) : NULL;
      if (end == NULL) break;
      pos = (size_t)(end - data) + 4;
      if (used + sizeof response - 1 > sizeof out) {
        if (write_all(fd, out, used) != 0) goto done;
        used = 0;
      }
      memcpy(out + used, response, sizeof response - 1);
      used += sizeof response - 1;
    }
    if (used > 0 && write_all(fd, out, used) != 0) break;
    held = len - pos;
    if (held > 0) memmove(head, data + pos, held);
  }
done:
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  int port = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2 && atol(argv[2]) > 0 && (size_t)atol(argv[2]) < read_size) read_size = (size_t)atol(argv[2]);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
    fprintf(stderr, "thread_hello: cannot listen on port %d: %s\n", port, strerror(errno));
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(lfd, (struct sockaddr*)&a, &alen);
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);

  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        usleep(10000);
        continue;
      }
      perror("thread_hello: accept");
      return 1;
    }
    fcntl(c, F_SETFD, FD_CLOEXEC);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    int e = pthread_create(&t, NULL, serve, (void*)(intptr_t)c);
    if (e != 0) {
      fprintf(stderr, "thread_hello: pthread_create: %s\n", strerror(e));
      close(c);
      continue;
    }
    pthread_detach(t);
  }
}

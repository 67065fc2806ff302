/* dns_many: 200 threads, each resolving its own name with getaddrinfo, as a
 * crawler or a thread-per-request proxy does. The test's DNS server answers
 * host-N.moss.test with 10.77.N/256.N%256 after a delay: if the lookups run
 * concurrently the whole takes about one delay.
 *
 *   dns_many [COUNT]   (default 200)
 *
 * Prints "threads T", "resolved R", "wrong W" (an unexpected address) and
 * "elapsed_ms E"; each failure on stderr. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "report.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int resolved, wrong;

static void* lookup(void* arg) {
  int n = (int)(intptr_t)arg;
  char name[64], want[32], got[INET_ADDRSTRLEN] = "";
  snprintf(name, sizeof name, "host-%d.moss.test", n);
  snprintf(want, sizeof want, "10.77.%d.%d", n / 256, n % 256);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int e = getaddrinfo(name, "80", &hints, &res);
  if (e == 0) inet_ntop(AF_INET, &((struct sockaddr_in*)res->ai_addr)->sin_addr, got, sizeof got);
  pthread_mutex_lock(&mu);
  if (e != 0) {
    fprintf(stderr, "dns_many: %s: %s\n", name, gai_strerror(e));
  } else if (strcmp(got, want) != 0) {
    fprintf(stderr, "dns_many: %s: got %s, want %s\n", name, got, want);
    ++wrong;
  } else {
    ++resolved;
  }
  pthread_mutex_unlock(&mu);
  if (res != NULL) freeaddrinfo(res);
  return NULL;
}

int main(int argc, char** argv) {
  int count = argc > 1 ? atoi(argv[1]) : 200;
  pthread_t* t = calloc((size_t)count, sizeof *t);
  struct timespec t0 = now_monotonic();
  for (int i = 0; i < count; ++i) {
    int e = pthread_create(&t[i], NULL, lookup, (void*)(intptr_t)i);
    if (e != 0) {
      fprintf(stderr, "dns_many: pthread_create failed (%d)\n", e);
      return 1;
    }
  }
  int threads = os_threads();
  for (int i = 0; i < count; ++i) pthread_join(t[i], NULL);
  printf("threads %d\nresolved %d\nwrong %d\nelapsed_ms %ld\n", threads, resolved, wrong, ms_since(t0));
  free(t);
  return 0;
}

// blocking_hello: an HTTP/1.1 keep-alive "hello" server written the way one
// writes a thread-per-connection server — blocking accept/read/write, no
// moss API in the connection code — except that each connection is a moss
// task. Linked with libmoss_patch, the blocking calls park on the hub, so
// one OS thread serves every connection. Compared with epoll_hello (a
// hand-written epoll loop) by httpd_bench.py.
//
//   blocking_hello [PORT]   (0 or absent: a free port; prints "port N")
#include <moss/moss.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

// The same bytes as epoll_hello's answer, so wrk does the same work against
// each.
constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 6\r\n\r\nhello\n";

// One connection: read requests, answer each complete one. Plain POSIX.
void serve(int c) {
  char buf[8192];
  std::size_t have = 0;
  for (;;) {
    ssize_t n = read(c, buf + have, sizeof buf - have);
    if (n <= 0) break;
    have += static_cast<std::size_t>(n);
    std::size_t start = 0;
    for (;;) {
      std::string_view rest(buf + start, have - start);
      std::size_t end = rest.find("\r\n\r\n");
      if (end == std::string_view::npos) break;
      if (write(c, response.data(), response.size()) < 0) {
        close(c);
        return;
      }
      start += end + 4;
    }
    std::memmove(buf, buf + start, have - start);
    have -= start;
    if (have == sizeof buf) break;  // a request too large for this toy
  }
  close(c);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  return moss::run([port] {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4096) != 0) {
      std::fprintf(stderr, "blocking_hello: cannot listen on port %d: %s\n", port, std::strerror(errno));
      return 1;
    }
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    std::printf("port %d\n", ntohs(a.sin_port));
    std::fflush(stdout);
    for (;;) {
      int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      moss::spawn(serve, c);
    }
  });
}

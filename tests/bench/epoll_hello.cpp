// epoll_hello: the baseline for httpd_bench. A hand-written single-threaded
// level-triggered epoll loop answering every request head with "hello",
// keep-alive, no parsing beyond counting blank lines: about the least work a
// server can do per request, so moss-httpd's /hello is measured against it.
//
//   epoll_hello [PORT]   (0 or absent: a free port; prints "port N")
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

// The same bytes as blocking_hello's answer (and the length of moss-httpd's
// within a few bytes), so wrk does the same work against each.
constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 6\r\n\r\nhello\n";

// Per connection: bytes of an unfinished request head carried over, so a
// head split across reads is still counted once.
struct conn {
  std::string partial;
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 4096) != 0) {
    std::fprintf(stderr, "epoll_hello: cannot listen on port %d: %s\n", port, std::strerror(errno));
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen);
  std::printf("port %d\n", ntohs(a.sin_port));
  std::fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::vector<conn> conns;
  std::vector<epoll_event> events(512);
  std::string out;
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 1;
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (static_cast<std::size_t>(c) >= conns.size()) conns.resize(static_cast<std::size_t>(c) + 1);
          conns[static_cast<std::size_t>(c)].partial.clear();
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close(fd);  // also leaves epoll
        continue;
      }
      auto& c = conns[static_cast<std::size_t>(fd)];
      // The common case (a whole head in one read) scans the read buffer
      // without copying it.
      std::string_view data(buf, static_cast<std::size_t>(r));
      if (!c.partial.empty()) data = c.partial.append(data);
      out.clear();
      std::size_t pos = 0, end;
      while ((end = data.find("\r\n\r\n", pos)) != std::string_view::npos) {
        out.append(response);
        pos = end + 4;
      }
      std::string rest(data.substr(pos));
      c.partial = std::move(rest);
      // Small responses to a client that reads: send does not block here.
      if (!out.empty() && send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) close(fd);
    }
  }
}

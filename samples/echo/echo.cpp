// moss-echo: a TCP echo server. Style: plain POSIX + linked libmoss_patch.
//
// Every connection is served by ordinary blocking code (accept, read,
// write, close) running in a greenlet; libmoss_patch, linked into the
// program, turns each call that would block into a park on the hub, so one
// thread serves thousands of connections. moss's own API appears only to
// spawn the greenlets and to hear SIGINT/SIGTERM.
//
// --workers N runs N hubs on N threads, each accepting on its own
// SO_REUSEPORT listener bound to the same port (the kernel spreads new
// connections across them). On SIGINT/SIGTERM every worker closes its
// listener, lets open connections finish for up to --grace seconds, then
// cuts the rest and the program exits 0.
#include "args.hpp"

#include <moss/moss.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <string>
#include <thread>
#include <vector>

namespace {

// Set by the first worker to hear SIGINT/SIGTERM: a worker whose handlers
// were registered a moment after the signal came still stops.
std::atomic<bool> stopping{false};

constexpr const char* usage_text =
    "usage: moss-echo [--host ADDR] [--port PORT] [--workers N] [--grace SECONDS]\n"
    "\n"
    "A TCP echo server: every byte a client sends is sent back.\n"
    "\n"
    "  --host ADDR      address to listen on (default 127.0.0.1)\n"
    "  --port PORT      port to listen on (default 7007; 0 picks a free one)\n"
    "  --workers N      N threads, each with its own hub and SO_REUSEPORT listener (default 1)\n"
    "  --grace SECONDS  on SIGINT/SIGTERM, how long open connections may go on (default 5)\n"
    "  --help, --version\n"
    "\n"
    "Prints \"moss-echo: listening on ADDR:PORT\" once it accepts connections.\n"
    "\n"
    "examples:\n"
    "  moss-echo --port 9000 &\n"
    "  echo hello | nc -q1 127.0.0.1 9000\n"
    "  moss-echo --host 0.0.0.0 --workers 4\n";

struct options {
  std::string host = "127.0.0.1";
  int port = 7007;
  int workers = 1;
  double grace = 5;
};

const sample::args cli("moss-echo", usage_text);

options parse_args(int argc, char** argv) {
  options o;
  auto operands = cli.parse(argc, argv, {{"host", 0, true}, {"port", 0, true}, {"workers", 0, true}, {"grace", 0, true}},
                            [&](std::string_view opt, const char* v) {
                              if (opt == "--host") o.host = v;
                              else if (opt == "--port") o.port = static_cast<int>(cli.number(opt, v, 0, 65535));
                              else if (opt == "--workers") o.workers = static_cast<int>(cli.number(opt, v, 1, 256));
                              else o.grace = cli.real(opt, v, 0, 86400);
                            });
  if (!operands.empty()) cli.fail("unexpected argument \"" + operands[0] + "\"");
  return o;
}

// open_listener() makes a listening socket on addr, with SO_REUSEPORT so
// every worker can have its own. Exits 1 with a one-line message on failure.
int open_listener(const sockaddr_storage& addr, socklen_t len, const std::string& shown) {
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 || listen(fd, SOMAXCONN) != 0) {
    std::fprintf(stderr, "moss-echo: cannot listen on %s: %s\n", shown.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

// serve() echoes one connection until the client closes its side. Plain
// blocking calls: the patch layer parks this greenlet while they wait.
void serve(int fd) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // reset by the peer, or cut at the end of the grace period
    }
    // A blocking write sends everything unless the connection breaks.
    if (send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  close(fd);
}

// worker() runs one hub: accept on listener, one greenlet per connection,
// until SIGINT/SIGTERM; then the grace period.
// ready counts down once this worker hears signals.
void worker(int listener, double grace, std::latch* ready) try {
  moss::run([&] {
    moss::event stop;
    auto on_signal = [&] {
      stopping = true;
      stop.set();
    };
    auto on_int = moss::signal_handler(SIGINT, on_signal);
    auto on_term = moss::signal_handler(SIGTERM, on_signal);
    ready->count_down();
    if (stopping) stop.set();
    moss::group conns;
    auto acceptor = moss::spawn([&] {
      for (;;) {
        int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns.spawn(serve, c);
          continue;
        }
        // EBADF: our listener was closed (shutting down). Running out of
        // fds or a connection aborted before we took it is not fatal.
        if (errno == EBADF || errno == EINVAL) return;
        if (errno == EMFILE || errno == ENFILE) {
          std::fprintf(stderr, "moss-echo: accept: %s\n", std::strerror(errno));
          sleep(1);  // patched: parks this greenlet only
        }
      }
    });
    stop.wait();
    close(listener);  // wakes the acceptor with EBADF; new connections are refused
    acceptor.join();
    if (!conns.join(std::chrono::duration<double>(grace))) {
      std::fprintf(stderr, "moss-echo: grace period over, closing %zu connection(s)\n", conns.size());
      conns.kill();
    }
  });
} catch (const std::exception& e) {
  std::fprintf(stderr, "moss-echo: %s\n", e.what());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse_args(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(o.port);
  if (int rc = getaddrinfo(o.host.c_str(), port_text.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "moss-echo: bad --host \"%s\": %s\n", o.host.c_str(), gai_strerror(rc));
    return 2;
  }
  sockaddr_storage addr{};
  socklen_t len = res->ai_addrlen;
  std::memcpy(&addr, res->ai_addr, len);
  freeaddrinfo(res);

  // The first listener settles the port (--port 0 picks one); the other
  // workers bind to the same one.
  std::vector<int> listeners;
  listeners.push_back(open_listener(addr, len, o.host + ":" + port_text));
  getsockname(listeners[0], reinterpret_cast<sockaddr*>(&addr), &len);
  char shown[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a6->sin6_addr, shown, sizeof shown);
    port = ntohs(a6->sin6_port);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a4->sin_addr, shown, sizeof shown);
    port = ntohs(a4->sin_port);
  }
  for (int i = 1; i < o.workers; ++i) listeners.push_back(open_listener(addr, len, o.host + ":" + std::to_string(port)));

  // Announced once every worker hears SIGINT/SIGTERM, so a signal sent
  // after the announcement stops them all.
  std::latch ready(o.workers + 1);
  std::thread announce([&] {
    ready.arrive_and_wait();
    std::printf("moss-echo: listening on %s:%d (%d worker%s)\n", shown, port, o.workers, o.workers == 1 ? "" : "s");
    std::fflush(stdout);
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < o.workers; ++i) threads.emplace_back(worker, listeners[static_cast<std::size_t>(i)], o.grace, &ready);
  worker(listeners[0], o.grace, &ready);
  for (auto& t : threads) t.join();
  announce.join();
  return 0;
}

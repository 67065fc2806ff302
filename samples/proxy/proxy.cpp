// moss-proxy: a TCP port forwarder. Style: explicit moss API.
//
// One task per connection copies client -> upstream while a second copies
// upstream -> client (moss::io::read/write park the greenlet, not the
// thread). When one side ends its output (EOF) the other side is told with
// shutdown(SHUT_WR), so half-closed protocols work; the connection is
// closed when both directions have ended. The upstream connect is bounded by
// a moss::timeout; idleness (no byte moved either way, whether because
// nobody sends or because a peer stopped reading) by the deadlines given to
// wait_readable and wait_writable.
// A reset is passed on as a reset: when one side resets the connection, the
// other is closed with SO_LINGER 0 and never sent a FIN, so a client can
// tell a truncated stream from a complete one (a clean end of file).
// --max-connections is a moss::semaphore taken before accept: past the
// limit new clients wait in the kernel's listen backlog until one finishes.
#include "args.hpp"

#include <moss/moss.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

constexpr const char* usage_text =
    "usage: moss-proxy [options] LISTEN_PORT UPSTREAM_HOST:PORT\n"
    "       moss-proxy [options] --listen [HOST:]PORT --upstream HOST:PORT\n"
    "\n"
    "Forwards every TCP connection made to the listening port to the upstream\n"
    "address, copying bytes both ways. When one side closes its output the\n"
    "other is told (shutdown SHUT_WR), so half-closed connections work. When\n"
    "one side resets the connection the other is reset too (SO_LINGER 0), so\n"
    "a truncated stream never ends like a complete one.\n"
    "\n"
    "  --listen [HOST:]PORT    where to listen (HOST defaults to 127.0.0.1; PORT 0\n"
    "                          picks a free one)\n"
    "  --upstream HOST:PORT    where to forward (HOST may be a name)\n"
    "  --idle-timeout SECONDS  close a connection after this long with no byte\n"
    "                          either way (default 0: never)\n"
    "  --max-connections N     at most N connections at once (default 1000); more\n"
    "                          clients wait in the listen backlog, unanswered,\n"
    "                          until one finishes (they are not refused)\n"
    "  --connect-timeout SECONDS  how long to try the upstream (default 10)\n"
    "  --help, --version\n"
    "\n"
    "Prints \"moss-proxy: listening on ADDR:PORT\" once it accepts connections.\n"
    "A client whose upstream cannot be reached is closed, and one line on\n"
    "stderr says why. SIGINT/SIGTERM close everything and exit 0.\n"
    "\n"
    "examples:\n"
    "  moss-proxy 8080 example.com:80\n"
    "  moss-proxy --listen 0.0.0.0:5433 --upstream db.internal:5432 --idle-timeout 600\n";

struct options {
  std::string listen_host = "127.0.0.1";
  std::string listen_port;
  std::string up_host, up_port;
  double idle = 0;
  double connect_timeout = 10;
  long max_connections = 1000;
};

const sample::args cli("moss-proxy", usage_text);

[[noreturn]] void usage_error(const std::string& msg) { cli.fail(msg); }

bool valid_port(const std::string& p) {
  return !p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos && std::stol(p) <= 65535;
}

// split_host_port() splits "host:port" ("[v6]:port" too); the host part
// is optional only where default_host is given.
void split_host_port(const std::string& flag, const std::string& text, const char* default_host, std::string* host,
                     std::string* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    if (default_host == nullptr) usage_error(sample::args::bad_value(flag, text.c_str()) + ": expected HOST:PORT");
    *host = default_host;
    *port = text;
  } else {
    *host = text.substr(0, colon);
    *port = text.substr(colon + 1);
    if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  }
  if (host->empty() || !valid_port(*port))
    usage_error(sample::args::bad_value(flag, text.c_str()) + ": expected " + (default_host ? "[HOST:]PORT" : "HOST:PORT") +
                " with a port from 0 to 65535");
}

options parse_args(int argc, char** argv) {
  options o;
  bool have_listen = false, have_upstream = false;
  std::vector<std::string> positional = cli.parse(
      argc, argv,
      {{"listen", 0, true}, {"upstream", 0, true}, {"idle-timeout", 0, true}, {"connect-timeout", 0, true},
       {"max-connections", 0, true}},
      [&](std::string_view opt, const char* v) {
        if (opt == "--listen") {
          split_host_port(std::string(opt), v, "127.0.0.1", &o.listen_host, &o.listen_port);
          have_listen = true;
        } else if (opt == "--upstream") {
          split_host_port(std::string(opt), v, nullptr, &o.up_host, &o.up_port);
          have_upstream = true;
        } else if (opt == "--idle-timeout") {
          o.idle = cli.real(opt, v, 0, 1e6);
        } else if (opt == "--connect-timeout") {
          o.connect_timeout = cli.real(opt, v, 0, 1e6);
        } else {
          o.max_connections = cli.number(opt, v, 1, 9999999);
        }
      });
  if (positional.size() == 2 && !have_listen && !have_upstream) {
    if (!valid_port(positional[0]))
      usage_error(sample::args::bad_value("LISTEN_PORT", positional[0].c_str()) + ": expected a port from 0 to 65535");
    o.listen_port = positional[0];
    split_host_port("UPSTREAM", positional[1], nullptr, &o.up_host, &o.up_port);
  } else if (!positional.empty() || !have_listen || !have_upstream) {
    usage_error("expected LISTEN_PORT UPSTREAM_HOST:PORT, or --listen and --upstream");
  }
  return o;
}

// fd_guard closes a socket however the task ends (killed included).
struct fd_guard {
  int fd;
  explicit fd_guard(int f) : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0) moss::io::close(fd);
  }
};

// connect_upstream() returns a connected socket, or -1 with the reason in
// *why.
int connect_upstream(const options& o, std::string* why) {
  std::vector<moss::dns::address> addrs;
  try {
    addrs = moss::dns::resolve(o.up_host, o.up_port);
  } catch (const moss::dns::error& e) {
    *why = std::string("cannot resolve \"") + o.up_host + "\": " + gai_strerror(e.code());
    return -1;
  }
  for (const auto& a : addrs) {
    int fd = moss::io::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *why = std::strerror(errno);
      continue;
    }
    int rc = -1;
    try {
      moss::timeout limit(std::chrono::duration<double>(o.connect_timeout));
      rc = moss::io::connect(fd, a.get(), a.length);
      if (rc != 0) *why = std::strerror(errno);
    } catch (const moss::timeout_error&) {
      *why = "timed out";
    }
    if (rc == 0) return fd;
    moss::io::close(fd);
  }
  return -1;
}

// session: what the two directions of one proxied connection share.
struct session {
  clk::time_point last_activity = clk::now();
  bool reset = false;  // one side was reset and the other is being aborted
};

// abort_side() makes the closing of fd send a reset and no FIN (SO_LINGER
// 0), and wakes whatever waits to read it (shutdown SHUT_RD sends nothing
// to the peer): the pump reading it returns, and serve() then closes it.
void abort_side(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::shutdown(fd, SHUT_RD);
}

// wait_for() waits until fd is ready (readable, or writable when `out`),
// or, with an idle limit, until no byte has moved either way for that long.
// False when idle or on error.
bool wait_for(int fd, bool out, const clk::time_point* last_activity, clk::duration idle) {
  for (;;) {
    if (idle == clk::duration::zero()) return (out ? moss::io::wait_writable(fd) : moss::io::wait_readable(fd)) == 0;
    clk::time_point deadline = *last_activity + idle;
    int rc = out ? moss::io::wait_writable(fd, deadline) : moss::io::wait_readable(fd, deadline);
    if (rc == 0) return true;
    if (errno != ETIMEDOUT) return false;
    // The other direction may have moved bytes meanwhile.
    if (clk::now() >= *last_activity + idle) return false;
  }
}

// pump() copies from -> to until from's EOF (then tells `to` with
// SHUT_WR), a reset of either side (then aborts the other), another error,
// or idleness (then ends both directions). A peer that stops reading stalls
// the copy, which then counts as idle too. Once a reset is being passed on,
// a pump only returns: a FIN sent now would make the truncation look whole.
void pump(int from, int to, session* shared, double idle_seconds) {
  const auto idle = std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(idle_seconds));
  clk::time_point* last_activity = &shared->last_activity;
  char buf[16384];
  for (;;) {
    if (!wait_for(from, false, last_activity, idle)) break;
    if (shared->reset) return;
    ssize_t n = moss::io::recv(from, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      if (!shared->reset) ::shutdown(to, SHUT_WR);
      return;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (errno == ECONNRESET && !shared->reset) {
        shared->reset = true;
        abort_side(to);
        return;
      }
      break;
    }
    *last_activity = clk::now();
    bool ok = true;
    for (ssize_t done = 0; ok && done < n;) {
      ssize_t w = moss::io::send(to, buf + done, static_cast<std::size_t>(n - done), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) {
        done += w;
        *last_activity = clk::now();
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        ok = wait_for(to, true, last_activity, idle);
      } else {
        if (w < 0 && errno == ECONNRESET && !shared->reset) {
          shared->reset = true;
          abort_side(from);
          return;
        }
        ok = false;
      }
    }
    if (!ok) break;
  }
  if (shared->reset) return;
  // Idle or broken: end both directions, which also wakes the other pump
  // (its recv sees EOF, its send fails).
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

void serve(int client_fd, const options& o, moss::semaphore& slots) {
  fd_guard client(client_fd);
  struct slot_guard {
    moss::semaphore& s;
    ~slot_guard() { s.release(); }
  } slot{slots};
  std::string why;
  fd_guard upstream(connect_upstream(o, &why));
  if (upstream.fd < 0) {
    std::fprintf(stderr, "moss-proxy: cannot connect to upstream %s:%s: %s\n", o.up_host.c_str(), o.up_port.c_str(),
                 why.c_str());
    return;
  }
  session shared;
  auto back = moss::spawn(pump, upstream.fd, client.fd, &shared, o.idle);
  try {
    pump(client.fd, upstream.fd, &shared, o.idle);
    back.join();
  } catch (...) {
    back.kill();  // it uses our fds and `shared`: it must end before they do
    throw;
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse_args(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return moss::run([&] {
      std::vector<moss::dns::address> here;
      try {
        here = moss::dns::resolve(o.listen_host, o.listen_port);
      } catch (const moss::dns::error& e) {
        std::fprintf(stderr, "moss-proxy: bad listen address \"%s\": %s\n", o.listen_host.c_str(), gai_strerror(e.code()));
        return 2;
      }
      const auto& a = here.front();
      int lfd = moss::io::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int on = 1;
      if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 || bind(lfd, a.get(), a.length) != 0 ||
          listen(lfd, SOMAXCONN) != 0) {
        std::fprintf(stderr, "moss-proxy: cannot listen on %s:%s: %s\n", o.listen_host.c_str(), o.listen_port.c_str(),
                     std::strerror(errno));
        return 1;
      }
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      getsockname(lfd, reinterpret_cast<sockaddr*>(&bound), &len);
      char shown[INET6_ADDRSTRLEN] = "?";
      int port = 0;
      if (bound.ss_family == AF_INET6) {
        auto* b6 = reinterpret_cast<sockaddr_in6*>(&bound);
        inet_ntop(AF_INET6, &b6->sin6_addr, shown, sizeof shown);
        port = ntohs(b6->sin6_port);
      } else {
        auto* b4 = reinterpret_cast<sockaddr_in*>(&bound);
        inet_ntop(AF_INET, &b4->sin_addr, shown, sizeof shown);
        port = ntohs(b4->sin_port);
      }
      moss::semaphore slots(static_cast<std::size_t>(o.max_connections));
      moss::group conns;
      moss::event stop;
      auto on_int = moss::signal_handler(SIGINT, [&] { stop.set(); });
      auto on_term = moss::signal_handler(SIGTERM, [&] { stop.set(); });
      // Announced once a signal would be heard.
      std::printf("moss-proxy: listening on %s:%d, forwarding to %s:%s\n", shown, port, o.up_host.c_str(),
                  o.up_port.c_str());
      std::fflush(stdout);
      auto acceptor = moss::spawn([&] {
        for (;;) {
          slots.acquire();  // past the limit, clients wait in the backlog
          int c = moss::io::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
          if (c < 0) {
            slots.release();
            if (errno == EBADF || errno == EINVAL) return;  // listener closed: stopping
            if (errno == EMFILE || errno == ENFILE) {
              std::fprintf(stderr, "moss-proxy: accept: %s\n", std::strerror(errno));
              moss::sleep(std::chrono::seconds(1));
            }
            continue;
          }
          conns.spawn(serve, c, std::cref(o), std::ref(slots));
        }
      });
      stop.wait();
      acceptor.kill();
      moss::io::close(lfd);
      conns.kill();
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-proxy: %s\n", e.what());
    return 1;
  }
}

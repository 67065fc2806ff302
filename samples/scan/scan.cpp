// moss-scan: a TCP connect scanner. Style: explicit moss API.
//
// Each port is one task that tries moss::io::connect with a deadline; a
// moss::pool bounds how many attempts are in flight (-c), so a scan of
// 65535 ports holds at most -c sockets and greenlets at a time. The host
// name is resolved with moss::dns. Open ports are printed sorted, one per
// line, once the scan is done.
#include "args.hpp"

#include <moss/moss.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* usage_text =
    "usage: moss-scan [-c N] [--timeout MS] HOST PORTS\n"
    "\n"
    "Tries a TCP connection to each port of HOST and prints the open ones,\n"
    "sorted, one per line as \"PORT open\". A summary (ports tried, open, closed,\n"
    "time) follows on standard error, and while the scan runs a progress line\n"
    "is drawn there when it is a terminal.\n"
    "\n"
    "  PORTS          80, 1-1024, or a list such as 22,80,8000-8100\n"
    "  -c N           attempts in flight at once (default 100)\n"
    "  --timeout MS   how long one attempt may take (default 1000); a port that\n"
    "                 does not answer in time counts as closed\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 scan done, 1 some ports could not be tried (an error other\n"
    "than refused or timed out, reported on stderr), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  moss-scan localhost 1-1024\n"
    "  moss-scan -c 500 --timeout 300 192.168.1.10 22,80,443,8000-8100\n";

const sample::args cli("moss-scan", usage_text);

[[noreturn]] void usage_error(const std::string& msg) { cli.fail(msg); }

// parse_int() reads all of text as a whole number within [lo, hi].
bool parse_int(const std::string& text, long lo, long hi, long* out) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  long v = std::strtol(text.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// parse_ports() turns "22,80,8000-8100" into a sorted list without repeats;
// a bad part is a usage error naming it.
std::vector<int> parse_ports(const std::string& spec) {
  std::vector<int> ports;
  std::size_t start = 0;
  for (;;) {
    std::size_t comma = spec.find(',', start);
    std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    long lo = 0, hi = 0;
    std::size_t dash = part.find('-');
    bool ok = dash == std::string::npos
                  ? parse_int(part, 1, 65535, &lo) && (hi = lo, true)
                  : parse_int(part.substr(0, dash), 1, 65535, &lo) && parse_int(part.substr(dash + 1), 1, 65535, &hi);
    if (!ok) usage_error("bad port range \"" + part + "\": expected PORT or LOW-HIGH with ports from 1 to 65535");
    if (lo > hi) usage_error("bad port range \"" + part + "\": " + std::to_string(lo) + " is above " + std::to_string(hi));
    for (long p = lo; p <= hi; ++p) ports.push_back(static_cast<int>(p));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

enum class outcome { open, closed, failed };

// probe() tries one connection; failed means something other than a plain
// "nobody there" (refused, unreachable, timed out) got in the way.
outcome probe(const moss::dns::address& target, int port, std::chrono::milliseconds timeout, std::string* why) {
  sockaddr_storage a = target.storage;
  if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a)->sin6_port = htons(static_cast<uint16_t>(port));
  else reinterpret_cast<sockaddr_in*>(&a)->sin_port = htons(static_cast<uint16_t>(port));
  int fd = moss::io::socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::strerror(errno);
    return outcome::failed;
  }
  int rc = moss::io::connect(fd, reinterpret_cast<const sockaddr*>(&a), target.length, timeout);
  int err = errno;
  moss::io::close(fd);
  if (rc == 0) return outcome::open;
  switch (err) {
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ECONNRESET:
      return outcome::closed;
    default:
      *why = std::strerror(err);
      return outcome::failed;
  }
}

// address_text() is the numeric form of a resolved address.
std::string address_text(const moss::dns::address& a) {
  char text[INET6_ADDRSTRLEN] = "?";
  const void* raw = a.family == AF_INET6
                        ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr)
                        : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr);
  inet_ntop(a.family, raw, text, sizeof text);
  return text;
}

// draw_progress() draws "done/total ports, N open" over the line it drew
// last on stderr.
void draw_progress(std::size_t done, std::size_t total, std::size_t open) {
  std::fprintf(stderr, "\r\033[Kmoss-scan: %zu/%zu ports, %zu open", done, total, open);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  long concurrency = 100, timeout_ms = 1000;
  std::vector<std::string> positional =
      cli.parse(argc, argv, {{nullptr, 'c', true}, {"timeout", 0, true}}, [&](std::string_view opt, const char* v) {
        if (opt == "-c") concurrency = cli.number(opt, v, 1, 100000);
        else timeout_ms = cli.number(opt, v, 1, 3600000);
      });
  if (positional.size() != 2) usage_error("expected HOST and PORTS");
  std::vector<int> ports = parse_ports(positional[1]);
  std::signal(SIGPIPE, SIG_IGN);

  // Each attempt in flight holds a socket: make room for -c of them.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }

  try {
    return moss::run([&] {
      std::vector<moss::dns::address> addrs;
      try {
        addrs = moss::dns::resolve(positional[0]);
      } catch (const moss::dns::error& e) {
        std::fprintf(stderr, "moss-scan: cannot resolve \"%s\": %s\n", positional[0].c_str(), gai_strerror(e.code()));
        return 1;
      }
      const moss::dns::address target = addrs.front();
      std::vector<outcome> result(ports.size(), outcome::closed);
      std::vector<std::string> why(ports.size());
      bool stopped = false;
      moss::pool p(static_cast<std::size_t>(concurrency));
      auto stop = [&] {
        stopped = true;
        p.kill(false);
      };
      auto on_int = moss::signal_handler(SIGINT, stop);
      auto on_term = moss::signal_handler(SIGTERM, stop);
      std::size_t done = 0, open = 0;
      auto t0 = std::chrono::steady_clock::now();
      moss::task<void> ticker;
      if (::isatty(STDERR_FILENO) != 0) {
        draw_progress(0, ports.size(), 0);
        ticker = moss::spawn([&] {
          for (;;) {
            moss::sleep(std::chrono::milliseconds(100));
            draw_progress(done, ports.size(), open);
          }
        });
      }
      for (std::size_t i = 0; i < ports.size() && !stopped; ++i)
        p.spawn([&, i] {
          result[i] = probe(target, ports[i], std::chrono::milliseconds(timeout_ms), &why[i]);
          ++done;
          if (result[i] == outcome::open) ++open;
        });
      if (stopped) p.kill();  // one more may have started as the signal came
      p.join();
      if (ticker) {
        ticker.kill();
        std::fputs("\r\033[K", stderr);  // the progress line goes; the summary takes its place
      }
      if (stopped) {
        std::fprintf(stderr, "moss-scan: interrupted\n");
        return 1;
      }
      int failed = 0;
      for (std::size_t i = 0; i < ports.size(); ++i) {
        if (result[i] == outcome::open) std::printf("%d open\n", ports[i]);
        if (result[i] == outcome::failed && ++failed <= 5)
          std::fprintf(stderr, "moss-scan: port %d: %s\n", ports[i], why[i].c_str());
      }
      if (failed > 5) std::fprintf(stderr, "moss-scan: %d ports in all could not be tried\n", failed);
      std::fflush(stdout);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "moss-scan: %zu port%s of %s (%s) scanned in %.2f s: %zu open, %zu closed%s\n",
                   ports.size(), ports.size() == 1 ? "" : "s", positional[0].c_str(), address_text(target).c_str(),
                   secs, open, ports.size() - open - static_cast<std::size_t>(failed),
                   failed > 0 ? (", " + std::to_string(failed) + " not tried").c_str() : "");
      return failed > 0 ? 1 : 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-scan: %s\n", e.what());
    return 1;
  }
}

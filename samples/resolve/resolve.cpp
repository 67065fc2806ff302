// moss-resolve: a bulk DNS resolver. Uses the explicit moss API:
// moss::dns::getaddrinfo in tasks of a moss::pool, so many lookups are in
// flight at once on one thread.
//
// Results are printed in input order as soon as every earlier name is done,
// so a long list streams out instead of appearing all at the end.
#include "args.hpp"

#include <moss/dns.hpp>
#include <moss/pool.hpp>
#include <moss/signal.hpp>
#include <moss/task.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

const char* const usage_text =
    "usage: moss-resolve [-c N] [-4|-6] [--server IP[:PORT]] [NAME...]\n"
    "\n"
    "Resolves many host names concurrently. Names come from the arguments, or\n"
    "from standard input (one per line) when there are none. Each result is a\n"
    "line \"name<TAB>address address...\" or \"name<TAB>ERROR <reason>\", in input\n"
    "order.\n"
    "\n"
    "options:\n"
    "  -c N               lookups in flight at once (default 100)\n"
    "  -4, -6             IPv4 or IPv6 addresses only (default: both)\n"
    "  --server IP[:PORT] ask this name server (several: comma-separated;\n"
    "                     IPv6 as [addr]:port) instead of /etc/resolv.conf's\n"
    "  -h, --help         this text\n"
    "  --version          the version\n"
    "\n"
    "exit status: 0 all resolved, 1 some failed, 2 usage error\n"
    "\n"
    "examples:\n"
    "  moss-resolve example.com localhost\n"
    "  moss-resolve -c 500 -4 < names.txt\n"
    "  moss-resolve --server 127.0.0.1:5353 a.test b.test\n";

const sample::args cli("moss-resolve", usage_text);

// lookup() returns the line printed for name (without the newline).
std::string lookup(const std::string& name, int family) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address, not one per socket type
  addrinfo* res = nullptr;
  int rc = moss::dns::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  std::string line = name + '\t';
  if (rc != 0) return line + "ERROR " + gai_strerror(rc);
  bool first = true;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    const void* raw = a->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (inet_ntop(a->ai_family, raw, text, sizeof text) == nullptr) continue;
    if (!first) line += ' ';
    line += text;
    first = false;
  }
  moss::dns::freeaddrinfo(res);
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::size_t concurrency = 100;
  int family = AF_UNSPEC;
  bool only4 = false, only6 = false;
  std::optional<std::string> server;
  std::vector<std::string> names = cli.parse(
      argc, argv, {{nullptr, 'c', true}, {nullptr, '4', false}, {nullptr, '6', false}, {"server", 0, true}},
      [&](std::string_view opt, const char* v) {
        if (opt == "-c") concurrency = static_cast<std::size_t>(cli.number(opt, v, 1, 1000000));
        else if (opt == "-4") only4 = true;
        else if (opt == "-6") only6 = true;
        else server = v;
      });
  if (only4 != only6) family = only4 ? AF_INET : AF_INET6;  // both given: both families

  if (server) {
    if (server->empty()) cli.fail("bad value \"\" for --server: expected IP[:PORT]");
    try {
      moss::dns::settings s = moss::dns::current_settings();
      s.servers = *server;
      moss::dns::configure(s);
    } catch (const std::exception& e) {
      cli.fail(cli.bad_value("--server", server->c_str()) + ": " + e.what());
    }
  }
  if (names.empty()) {
    std::string line;
    while (std::getline(std::cin, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      std::size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos) continue;  // blank lines are skipped
      names.push_back(line.substr(start));
    }
  }

  std::size_t failed = 0;
  bool interrupted = false;
  try {
    moss::run([&] {
      std::vector<std::optional<std::string>> lines(names.size());
      std::vector<bool> ok(names.size(), false);
      std::size_t next_out = 0;
      moss::pool p(concurrency);
      auto stop = [&] {
        interrupted = true;
        p.kill(false);
      };
      auto on_int = moss::signal_handler(SIGINT, stop);
      auto on_term = moss::signal_handler(SIGTERM, stop);
      for (std::size_t i = 0; i < names.size() && !interrupted; ++i) {
        p.spawn([&, i] {
          try {
            lines[i] = lookup(names[i], family);
          } catch (const std::exception& e) {
            lines[i] = names[i] + "\tERROR " + e.what();  // still a line, and a failure
          }
          ok[i] = lines[i]->find("\tERROR ") == std::string::npos;
          // Print what is now complete at the head of the list.
          for (; next_out < lines.size() && lines[next_out]; ++next_out) {
            std::fputs(lines[next_out]->c_str(), stdout);
            std::fputc('\n', stdout);
            lines[next_out].reset();  // printed: free the text
          }
        });
      }
      p.join();
      for (std::size_t i = 0; i < names.size(); ++i)
        if (!ok[i]) ++failed;  // printed as an error, or never looked up
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-resolve: %s\n", e.what());
    return 1;
  }
  std::fflush(stdout);
  if (interrupted) {
    std::fprintf(stderr, "moss-resolve: interrupted\n");
    return 1;
  }
  return failed == 0 ? 0 : 1;
}

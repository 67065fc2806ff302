// moss-fetch: fetch many http:// URLs concurrently (the seeds' aiohttp
// example as a tool).
//
// Style: PLAIN BLOCKING POSIX calls (getaddrinfo, socket, connect, send,
// recv, write, nanosleep) made from greenlets, with libmoss_patch linked in
// so each call that would block lets the other fetches run. Only the pool
// that bounds concurrency, moss::run and the signal handlers are moss API.
//
// Per URL: resolve, connect, send a GET, parse the response with the pure
// parser of http_response.hpp, follow redirects, optionally save the body.
// The timeout covers one URL with its redirects; it is enforced with
// SO_SNDTIMEO/SO_RCVTIMEO set to what is left before each call (name
// lookups are bounded by the resolver's own timeout).
#include "args.hpp"
#include "http_response.hpp"

#include <moss/pool.hpp>
#include <moss/signal.hpp>
#include <moss/task.hpp>

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

const char* const usage_text =
    "usage: moss-fetch [-c N] [--timeout SECONDS] [--max-redirects N] [-o DIR] [--save-errors]\n"
    "                  [-i FILE] [URL...]\n"
    "\n"
    "Fetches http:// URLs concurrently and prints a summary table (URL, status,\n"
    "bytes, time) on standard output. https:// is not supported.\n"
    "\n"
    "options:\n"
    "  -c N                 fetches in flight at once (default 10)\n"
    "  --timeout SECONDS    limit for each URL, redirects included (default 30)\n"
    "  --max-redirects N    redirects followed per URL (default 5; 0: none)\n"
    "  -o DIR               save each body in DIR (created if missing), named\n"
    "                       after its URL (a name already taken gets a .1, .2,\n"
    "                       ... suffix); default: bodies are discarded\n"
    "  --save-errors        with -o, save the body of an error answer (status 400\n"
    "                       or more) too; default: it is not saved\n"
    "  -i FILE              read URLs from FILE, one per line (- : standard input)\n"
    "  -h, --help           this text\n"
    "  --version            the version\n"
    "\n"
    "A progress bar is drawn on standard error when it is a terminal. A URL that\n"
    "cannot be fetched (malformed, unreachable, an error status) is reported and\n"
    "the others are still fetched.\n"
    "exit status: 0 every URL fetched with a status below 400; 1 some failed;\n"
    "2 usage error (bad option, no URL)\n"
    "\n"
    "examples:\n"
    "  moss-fetch http://example.com/ http://example.org/\n"
    "  moss-fetch -c 50 --timeout 5 -o pages -i urls.txt\n";

const sample::args cli("moss-fetch", usage_text);

struct url {
  std::string text;  // as given
  std::string scheme;
  std::string host;  // without brackets for IPv6
  std::string port;  // empty: 80
  std::string target = "/";  // path and query
};

// parse_url() splits an absolute URL; the error says what is wrong.
std::optional<url> parse_url(const std::string& s, std::string& error) {
  url u;
  u.text = s;
  std::size_t colon = s.find("://");
  if (colon == std::string::npos) {
    std::size_t c = s.find(':');
    error = c != std::string::npos && c > 0 ? "unsupported scheme" : "missing scheme";
    return std::nullopt;
  }
  u.scheme = s.substr(0, colon);
  for (auto& ch : u.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (u.scheme != "http" && u.scheme != "https") {
    error = "unsupported scheme";
    return std::nullopt;
  }
  std::string rest = s.substr(colon + 3);
  std::size_t hash = rest.find('#');
  if (hash != std::string::npos) rest.resize(hash);
  std::size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string::npos) {
    error = "user info is not supported";
    return std::nullopt;
  }
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      error = "unclosed [ in host";
      return std::nullopt;
    }
    u.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "bad host";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    std::size_t c = authority.rfind(':');
    u.host = authority.substr(0, c);
    if (c != std::string::npos) port = authority.substr(c + 1);
  }
  if (u.host.empty()) {
    error = "missing host";
    return std::nullopt;
  }
  for (char ch : u.host) {
    if (ch <= ' ' || ch == '/' || ch == '\\' || static_cast<unsigned char>(ch) >= 0x7f) {
      error = "bad host";
      return std::nullopt;
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      error = "bad port";
      return std::nullopt;
    }
    u.port = port;
  }
  for (char ch : u.target) {
    if (ch <= ' ' || ch == 0x7f) {
      error = "space or control character in path";
      return std::nullopt;
    }
  }
  return u;
}

// resolve_location() is the absolute URL a Location header points to from
// base: absolute, scheme-relative ("//host/x"), absolute path or relative.
std::string resolve_location(const url& base, const std::string& loc) {
  if (loc.find("://") != std::string::npos) return loc;
  std::string origin = base.scheme + "://" + (base.host.find(':') != std::string::npos ? "[" + base.host + "]" : base.host) +
                       (base.port.empty() ? "" : ":" + base.port);
  if (loc.rfind("//", 0) == 0) return base.scheme + ":" + loc;
  if (!loc.empty() && loc.front() == '/') return origin + loc;
  std::string dir = base.target.substr(0, base.target.find('?'));
  dir.resize(dir.rfind('/') + 1);
  return origin + dir + loc;
}

struct options {
  std::size_t concurrency = 10;
  double timeout_s = 30;
  int max_redirects = 5;
  std::optional<std::string> out_dir;
  bool save_errors = false;  // with out_dir: save bodies of status >= 400 too
};

struct outcome {
  int status = 0;  // the final response's, 0 if none
  std::uint64_t bytes = 0;
  double seconds = 0;
  std::string error;  // empty on success
  std::string saved_as;
};

// fd_guard closes a socket or file on every way out.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

// set_deadline() makes each later blocking call on fd give up at deadline;
// false if it has passed already.
bool set_deadline(int fd, clk::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - clk::now()).count();
  if (left <= 0) return false;
  timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return true;
}

std::string errno_text(int e) {
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS) return "timed out";
  return std::strerror(e);
}

// file_name_for() derives a file name from a URL: host, port and path with
// every character outside [A-Za-z0-9._-] turned into '_'.
std::string file_name_for(const url& u) {
  std::string raw = u.host + (u.port.empty() ? "" : "_" + u.port);
  raw += u.target == "/" ? std::string("_index.html") : u.target;
  std::string name;
  for (char c : raw) {
    bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    name += keep ? c : '_';
  }
  if (name.size() > 200) name.resize(200);
  if (name.front() == '.') name.front() = '_';  // never a hidden file, "." or ".."
  return name;
}

// create_unique() opens a new file in dir named name, or name.1, name.2, ...
// if taken (O_EXCL: never overwrites, even against another process).
int create_unique(const std::string& dir, const std::string& name, std::string& path) {
  for (int i = 0; i < 100000; ++i) {
    path = dir + "/" + name + (i == 0 ? "" : "." + std::to_string(i));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

// get_once() makes one GET request; on success fills status/bytes and, for a
// redirect, location. Body bytes of the final response go to the file.
bool get_once(const url& u, const options& opt, clk::time_point deadline, outcome& out, std::string& location,
              bool redirects_left) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  int rc = ::getaddrinfo(u.host.c_str(), u.port.empty() ? "80" : u.port.c_str(), &hints, &addrs);
  if (rc != 0) {
    out.error = "cannot resolve \"" + u.host + "\": " + gai_strerror(rc);
    return false;
  }
  fd_guard sock;
  int last_errno = 0;
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    if (!set_deadline(fd, deadline)) {
      ::close(fd);
      last_errno = ETIMEDOUT;
      break;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      sock.fd = fd;
      break;
    }
    last_errno = errno;
    ::close(fd);
  }
  ::freeaddrinfo(addrs);
  if (sock.fd < 0) {
    out.error = "cannot connect to " + u.host + ": " + errno_text(last_errno);
    return false;
  }

  std::string host_header = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  if (!u.port.empty()) host_header += ":" + u.port;
  std::string request = "GET " + u.target + " HTTP/1.1\r\nHost: " + host_header +
                        "\r\nUser-Agent: moss-fetch/0.1.0\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  for (std::size_t off = 0; off < request.size();) {
    if (!set_deadline(sock.fd, deadline)) {
      out.error = "timed out";
      return false;
    }
    ssize_t n = ::send(sock.fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      out.error = "send: " + errno_text(errno);
      return false;
    }
    off += static_cast<std::size_t>(n);
  }

  moss_fetch::response_parser parser;
  fd_guard file;
  std::string write_error;
  bool is_redirect = false;
  bool decided = false;
  std::function<bool()> decide;
  // sink() gets the final response's body bytes; the first call decides
  // what to do with them (the head is complete by then).
  auto sink = [&](std::string_view part) {
    if (!decided && !decide()) return;
    if (file.fd < 0 || !write_error.empty()) return;
    while (!part.empty()) {
      ssize_t w = ::write(file.fd, part.data(), part.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        write_error = "cannot write " + out.saved_as + ": " + std::strerror(errno);
        return;
      }
      part.remove_prefix(static_cast<std::size_t>(w));
    }
  };
  // decide() runs once the head is in: a redirect's body is dropped, a
  // final body opens its file.
  decide = [&]() -> bool {
    decided = true;
    int s = parser.head().status;
    auto loc = parser.head().header("Location");
    bool redirect = (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && loc;
    if (redirect && !redirects_left && opt.max_redirects > 0) {
      out.error = "too many redirects (more than " + std::to_string(opt.max_redirects) + ")";
      return false;
    }
    is_redirect = redirect && redirects_left;
    if (is_redirect) {
      location = std::string(*loc);
      return true;
    }
    if (opt.out_dir && (s < 400 || opt.save_errors)) {
      file.fd = create_unique(*opt.out_dir, file_name_for(u), out.saved_as);
      if (file.fd < 0) {
        out.error = "cannot create a file in " + *opt.out_dir + ": " + std::strerror(errno);
        return false;
      }
    }
    return true;
  };
  std::vector<char> buf(64 * 1024);
  while (!parser.done() && !parser.failed()) {
    if (!set_deadline(sock.fd, deadline)) {
      out.error = "timed out";
      break;
    }
    ssize_t n = ::recv(sock.fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      out.error = "recv: " + errno_text(errno);
      break;
    }
    if (n == 0) {
      // The head and body may be complete only now (body until the close).
      parser.finish();
      if (parser.has_head() && !decided) decide();
      break;
    }
    parser.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), sink);
    if (parser.has_head() && !decided && !decide()) break;
    if (!out.error.empty()) break;
  }
  if (out.error.empty() && parser.failed()) out.error = "bad response: " + parser.error();
  if (out.error.empty() && !write_error.empty()) out.error = write_error;
  out.status = parser.has_head() ? parser.head().status : 0;
  if (!is_redirect) out.bytes = parser.body_bytes();
  if (!out.error.empty() && !out.saved_as.empty() && file.fd >= 0) {
    ::unlink(out.saved_as.c_str());  // a partial body is not kept
    out.saved_as.clear();
  }
  if (!is_redirect) location.clear();
  return out.error.empty();
}

outcome fetch(const url& start, const options& opt) {
  auto t0 = clk::now();
  auto deadline = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(opt.timeout_s));
  outcome out;
  url u = start;
  for (int hop = 0;; ++hop) {
    if (u.scheme == "https") {
      out.error = "https not supported";
      break;
    }
    std::string location;
    out = outcome{};
    if (!get_once(u, opt, deadline, out, location, hop < opt.max_redirects)) break;
    if (location.empty()) break;
    std::string err;
    std::string next = resolve_location(u, location);
    auto nu = parse_url(next, err);
    if (!nu) {
      out.error = "bad redirect to \"" + next + "\": " + err;
      break;
    }
    u = *nu;
  }
  out.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  return out;
}

std::string human_bytes(std::uint64_t n) {
  char b[32];
  if (n < 10 * 1024) std::snprintf(b, sizeof b, "%llu", static_cast<unsigned long long>(n));
  else if (n < 10ull * 1024 * 1024) std::snprintf(b, sizeof b, "%.1fK", static_cast<double>(n) / 1024);
  else std::snprintf(b, sizeof b, "%.1fM", static_cast<double>(n) / (1024.0 * 1024));
  return b;
}

// read_url_list() appends the URLs listed in file ("-": standard input),
// one per line; blank lines and lines starting with '#' are skipped.
void read_url_list(const std::string& file, std::vector<std::string>& out) {
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) cli.fail("cannot read \"" + file + "\": " + std::strerror(errno));
    in = &f;
  }
  for (std::string line; std::getline(*in, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    std::size_t s = line.find_first_not_of(" \t");
    if (s == std::string::npos || line[s] == '#') continue;
    out.push_back(line.substr(s));
  }
}

// make_directory() is mkdir -p for -o: dir and any missing parents; exits
// with status 1 naming the part that could not be made.
void make_directory(const std::string& dir) {
  for (std::size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    std::string part = dir.substr(0, end);
    struct stat st{};
    if (::mkdir(part.c_str(), 0777) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "moss-fetch: cannot create directory \"%s\": %s\n", part.c_str(), std::strerror(errno));
      std::exit(1);
    }
    if (::stat(part.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      std::fprintf(stderr, "moss-fetch: -o \"%s\": \"%s\" is not a directory\n", dir.c_str(), part.c_str());
      std::exit(1);
    }
    if (end == std::string::npos) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options opt;
  std::vector<std::string> inputs;
  std::vector<std::string> operands = cli.parse(
      argc, argv,
      {{nullptr, 'c', true}, {"timeout", 0, true}, {"max-redirects", 0, true}, {nullptr, 'o', true},
       {"save-errors", 0, false}, {nullptr, 'i', true}},
      [&](std::string_view o, const char* v) {
        if (o == "-c") opt.concurrency = static_cast<std::size_t>(cli.number(o, v, 1, 100000));
        else if (o == "--timeout") opt.timeout_s = cli.real(o, v, 0.001, 86400);
        else if (o == "--max-redirects") opt.max_redirects = static_cast<int>(cli.number(o, v, 0, 100));
        else if (o == "-o") opt.out_dir = v;
        else if (o == "--save-errors") opt.save_errors = true;
        else read_url_list(v, inputs);
      });
  inputs.insert(inputs.end(), operands.begin(), operands.end());
  if (inputs.empty()) cli.fail("no URLs given");
  // A malformed URL is one failed row, not the end of the run.
  std::vector<url> urls;
  std::vector<std::string> url_errors;
  for (const auto& s : inputs) {
    std::string err;
    auto u = parse_url(s, err);
    url_errors.push_back(u ? "" : "bad URL: " + err);
    if (!u) u.emplace().text = s;
    urls.push_back(*u);
  }
  if (opt.out_dir) make_directory(*opt.out_dir);

  std::vector<outcome> results(urls.size());
  std::vector<bool> finished(urls.size(), false);
  bool interrupted = false;
  bool progress = ::isatty(STDERR_FILENO) != 0;
  try {
    moss::run([&] {
      moss::pool p(opt.concurrency);
      auto stop = [&] {
        interrupted = true;
        p.kill(false);
      };
      auto on_int = moss::signal_handler(SIGINT, stop);
      auto on_term = moss::signal_handler(SIGTERM, stop);
      std::size_t done_count = 0;
      bool all_done = false;
      auto draw = [&] {
        constexpr int width = 30;
        int filled = urls.empty() ? width : static_cast<int>(width * done_count / urls.size());
        std::fprintf(stderr, "\r[%s%s] %zu/%zu", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done_count, urls.size());
        std::fflush(stderr);
      };
      moss::task<void> ticker;
      if (progress) {
        ticker = moss::spawn([&] {
          while (!all_done) {
            draw();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // nanosleep: patched, yields
          }
        });
      }
      for (std::size_t i = 0; i < urls.size() && !interrupted; ++i) {
        p.spawn([&, i] {
          if (url_errors[i].empty()) results[i] = fetch(urls[i], opt);
          else results[i].error = url_errors[i];
          // A kill reaches a blocking call as an error (ECANCELED from the
          // patch layer): name the real cause.
          if (interrupted) results[i].error = "interrupted";
          finished[i] = true;
          ++done_count;
          if (!results[i].error.empty() && !interrupted)
            std::fprintf(stderr, "%smoss-fetch: %s: %s\n", progress ? "\r\033[K" : "", urls[i].text.c_str(),
                         results[i].error.c_str());
        });
      }
      p.join();
      all_done = true;
      if (progress) {
        ticker.kill();
        draw();
        std::fputc('\n', stderr);
      }
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-fetch: %s\n", e.what());
    return 1;
  }

  // Summary table.
  std::size_t w = 3;
  for (const auto& u : urls) w = std::max(w, u.text.size());
  std::printf("%-*s  %6s  %8s  %8s  %s\n", static_cast<int>(w), "URL", "STATUS", "BYTES", "TIME", "NOTE");
  int failures = 0;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const outcome& r = results[i];
    std::string status = r.status != 0 ? std::to_string(r.status) : "-";
    std::string note;
    bool ok = finished[i] && r.error.empty() && r.status > 0 && r.status < 400;
    if (!finished[i]) note = "not fetched (interrupted)";
    else if (!r.error.empty()) note = r.error;
    else if (r.status >= 300 && r.status < 400) note = "redirect not followed";
    else if (!r.saved_as.empty()) note = "saved as " + r.saved_as;
    if (!ok) ++failures;
    total += r.bytes;
    char t[32];
    std::snprintf(t, sizeof t, "%.3fs", r.seconds);
    std::printf("%-*s  %6s  %8s  %8s  %s\n", static_cast<int>(w), urls[i].text.c_str(), status.c_str(),
                human_bytes(r.bytes).c_str(), finished[i] ? t : "-", note.c_str());
  }
  std::printf("%zu URLs, %d failed, %s bytes\n", urls.size(), failures, human_bytes(total).c_str());
  std::fflush(stdout);
  if (interrupted) std::fprintf(stderr, "moss-fetch: interrupted\n");
  return failures == 0 && !interrupted ? 0 : 1;
}

// moss-chat: a line-based chat server. Uses the explicit moss API (moss::io
// for the sockets, moss::group, moss::queue, moss::signal_handler).
//
// Every line a client sends goes to every other client as "#<id>: <line>".
// Each client has two greenlets: its reader (a member of the server's
// group) and a writer draining the client's bounded outgoing queue, so one
// client's slow socket never blocks the broadcast.
//
// Slow-client policy: when a client's queue is full (it has not read the
// last --queue lines sent to it) and stays full after its writer has had a
// turn to move lines into the socket, it is disconnected: it gets the
// one-line notice "moss-chat: disconnected: too slow (N lines unread)" on a
// best-effort, non-blocking send (its socket buffer is usually full, so the
// notice may be lost), the server logs it on stderr, and the others carry
// on without waiting for it. Lines longer than 4096 bytes are dropped; the sender is
// told "moss-chat: line rejected: longer than 4096 bytes".
//
// Ctrl-C (SIGINT/SIGTERM): stop accepting, send every client
// "moss-chat: server shutting down", let the writers flush for up to 2 s,
// then close everything and exit 0.
#include "args.hpp"

#include <moss/dns.hpp>
#include <moss/group.hpp>
#include <moss/io.hpp>
#include <moss/queue.hpp>
#include <moss/signal.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_line = 4096;

const char* const usage_text =
    "usage: moss-chat [--port P] [--host H] [--queue N]\n"
    "\n"
    "A line-based chat server: every line a client sends is passed to all the\n"
    "other clients as \"#<id>: <line>\". Try it with nc or telnet.\n"
    "\n"
    "options:\n"
    "  --port P    TCP port to listen on (default 7000; 0: any free port)\n"
    "  --host H    address to listen on (default 127.0.0.1; 0.0.0.0: all)\n"
    "  --queue N   lines kept for a client that is not reading (default 100);\n"
    "              a client with N unread lines is disconnected\n"
    "  -h, --help  this text\n"
    "  --version   the version\n"
    "\n"
    "Lines over 4096 bytes are rejected. Prints \"moss-chat: listening on HOST:PORT\"\n"
    "once ready. Ctrl-C stops it cleanly.\n"
    "\n"
    "examples:\n"
    "  moss-chat --port 7000 &\n"
    "  nc localhost 7000\n";

const sample::args cli("moss-chat", usage_text);

struct client {
  client(int f, int i, std::string p, std::size_t queue_size) : fd(f), id(i), peer(std::move(p)), out(queue_size) {}
  int fd;
  int id;
  std::string peer;
  moss::queue<std::string> out;
  bool gone = false;  // no more lines go to it
};

class chat_server {
 public:
  chat_server(int listener, std::size_t queue_size) : listener_(listener), queue_size_(queue_size) {}

  void run() {
    auto on_int = moss::signal_handler(SIGINT, [this] { stop(); });
    auto on_term = moss::signal_handler(SIGTERM, [this] { stop(); });
    accept_loop();
    // Stopping: tell everyone, let the writers flush, then cut the rest.
    for (auto& [id, c] : clients_) {
      offer(*c, "moss-chat: server shutting down\n");
      c->gone = true;
      c->out.close();
    }
    if (!members_.join(2s)) {
      for (auto& [id, c] : clients_) ::shutdown(c->fd, SHUT_RDWR);
      members_.join();
    }
  }

 private:
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    moss::io::close(listener_);  // wakes the accept with EBADF
  }

  void accept_loop() {
    bool told_emfile = false;
    while (!stopping_) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      int fd = moss::io::accept4(listener_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_ || errno == EBADF) break;
        if (errno == EMFILE || errno == ENFILE) {
          // Out of fds: say so once and retry a little later instead of spinning.
          if (!told_emfile) std::fprintf(stderr, "moss-chat: accept: %s (raise the open files limit)\n", std::strerror(errno));
          told_emfile = true;
          moss::sleep(100ms);
        }
        continue;
      }
      int id = ++last_id_;
      members_.spawn([this, fd, id, p = peer_name(addr)] { serve(fd, id, p); });
    }
  }

  static std::string peer_name(const sockaddr_storage& a) {
    char text[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a.ss_family == AF_INET) {
      auto* in = reinterpret_cast<const sockaddr_in*>(&a);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      port = ntohs(in->sin_port);
      return std::string(text) + ":" + std::to_string(port);
    }
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(text) + "]:" + std::to_string(port);
  }

  void serve(int fd, int id, const std::string& peer) {
    auto c = std::make_shared<client>(fd, id, peer, queue_size_);
    clients_.emplace(id, c);
    auto writer = moss::spawn([c] { write_loop(*c); });
    try {
      read_loop(*c);
    } catch (...) {
      finish(*c, writer);
      throw;
    }
    finish(*c, writer);
  }

  void finish(client& c, moss::task<void>& writer) {
    c.gone = true;
    c.out.close();
    ::shutdown(c.fd, SHUT_RDWR);  // the writer's send fails at once if blocked
    writer.join();
    clients_.erase(c.id);
    moss::io::close(c.fd);
  }

  static void write_loop(client& c) {
    for (;;) {
      std::string line;
      try {
        line = c.out.get();
      } catch (const moss::queue_closed&) {
        break;
      }
      if (moss::io::send(c.fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) break;
    }
    ::shutdown(c.fd, SHUT_RDWR);  // wakes the reader if the writer ended first
  }

  void read_loop(client& c) {
    // One receive buffer for all readers, copied out at once: an idle
    // client costs no buffer (broadcast() may yield, so the data must not
    // stay in the shared one).
    static char shared[64 * 1024];
    std::string partial;
    bool discarding = false;  // inside a rejected line, until its newline
    for (;;) {
      ssize_t n = moss::io::recv(c.fd, shared, sizeof shared, 0);
      if (n <= 0) return;  // end of file, error, or shutdown by us
      std::string data(shared, static_cast<std::size_t>(n));
      const char* buf = data.data();
      std::size_t start = 0;
      for (;;) {
        const char* nl = static_cast<const char*>(std::memchr(buf + start, '\n', static_cast<std::size_t>(n) - start));
        std::size_t end = nl == nullptr ? static_cast<std::size_t>(n) : static_cast<std::size_t>(nl - buf);
        if (!discarding) partial.append(buf + start, end - start);
        if (nl == nullptr) break;
        start = end + 1;
        if (discarding) {
          discarding = false;
          continue;
        }
        if (!partial.empty() && partial.back() == '\r') partial.pop_back();
        if (partial.size() > max_line) reject(c);
        else if (!c.gone) broadcast(c, partial);
        partial.clear();
      }
      if (partial.size() > max_line + 1) {  // +1: a CR may still come off
        reject(c);
        partial.clear();
        discarding = true;
      }
    }
  }

  // offer() queues a line for c if there is room; a queue closed by a
  // disconnect takes nothing (try_put would throw).
  static bool offer(client& c, std::string line) { return !c.out.closed() && c.out.try_put(std::move(line)); }

  void reject(client& c) {
    offer(c, "moss-chat: line rejected: longer than " + std::to_string(max_line) + " bytes\n");
  }

  void broadcast(client& from, const std::string& line) {
    std::string msg = "#" + std::to_string(from.id) + ": " + line + "\n";
    std::vector<std::shared_ptr<client>> full;
    for (auto& [id, c] : clients_) {
      if (c.get() == &from || c->gone) continue;
      if (!offer(*c, msg)) full.push_back(c);
    }
    if (full.empty()) return;
    // A burst from one sender can fill a queue faster than its writer gets
    // a turn: let the writers run once, then only a client whose writer
    // could not empty its queue into its socket is too slow.
    moss::yield();
    for (auto& c : full)
      if (!c->gone && !offer(*c, msg)) drop_slow(*c);
  }

  void drop_slow(client& c) {
    c.gone = true;
    std::string notice = "moss-chat: disconnected: too slow (" + std::to_string(queue_size_) + " lines unread)\n";
    // Best effort: the client is not reading, so never wait for room.
    [[maybe_unused]] ssize_t r = ::send(c.fd, notice.data(), notice.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    std::fprintf(stderr, "moss-chat: #%d (%s) disconnected: too slow\n", c.id, c.peer.c_str());
    c.out.close();
    ::shutdown(c.fd, SHUT_RDWR);  // its reader and writer both wake and end
  }

  int listener_;
  std::size_t queue_size_;
  bool stopping_ = false;
  int last_id_ = 0;
  std::map<int, std::shared_ptr<client>> clients_;
  moss::group members_;
};

// listen_on() makes the listening socket; throws with a one-line message.
int listen_on(const std::string& host, int port, std::string& shown) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    auto* s = reinterpret_cast<sockaddr_in*>(&addr);
    s->sin_family = AF_INET;
    s->sin_addr = a4;
    s->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof *s;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&addr);
    s->sin6_family = AF_INET6;
    s->sin6_addr = a6;
    s->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof *s;
  } else {
    auto found = moss::dns::resolve(host, std::to_string(port));
    if (found.empty()) throw moss::error("cannot resolve \"" + host + "\"");
    std::memcpy(&addr, &found[0].storage, found[0].length);
    len = found[0].length;
  }
  int fd = moss::io::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw moss::error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    int e = errno;
    moss::io::close(fd);
    throw moss::error("cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(e));
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int bound = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  shown = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  int port = 7000;
  std::string host = "127.0.0.1";
  std::size_t queue_size = 100;
  auto operands = cli.parse(argc, argv, {{"port", 0, true}, {"host", 0, true}, {"queue", 0, true}},
                            [&](std::string_view opt, const char* v) {
                              if (opt == "--port") port = static_cast<int>(cli.number(opt, v, 0, 65535));
                              else if (opt == "--host") host = v;
                              else queue_size = static_cast<std::size_t>(cli.number(opt, v, 1, 1000000));
                            });
  if (!operands.empty()) cli.fail("unexpected argument \"" + operands[0] + "\"");
  // Many idle clients need many fds: take the soft limit up to the hard one.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  try {
    moss::run([&] {
      std::string shown;
      int listener = listen_on(host, port, shown);
      std::printf("moss-chat: listening on %s\n", shown.c_str());
      std::fflush(stdout);
      chat_server server(listener, queue_size);
      server.run();
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-chat: %s\n", e.what());
    return 1;
  }
  return 0;
}

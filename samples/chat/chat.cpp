// moss-chat: a line-based chat server. Uses the explicit moss API (moss::serve
// and moss::stream for the connections, moss::group, moss::queue,
// moss::signal_handler).
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

#include <moss/group.hpp>
#include <moss/queue.hpp>
#include <moss/signal.hpp>
#include <moss/stream.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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
  client(moss::stream st, int i, std::size_t queue_size) : s(std::move(st)), id(i), out(queue_size) {}
  moss::stream s;  // the reader reads it, the writer writes it
  int id;
  moss::queue<std::string> out;
  bool gone = false;  // no more lines go to it
};

class chat_server {
 public:
  chat_server(moss::listener& l, std::size_t queue_size) : listener_(l), queue_size_(queue_size) {}

  void run() {
    auto on_int = moss::signal_handler(SIGINT, [this] { stop(); });
    auto on_term = moss::signal_handler(SIGTERM, [this] { stop(); });
    // Until stop() closes the listener. The clients are members_, so they
    // outlive the accepting for the goodbye below.
    moss::serve(listener_, [this](moss::stream& s) { serve(s); }, members_);
    // Stopping: tell everyone, let the writers flush, then cut the rest.
    for (auto& [id, c] : clients_) {
      offer(*c, "moss-chat: server shutting down\n");
      c->gone = true;
      c->out.close();
    }
    if (!members_.join(2s)) {
      for (auto& [id, c] : clients_) ::shutdown(c->s.fd(), SHUT_RDWR);
      members_.join();
    }
  }

 private:
  void stop() { listener_.close(); }  // serve() returns

  void serve(moss::stream& s) {
    // Ids in the order of accepting: connection tasks start in spawn order.
    auto c = std::make_shared<client>(std::move(s), ++last_id_, queue_size_);
    clients_.emplace(c->id, c);
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
    ::shutdown(c.s.fd(), SHUT_RDWR);  // the writer's send fails at once if blocked
    writer.join();
    clients_.erase(c.id);
    c.s.close();
  }

  static void write_loop(client& c) {
    for (;;) {
      std::string line;
      try {
        line = c.out.get();
        c.s.write_all(line);
      } catch (const moss::queue_closed&) {
        break;
      } catch (const std::system_error&) {
        break;  // the connection broke, or was shut down by us
      }
    }
    ::shutdown(c.s.fd(), SHUT_RDWR);  // wakes the reader if the writer ended first
  }

  void read_loop(client& c) {
    for (;;) {
      std::optional<std::string> line;
      try {
        // The limit counts the terminator: a line of max_line bytes may end
        // in "\r\n".
        line = c.s.read_line(max_line + 2);
      } catch (const moss::limit_overrun_error&) {
        reject(c);
        if (!c.s.skip_until("\n")) return;
        continue;
      } catch (const moss::incomplete_read_error&) {
        return;  // the client left in the middle of a line
      } catch (const std::system_error&) {
        return;  // reset, or shut down by us
      }
      if (!line) return;  // end of file
      if (line->size() > max_line) reject(c);
      else if (!c.gone) broadcast(c, *line);
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
    [[maybe_unused]] ssize_t r = ::send(c.s.fd(), notice.data(), notice.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    std::fprintf(stderr, "moss-chat: #%d (%s) disconnected: too slow\n", c.id, c.s.name().c_str());
    c.out.close();
    ::shutdown(c.s.fd(), SHUT_RDWR);  // its reader and writer both wake and end
  }

  moss::listener& listener_;
  std::size_t queue_size_;
  int last_id_ = 0;
  std::map<int, std::shared_ptr<client>> clients_;
  moss::group members_;
};

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
      moss::listener l = moss::listen_tcp(host, port);
      std::string shown = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(l.port());
      std::printf("moss-chat: listening on %s\n", shown.c_str());
      std::fflush(stdout);
      chat_server server(l, queue_size);
      server.run();
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-chat: %s\n", e.what());
    return 1;
  }
  return 0;
}

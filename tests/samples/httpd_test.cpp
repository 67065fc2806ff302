// httpd_test: the built moss-httpd, run as a user would, serving a temporary
// directory on a port it picks itself (--port 0, read back from its first
// line), spoken to with plain blocking sockets.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct run_result {
  int status;
  std::string out;
};

run_result run(const std::string& args) {
  run_result r{};
  FILE* p = popen((std::string(MOSS_HTTPD) + " " + args + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// slow_clients: a slowloris attack from a thread of its own. It keeps n
// connections open to 127.0.0.1:port, each sending a request head that
// never ends ("GET ... X-Slow: aaaa...") at one byte a second, and opens a
// new one whenever the server closes one, as an attacker would.
class slow_clients {
 public:
  slow_clients(int port, int n) : port_(port), fds_(static_cast<std::size_t>(n), -1) {
    for (auto& fd : fds_) fd = open_one();
    thread_ = std::thread([this] { loop(); });
  }
  slow_clients(const slow_clients&) = delete;
  slow_clients& operator=(const slow_clients&) = delete;
  ~slow_clients() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  int reopened() const { return reopened_.load(); }

 private:
  static constexpr std::string_view head = "GET /notes.txt HTTP/1.1\r\nHost: t\r\nX-Slow: ";

  int open_one() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};  // bounds connect() should the listen backlog be full
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
  }

  void loop() {
    std::vector<std::size_t> sent(fds_.size(), 0);
    auto next_byte = std::chrono::steady_clock::now();
    while (!stop_) {
      // Closed by the server (end of file, reset, or a 408 then end of file):
      // reconnect and start the head again.
      for (std::size_t i = 0; i < fds_.size(); ++i) {
        if (fds_[i] >= 0) {
          char buf[512];
          ssize_t r = recv(fds_[i], buf, sizeof buf, 0);
          if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
          ::close(fds_[i]);
          ++reopened_;
        }
        fds_[i] = open_one();
        sent[i] = 0;
      }
      if (std::chrono::steady_clock::now() >= next_byte) {
        next_byte += 1s;
        for (std::size_t i = 0; i < fds_.size(); ++i) {
          char c = sent[i] < head.size() ? head[sent[i]] : 'a';
          if (fds_[i] >= 0 && send(fds_[i], &c, 1, MSG_NOSIGNAL) == 1) ++sent[i];
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  int port_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reopened_{0};
  std::thread thread_;
};

// server: moss-httpd on a temp root holding a few files; a secret file sits
// next to the root to be reached by escapes. Every test runs twice: with
// the default --rest-above (these few connections each have a task, parked
// between requests) and with --rest-above 0 (every connection rests in the
// idle set between requests, served by the ready list's tasks).
class Httpd : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/httpd_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ / "root";
    fs::create_directories(root_ / "sub");
    std::ofstream(root_ / "index.html") << "<h1>home</h1>\n";
    std::ofstream(root_ / "notes.txt") << "some notes\n";
    std::ofstream(root_ / "sub" / "data.json") << "{\"a\":1}";
    std::ofstream(base_ / "secret") << "top secret\n";
    fs::create_symlink(base_ / "secret", root_ / "link");
    start({});
  }

  // start() runs moss-httpd with extra arguments; nofile > 0 is the
  // child's RLIMIT_NOFILE (as `ulimit -n` would set it).
  void start(std::vector<std::string> extra, rlim_t nofile = 0) {
    int out[2];
    ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
    std::vector<std::string> args = {MOSS_HTTPD, "--port", "0", "--rest-above", GetParam()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(root_.string());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(out[1], 2);
      if (nofile > 0) {
        rlimit lim{nofile, nofile};
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(126);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    // First line: "moss-httpd: serving ROOT on http://127.0.0.1:PORT/ ..."
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      if (read(out_, &c, 1) != 1) break;
      line.push_back(c);
    }
    auto at = line.find("127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << line;
    port_ = std::atoi(line.c_str() + at + 10);
    ASSERT_GT(port_, 0) << line;
  }

  // stop() sends SIGINT and returns the exit status (-1: did not exit in 10 s).
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGINT);
    int st = 0;
    for (int i = 0; i < 1000; ++i) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      usleep(10000);
    }
    return -1;
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  int connect_() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    return fd;
  }

  static void send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may refuse mid-request
      off += static_cast<std::size_t>(n);
    }
  }

  // read_response() reads one response: head, then Content-Length bytes
  // of body unless head_only.
  static std::string read_response(int fd, bool head_only = false) {
    std::string r;
    char c;
    while (r.find("\r\n\r\n") == std::string::npos) {
      if (recv(fd, &c, 1, 0) != 1) return r;
      r.push_back(c);
    }
    if (head_only) return r;
    auto cl = r.find("Content-Length: ");
    if (cl == std::string::npos) return r;
    std::size_t len = std::strtoul(r.c_str() + cl + 16, nullptr, 10);
    std::string body(len, '\0');
    std::size_t got = 0;
    while (got < len) {
      ssize_t n = recv(fd, body.data() + got, len - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    body.resize(got);
    return r + body;
  }

  // exchange() sends raw bytes on a new connection and reads one response.
  std::string exchange(const std::string& raw, bool head_only = false) {
    int fd = connect_();
    send_all(fd, raw);
    auto r = read_response(fd, head_only);
    ::close(fd);
    return r;
  }

  std::string get(const std::string& target) { return exchange("GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"); }

  static std::string body_of(const std::string& r) {
    auto at = r.find("\r\n\r\n");
    return at == std::string::npos ? "" : r.substr(at + 4);
  }

  fs::path base_, root_;
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
};

TEST_P(Httpd, GetServesAFileWithItsTypeAndLength) {
  auto r = get("/notes.txt");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Length: 11\r\n"), std::string::npos) << r;
  EXPECT_EQ(body_of(r), "some notes\n");

  r = get("/sub/data.json");
  EXPECT_NE(r.find("Content-Type: application/json\r\n"), std::string::npos) << r;
  EXPECT_EQ(body_of(r), "{\"a\":1}");
}

TEST_P(Httpd, ADirectoryServesItsIndexHtml) {
  auto r = get("/");
  EXPECT_NE(r.find("Content-Type: text/html"), std::string::npos) << r;
  EXPECT_EQ(body_of(r), "<h1>home</h1>\n");
}

TEST_P(Httpd, HeadSendsTheHeadersOfGetWithoutABody) {
  int fd = connect_();
  send_all(fd, "HEAD /notes.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = read_response(fd, true);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 11\r\n"), std::string::npos) << r;
  // The next bytes on the connection are the next response, not a body.
  auto next = read_response(fd);
  EXPECT_EQ(next.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << next;
  EXPECT_EQ(body_of(next), "hello\n");
  ::close(fd);
}

TEST_P(Httpd, AMissingFileIs404) {
  auto r = get("/no/such/file.txt");
  EXPECT_EQ(r.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << r;
}

TEST_P(Httpd, PostIs405WithAllow) {
  auto r = exchange("POST /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Allow: GET, HEAD\r\n"), std::string::npos) << r;
}

TEST_P(Httpd, GarbageIs400) {
  EXPECT_EQ(exchange("GARBAGE\r\n\r\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  EXPECT_EQ(exchange("GET /notes.txt HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);  // 1.1 needs Host
  EXPECT_EQ(exchange("GET /x HTTP/1.1\r\nHost: t\r\nBad Name: v\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(exchange("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
}

TEST_P(Httpd, AHundredKibHeaderIs431) {
  auto r = exchange("GET /notes.txt HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u) << r.substr(0, 200);
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r.substr(0, 200);
}

TEST_P(Httpd, PathsAboveTheRootAreRefused) {
  for (const char* t : {"/../secret", "/%2e%2e/secret", "/%2E%2e%2fsecret", "/sub/..%2f..%2fsecret", "/sub/%2e%2e/%2e%2e/secret",
                        "/./../secret"}) {
    auto r = get(t);
    EXPECT_EQ(r.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << t << "\n" << r;
    EXPECT_EQ(r.find("top secret"), std::string::npos) << t;
  }
  auto r = get("/../../../../etc/passwd");
  EXPECT_EQ(r.rfind("HTTP/1.1 403 ", 0), 0u) << r;
  EXPECT_EQ(r.find("root:"), std::string::npos) << r;
}

TEST_P(Httpd, ASymlinkOutOfTheRootIsRefused) {
  auto r = get("/link");
  EXPECT_EQ(r.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << r;
  EXPECT_EQ(r.find("top secret"), std::string::npos) << r;
}

TEST_P(Httpd, KeepAliveServesTwoRequestsOnOneConnection) {
  int fd = connect_();
  send_all(fd, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  auto a = read_response(fd);
  send_all(fd, "GET /sub/data.json HTTP/1.1\r\nHost: t\r\n\r\n");
  auto b = read_response(fd);
  EXPECT_EQ(body_of(a), "some notes\n") << a;
  EXPECT_EQ(body_of(b), "{\"a\":1}") << b;
  ::close(fd);
}

// 1,000 requests in one write, 33 KiB: the server reads its 16 KiB buffer
// full more than once, so it must read again instead of taking the socket
// for empty and waiting for an event that never comes.
TEST_P(Httpd, PipelinedRequestsBeyondOneBufferAreAllAnswered) {
  int fd = connect_();
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
  std::thread writer([&] { send_all(fd, burst); });
  int answered = 0;
  while (answered < 1000 && body_of(read_response(fd)) == "hello\n") ++answered;
  writer.join();
  EXPECT_EQ(answered, 1000);
  ::close(fd);
}

// Connections whose heads come in pieces park the task serving them until
// the rest comes (or the head timeout); a complete request sent with them,
// in the same instant, is answered at once all the same.
TEST_P(Httpd, HeadsInPiecesHoldUpNoOtherConnection) {
  EXPECT_EQ(stop(), 0);
  start({"--head-timeout", "5"});
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) slow.push_back(connect_());
  int fast = connect_();
  for (int fd : slow) send_all(fd, "GET /hello HTTP/1.1\r\nHo");
  send_all(fast, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  pollfd p{fast, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 2000), 1) << "the complete request waited behind the incomplete ones";
  EXPECT_EQ(body_of(read_response(fast)), "hello\n");
  for (int fd : slow) {
    send_all(fd, "st: t\r\n\r\n");
    EXPECT_EQ(body_of(read_response(fd)), "hello\n");
    ::close(fd);
  }
  ::close(fast);
}

TEST_P(Httpd, ConnectionCloseEndsTheConnectionAfterTheResponse) {
  int fd = connect_();
  send_all(fd, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto a = read_response(fd);
  EXPECT_EQ(body_of(a), "hello\n") << a;
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // end of stream, not a timeout
  ::close(fd);
}

TEST_P(Httpd, HelloAnswersHello) {
  auto r = get("/hello");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_EQ(body_of(r), "hello\n");
}

TEST_P(Httpd, SigintStopsItCleanly) {
  int fd = connect_();  // an idle keep-alive connection must not hold it up
  EXPECT_EQ(stop(), 0);
  ::close(fd);
}

TEST_P(Httpd, AnIdleConnectionIsClosedAfterTheIdleTimeoutAndABusyOneIsNot) {
  EXPECT_EQ(stop(), 0);
  start({"--idle-timeout", "1"});
  int idle = connect_();
  int busy = connect_();
  auto t0 = std::chrono::steady_clock::now();
  // busy asks for something every 300 ms, for longer than the timeout.
  for (int i = 0; i < 10; ++i) {
    send_all(busy, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(body_of(read_response(busy)), "hello\n") << "request " << i;
    std::this_thread::sleep_for(300ms);
  }
  // By now (3 s) idle was shut down: end of stream, at once.
  char c;
  EXPECT_EQ(recv(idle, &c, 1, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ::close(idle);
  ::close(busy);
}

TEST_P(Httpd, AClientThatNeverReadsItsAnswersIsDropped) {
  EXPECT_EQ(stop(), 0);
  start({"--idle-timeout", "1"});
  int fd = connect_();
  // Pipelined requests until both directions are full: the server's send
  // parks, and so would ours.
  const std::string req = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
  std::string many;
  for (int i = 0; i < 1000; ++i) many += req;
  ASSERT_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  std::size_t sent = 0;
  auto until = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    ssize_t n = send(fd, many.data(), many.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << strerror(errno);
    // The server may still be answering: full only when it stays full.
    std::this_thread::sleep_for(50ms);
    n = send(fd, many.data(), many.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (std::chrono::steady_clock::now() > until) break;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
  }
  std::this_thread::sleep_for(3s);  // past the timeout: the server gives up on us
  ASSERT_EQ(fcntl(fd, F_SETFL, 0), 0);
  const std::size_t answer = std::string("HTTP/1.1 200 OK\r\nServer: moss-httpd/0.1.0\r\nContent-Type: text/plain; "
                                         "charset=utf-8\r\nContent-Length: 6\r\n\r\nhello\n")
                                 .size();
  std::size_t got = 0;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got += static_cast<std::size_t>(n);
  // The stream ended (end of file, or a reset for the requests left
  // unread), not the 10 s receive timeout, and before every answer came.
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << strerror(errno);
  EXPECT_LT(got, sent / req.size() * answer);
  ::close(fd);
}

TEST_P(Httpd, AHeadStillIncompleteAtTheHeadTimeoutIsAnswered408AndClosed) {
  EXPECT_EQ(stop(), 0);
  start({"--head-timeout", "1"});
  // A head in two pieces well within the timeout is served.
  int fd = connect_();
  send_all(fd, "GET /hello HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(300ms);
  send_all(fd, "st: t\r\n\r\n");
  EXPECT_EQ(body_of(read_response(fd)), "hello\n");
  // Trickled a byte every 200 ms: progress enough for the idle timeout,
  // but the head is cut at the head timeout.
  const std::string never_ends = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(1000, 'a');
  auto t0 = std::chrono::steady_clock::now();
  for (char c : never_ends) {
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) != 0) break;  // the server answered
  }
  auto r = read_response(fd);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // then end of stream
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 4s);
  ::close(fd);
}

// fd_count() is the number of fds process pid has open.
std::size_t fd_count(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    ++n;
  return n;
}

TEST_P(Httpd, EightySlowClientsDoNotStarveASixtyFourFdServer) {
  EXPECT_EQ(stop(), 0);
  start({}, 64);
  slow_clients attack(port_, 80);
  // The attack holds every fd the server can open.
  auto until = std::chrono::steady_clock::now() + 10s;
  while (fd_count(pid_) < 60 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  ASSERT_GE(fd_count(pid_), 60u);
  std::this_thread::sleep_for(1s);
  // Normal requests, one after another, each on a new connection.
  int served = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    int fd = connect_();
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send_all(fd, "GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    auto r = read_response(fd);
    ::close(fd);
    auto took = std::chrono::steady_clock::now() - t0;
    if (body_of(r) == "some notes\n") {
      ++served;
      slowest = std::max(slowest, took);
    } else {
      ADD_FAILURE() << "request " << i << " not served within 3 s: \"" << r.substr(0, 40) << "\"";
    }
  }
  EXPECT_EQ(served, 5);
  EXPECT_LT(slowest, 3s);
  std::printf("slowloris: %d of 5 normal requests served while 80 slow clients held a 64-fd server; slowest %.1f ms; "
              "%d slow connections closed by the server\n",
              served, std::chrono::duration<double, std::milli>(slowest).count(), attack.reopened());
}

TEST_P(Httpd, TwoWorkersServeAndStop) {
  EXPECT_EQ(stop(), 0);
  start({"--workers", "2"});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(body_of(get("/hello")), "hello\n");
  EXPECT_EQ(stop(), 0);
}

TEST_P(Httpd, ADirectoryWithoutItsTrailingSlashIsRedirected) {
  std::ofstream(root_ / "sub" / "index.html") << "sub index\n";
  auto r = get("/sub?x=1");
  EXPECT_EQ(r.rfind("HTTP/1.1 301 Moved Permanently\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nLocation: /sub/?x=1\r\n"), std::string::npos) << r;
  EXPECT_EQ(body_of(get("/sub/")), "sub index\n");
  // A file is not a directory, whatever its name.
  EXPECT_EQ(get("/notes.txt").rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
}

TEST_P(Httpd, AnAbsoluteFormTargetIsServedByItsPath) {
  auto r = exchange("GET http://example.test:8000/notes.txt HTTP/1.1\r\nHost: other\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_EQ(body_of(r), "some notes\n");
  auto root = exchange("GET HTTP://example.test HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(body_of(root), "<h1>home</h1>\n") << root;
  auto empty = exchange("GET http:///notes.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(empty.rfind("HTTP/1.1 400 ", 0), 0u) << empty;
}

TEST_P(Httpd, ARangeIsAnsweredWithItsPart) {
  auto range = [&](const std::string& field) {
    return exchange("GET /notes.txt HTTP/1.1\r\nHost: t\r\nRange: " + field + "\r\n\r\n");
  };
  // "some notes\n" is 11 bytes.
  auto r = range("bytes=2-5");
  EXPECT_EQ(r.rfind("HTTP/1.1 206 Partial Content\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nContent-Range: bytes 2-5/11\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nContent-Length: 4\r\n"), std::string::npos) << r;
  EXPECT_EQ(body_of(r), "me n");
  EXPECT_EQ(body_of(range("bytes=5-")), "notes\n");
  EXPECT_EQ(body_of(range("bytes=-3")), "es\n");
  EXPECT_EQ(body_of(range("bytes=8-100")), "es\n");
  // Past the end: 416 with the size.
  auto past = range("bytes=11-");
  EXPECT_EQ(past.rfind("HTTP/1.1 416 Range Not Satisfiable\r\n", 0), 0u) << past;
  EXPECT_NE(past.find("\r\nContent-Range: bytes */11\r\n"), std::string::npos) << past;
  // Several ranges or a malformed one: the whole file.
  for (const char* whole : {"bytes=0-1,4-5", "bytes=5-2", "lines=1-2", "bytes=x-"}) {
    auto w = range(whole);
    EXPECT_EQ(w.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << whole << "\n" << w;
    EXPECT_EQ(body_of(w), "some notes\n") << whole;
  }
  EXPECT_NE(get("/notes.txt").find("\r\nAccept-Ranges: bytes\r\n"), std::string::npos);
}

TEST_P(Httpd, AnswersCarryDateAndFilesLastModified) {
  struct timespec times[2] = {{784111777, 0}, {784111777, 0}};  // Sun, 06 Nov 1994 08:49:37 GMT
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ / "notes.txt").c_str(), times, 0), 0);
  auto r = get("/notes.txt");
  EXPECT_NE(r.find("\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), std::string::npos) << r;
  auto date_at = r.find("\r\nDate: ");
  ASSERT_NE(date_at, std::string::npos) << r;
  EXPECT_NE(r.find(" GMT\r\n", date_at), std::string::npos) << r;
  auto missing = get("/nope");
  EXPECT_NE(missing.find("\r\nDate: "), std::string::npos) << missing;
}

TEST_P(Httpd, TheAccessLogNamesTheClientTheTimeAndTheBytesSent) {
  EXPECT_EQ(stop(), 0);
  ::close(out_);
  start({"--access-log"});
  get("/notes.txt");
  exchange("HEAD /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n", true);
  exchange("GET /notes.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-2\r\n\r\n");
  get("/nope");
  EXPECT_EQ(stop(), 0);
  std::string log;
  char buf[4096];
  for (ssize_t n; (n = read(out_, buf, sizeof buf)) > 0;) log.append(buf, static_cast<std::size_t>(n));
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = log.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(log.substr(at, nl - at));
  ASSERT_GE(lines.size(), 4u) << log;
  // 127.0.0.1 [06/Dec/2026:02:53:16 +0000] "GET /notes.txt" 200 11
  auto check = [](const std::string& line, const std::string& request, const std::string& tail) {
    EXPECT_EQ(line.rfind("127.0.0.1 [", 0), 0u) << line;
    auto close = line.find("] \"");
    ASSERT_NE(close, std::string::npos) << line;
    EXPECT_EQ(close, 11u + 26u) << line;  // dd/Mon/yyyy:hh:mm:ss +zzzz
    EXPECT_EQ(line.substr(close + 2), "\"" + request + "\" " + tail) << line;
  };
  check(lines[0], "GET /notes.txt", "200 11");
  check(lines[1], "HEAD /notes.txt", "200 0");
  check(lines[2], "GET /notes.txt", "206 3");
  check(lines[3], "GET /nope", "404 14");
}

INSTANTIATE_TEST_SUITE_P(Idle, Httpd, ::testing::Values("512", "0"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "0" ? "Resting" : "ParkedTasks";
                         });

TEST(HttpdCli, HelpAndVersionExitZero) {
  auto h = run("--help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("usage: moss-httpd"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("--head-timeout S"), std::string::npos) << h.out;
  auto v = run("--version");
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, "moss-httpd 0.1.0\n");
}

TEST(HttpdCli, BadArgumentsAreUsageErrorsNamingTheArgument) {
  auto r = run("--frobnicate");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("unknown option \"--frobnicate\""), std::string::npos) << r.out;
  r = run("--port 70000");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("bad value \"70000\" for --port"), std::string::npos) << r.out;
  r = run("--workers 0");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("bad value \"0\" for --workers"), std::string::npos) << r.out;
  for (const char* bad : {"0", "1.5", "soon", "86401"}) {
    r = run(std::string("--idle-timeout ") + bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.out.find(std::string("bad value \"") + bad + "\" for --idle-timeout: expected a number from 1 to 86400"),
              std::string::npos)
        << r.out;
  }
  for (const char* bad : {"-1", "many", "1073741825"}) {
    r = run(std::string("--rest-above ") + bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.out.find(std::string("bad value \"") + bad + "\" for --rest-above: expected a number from 0 to 1073741824"),
              std::string::npos)
        << r.out;
  }
  for (const char* bad : {"0", "2.5", "86401"}) {
    r = run(std::string("--head-timeout ") + bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.out.find(std::string("bad value \"") + bad + "\" for --head-timeout: expected a number from 1 to 86400"),
              std::string::npos)
        << r.out;
  }
}

TEST(HttpdCli, AMissingRootIsReported) {
  auto r = run("--port 0 /no/such/dir");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot serve \"/no/such/dir\""), std::string::npos) << r.out;
}

}  // namespace

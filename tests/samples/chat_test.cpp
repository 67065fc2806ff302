// chat_test: the built moss-chat binary, started as a child process on a
// free loopback port, with plain blocking sockets as its clients.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

// chat_process: moss-chat running on 127.0.0.1, port chosen by the kernel.
class chat_process {
 public:
  explicit chat_process(const std::vector<std::string>& extra = {}) {
    std::snprintf(errname_, sizeof errname_, "/tmp/moss_chat_err_XXXXXX");
    ::close(mkstemp(errname_));
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int e = ::open(errname_, O_WRONLY | O_TRUNC);
      ::dup2(e, 2);
      std::vector<std::string> args{MOSS_CHAT, "--host", "127.0.0.1", "--port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(MOSS_CHAT, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    auto colon = line.rfind(':');
    if (line.rfind("moss-chat: listening on 127.0.0.1:", 0) != 0 || colon == std::string::npos)
      throw std::runtime_error("moss-chat did not start: \"" + line + "\"");
    port_ = std::atoi(line.c_str() + colon + 1);
  }
  ~chat_process() {
    if (pid_ > 0) stop();
    ::unlink(errname_);
  }

  int port() const { return port_; }

  // stop() sends SIGINT and returns the exit status (-1 if it had to be killed).
  int stop() {
    ::kill(pid_, SIGINT);
    int st = 0;
    auto until = clk::now() + 10s;
    while (::waitpid(pid_, &st, WNOHANG) == 0) {
      if (clk::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    if (WIFSIGNALED(st)) std::printf("moss-chat died of signal %d\n", WTERMSIG(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  std::string stderr_text() const {
    std::ifstream f(errname_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  char errname_[64];
};

// chat_client: a blocking connection with line reads that time out.
class chat_client {
 public:
  explicit chat_client(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
  }
  ~chat_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  chat_client(const chat_client&) = delete;
  chat_client& operator=(const chat_client&) = delete;

  void send_line(const std::string& s) {
    std::string l = s + "\n";
    for (std::size_t off = 0; off < l.size();) {
      ssize_t n = ::send(fd_, l.data() + off, l.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send");
      off += static_cast<std::size_t>(n);
    }
  }
  // read_line() returns the next line, "<timeout>" or "<eof>".
  std::string read_line(std::chrono::milliseconds timeout = 5000ms) {
    auto until = clk::now() + timeout;
    for (;;) {
      auto nl = in_.find('\n');
      if (nl != std::string::npos) {
        std::string l = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        return l;
      }
      if (eof_) return "<eof>";
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clk::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return "<timeout>";
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) eof_ = true;
      else in_.append(buf, static_cast<std::size_t>(n));
    }
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string in_;
  bool eof_ = false;
};

}  // namespace

TEST(Chat, ThreeClientsEachSeeTheOthersLinesButNotTheirOwn) {
  chat_process chat;
  chat_client a(chat.port()), b(chat.port()), c(chat.port());
  // c's first line reaching a and b shows all three are in.
  c.send_line("c here");
  EXPECT_EQ(a.read_line(), "#3: c here");
  EXPECT_EQ(b.read_line(), "#3: c here");
  a.send_line("hi all");
  EXPECT_EQ(b.read_line(), "#1: hi all");
  EXPECT_EQ(c.read_line(), "#1: hi all");
  b.send_line("hello\r");  // a CRLF line ending is taken off
  EXPECT_EQ(a.read_line(), "#2: hello");  // not its own "hi all"
  EXPECT_EQ(c.read_line(), "#2: hello");
  EXPECT_EQ(c.read_line(300ms), "<timeout>");  // nothing of its own came back
  EXPECT_EQ(chat.stop(), 0);
}

TEST(Chat, LinesOverFourKiBAreRejectedAndTheNextLinePasses) {
  chat_process chat;
  chat_client a(chat.port()), b(chat.port());
  b.send_line("ready");
  ASSERT_EQ(a.read_line(), "#2: ready");
  a.send_line(std::string(5000, 'x'));
  a.send_line(std::string(4096, 'y'));  // exactly the limit: fine
  a.send_line("short");
  EXPECT_EQ(a.read_line(), "moss-chat: line rejected: longer than 4096 bytes");
  EXPECT_EQ(b.read_line(), "#1: " + std::string(4096, 'y'));
  EXPECT_EQ(b.read_line(), "#1: short");
}

TEST(Chat, AClientThatNeverReadsIsDisconnectedWhileTheOthersKeepReceiving) {
  chat_process chat({"--queue", "5"});
  chat_client a(chat.port()), b(chat.port());
  chat_client slow(chat.port(), 4096);  // a small window so it fills quickly
  slow.send_line("slow here");
  ASSERT_EQ(a.read_line(), "#3: slow here");
  ASSERT_EQ(b.read_line(), "#3: slow here");

  constexpr int lines = 3000;  // 12 MB: far more than the slow client's buffers
  std::string payload(4000, 'p');
  std::atomic<int> got{0};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    for (int i = 0; i < lines; ++i) {
      std::string l = b.read_line();
      if (l != "#1: " + std::to_string(i) + payload) {
        ADD_FAILURE() << "line " << i << ": " << l.substr(0, 80);
        break;
      }
      ++got;
    }
    reader_done = true;
  });
  // a stays at most `window` lines ahead of what b has read, so b's queue
  // (5) never fills however late the machine runs b's reader: only the
  // client that never reads can be too slow.
  constexpr int window = 2;
  auto t0 = clk::now();
  for (int i = 0; i < lines && !reader_done; ++i) {
    while (i - got.load() >= window && !reader_done) std::this_thread::sleep_for(20us);
    a.send_line(std::to_string(i) + payload);
  }
  reader.join();
  double took = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf("b received %d of %d 4 KB lines in %.2f s while the slow client was cut off\n", got.load(), lines, took);
  EXPECT_EQ(got, lines);

  // The slow client gets what was already on its way, then end of file.
  std::string l;
  int seen = 0;
  while ((l = slow.read_line(5000ms)) != "<eof>" && l != "<timeout>") ++seen;
  EXPECT_EQ(l, "<eof>");
  EXPECT_LT(seen, lines);
  EXPECT_EQ(chat.stop(), 0);
  EXPECT_NE(chat.stderr_text().find("#3 (127.0.0.1:"), std::string::npos) << chat.stderr_text();
  EXPECT_NE(chat.stderr_text().find("disconnected: too slow"), std::string::npos) << chat.stderr_text();
}

TEST(Chat, CtrlCTellsTheClientsAndExitsZero) {
  chat_process chat;
  chat_client a(chat.port()), b(chat.port());
  b.send_line("in");
  ASSERT_EQ(a.read_line(), "#2: in");
  EXPECT_EQ(chat.stop(), 0);
  EXPECT_EQ(a.read_line(), "moss-chat: server shutting down");
  EXPECT_EQ(a.read_line(), "<eof>");
  EXPECT_EQ(b.read_line(), "moss-chat: server shutting down");
}

TEST(Chat, TenThousandIdleConnectionsAreAcceptedAndAllReceiveALine) {
  // Each side needs one fd per connection, plus a few.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  std::size_t want = 10000;
  if (rl.rlim_cur < want + 100) want = rl.rlim_cur - 100;  // the machine's limit: as many as it allows
  chat_process chat;
  auto t0 = clk::now();
  std::vector<int> idle;
  idle.reserve(want);
  for (std::size_t i = 0; i < want; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << "socket " << i;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(chat.port()));
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "connect " << i;
    idle.push_back(fd);
  }
  double connect_s = std::chrono::duration<double>(clk::now() - t0).count();
  // The sender connects last, so every idle client was taken in before it.
  chat_client sender(chat.port());
  sender.send_line("wake up");
  std::string expect = "#" + std::to_string(want + 1) + ": wake up\n";
  std::size_t received = 0;
  for (int fd : idle) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got(expect.size(), '\0');
    if (::recv(fd, got.data(), got.size(), MSG_WAITALL) == static_cast<ssize_t>(expect.size()) && got == expect)
      ++received;
  }
  double total_s = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf("%zu idle connections: connected in %.2f s, all received a line after %.2f s\n", want, connect_s,
              total_s);
  EXPECT_EQ(received, want);
  for (int fd : idle) ::close(fd);
  EXPECT_EQ(chat.stop(), 0) << chat.stderr_text();
  EXPECT_EQ(want, 10000u) << "the fd limit allowed only " << want;
}

TEST(Chat, HelpVersionAndUsageErrors) {
  auto run = [](const std::string& args) {
    int st = std::system((std::string(MOSS_CHAT) + " " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(run("--help"), 0);
  EXPECT_EQ(run("--version"), 0);
  EXPECT_EQ(run("--port 70000"), 2);
  EXPECT_EQ(run("--queue 0"), 2);
  EXPECT_EQ(run("--bogus"), 2);
}

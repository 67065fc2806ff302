// io_bench.cpp: what moss::io adds to a system call that does not block —
// a 1-byte read from a unix socketpair that always has data waiting:
//
//   io_read/moss            moss::io::read from the main greenlet of a hub:
//                           the cooperative fast path (fd lookup, recvfrom
//                           with MSG_DONTWAIT)
//   io_read/raw_syscall     syscall(SYS_read) on the same socket
//   io_read/libc            libc's read(), for context
//   io_read/raw_recvfrom    syscall(SYS_recvfrom, ..., MSG_DONTWAIT): the
//                           call moss makes, for context (on sockets the
//                           kernel's recvfrom path is a little shorter than
//                           read's, which is why moss can beat raw read)
//   plain_thread/moss       moss::io::read on a thread without a hub: the
//                           pass-through path
//   plain_thread/raw_syscall
//
// The plain-thread pair runs its loop on a thread of its own (CPU time is
// that thread's), so the hub of the main thread never sees it. Targets
// (issue 4): cooperative <= 1.1x the raw call, pass-through <= 1.05x.
#include "bench_summary.hpp"

#include <moss/hub.hpp>
#include <moss/io.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <thread>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

// ready_socket: a socketpair whose reading end always has data: refilled,
// with the timer paused, whenever what was written has been read.
class ready_socket {
 public:
  ready_socket() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::perror("socketpair");
    rd_ = sv[0];
    wr_ = sv[1];
    int size = 4 << 20;  // as much as the kernel allows
    setsockopt(wr_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(rd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    fill();
  }
  ~ready_socket() {
    moss::io::close(rd_);
    moss::io::close(wr_);
  }
  ready_socket(const ready_socket&) = delete;
  ready_socket& operator=(const ready_socket&) = delete;

  int fd() const { return rd_; }
  // consumed() is called after each byte read; refills when none is left.
  void consumed(benchmark::State& state) {
    if (--left_ > 0) [[likely]]
      return;
    state.PauseTiming();
    fill();
    state.ResumeTiming();
  }

 private:
  void fill() {
    static char chunk[64 * 1024];
    for (;;) {
      ssize_t n = send(wr_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n <= 0) break;
      left_ += n;
    }
  }
  int rd_ = -1;
  int wr_ = -1;
  long left_ = 0;
};

template <class Read>
void read_loop(benchmark::State& state, Read read) {
  ready_socket s;
  char c;
  for (auto _ : state) {
    if (read(s.fd(), &c) != 1) [[unlikely]] {
      state.SkipWithError("a read did not return one byte");
      break;
    }
    s.consumed(state);
  }
}

long raw_read(int fd, char* c) { return syscall(SYS_read, fd, c, 1); }
long libc_read(int fd, char* c) { return ::read(fd, c, 1); }
long raw_recvfrom(int fd, char* c) { return syscall(SYS_recvfrom, fd, c, 1, MSG_DONTWAIT, nullptr, nullptr); }
long moss_read(int fd, char* c) { return moss::io::read(fd, c, 1); }

void io_read_moss(benchmark::State& state) {
  moss::hub::current();  // the main greenlet of this thread's hub: cooperative
  if (!moss::io::cooperative()) {
    state.SkipWithError("moss::io::read would not be cooperative here");
    return;
  }
  read_loop(state, moss_read);
}
void io_read_raw_syscall(benchmark::State& state) { read_loop(state, raw_read); }
void io_read_libc(benchmark::State& state) { read_loop(state, libc_read); }
void io_read_raw_recvfrom(benchmark::State& state) { read_loop(state, raw_recvfrom); }

template <long (*Read)(int, char*)>
void in_plain_thread(benchmark::State& state) {
  std::thread t([&] {
    if (moss::io::cooperative()) {
      state.SkipWithError("a fresh thread should have no hub");
      return;
    }
    read_loop(state, Read);
  });
  t.join();
}

}  // namespace

int main(int argc, char** argv) {
  moss_bench::add("io_read/moss", &io_read_moss);
  moss_bench::add("io_read/raw_syscall", &io_read_raw_syscall);
  moss_bench::add("io_read/libc", &io_read_libc);
  moss_bench::add("io_read/raw_recvfrom", &io_read_raw_recvfrom);
  moss_bench::add("plain_thread/moss", &in_plain_thread<moss_read>);
  moss_bench::add("plain_thread/raw_syscall", &in_plain_thread<raw_read>);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  moss_bench::collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\nsummary: fastest repetition, CPU time per iteration\n");
  moss_bench::print_ratio(reporter, "read 1 byte, cooperative:", "io_read/moss", "io_read/raw_syscall", 1.1);
  moss_bench::print_ratio(reporter, "read 1 byte vs libc read:", "io_read/moss", "io_read/libc", 0);
  moss_bench::print_ratio(reporter, "read 1 byte vs same syscall:", "io_read/moss", "io_read/raw_recvfrom", 0);
  moss_bench::print_ratio(reporter, "read 1 byte, plain thread:", "plain_thread/moss", "plain_thread/raw_syscall", 1.05);
  for (const auto& e : reporter.errors()) std::printf("error: %s\n", e.c_str());
  return reporter.errors().empty() ? 0 : 1;
}

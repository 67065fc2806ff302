// fd_table_fuzz: the io layer's per-fd records (lib/io/fd_table.*) under
// random sequences of fd calls, closes and waits.
//
// Each input is a program of two-byte steps over eight fd slots: make
// socketpairs and pipes, dup and dup2 fds onto each other, close them through
// moss or behind its back (notify_close, then ::close), write, shut down,
// toggle O_NONBLOCK, and park reader and poll tasks on them, kill them and
// let the hub run. What must hold after every step, beyond ASan and UBSan:
//  - every open slot's record is valid and of its fd's kind (socket or pipe),
//    whatever number reuse and dup2 did to it before;
//  - a closed number that nothing reopened has no record;
//  - a read on a fd with O_NONBLOCK never parks (the main greenlet would
//    wait forever and get moss::loop_exit);
//  - a reader parked on a fd that is closed or replaced while nothing could
//    make it readable wakes with EBADF, within the step; a reader returns
//    data only if some was written towards its file;
// and at the end, with every task killed and every slot closed: no greenlet
// parked on a fd, nothing keeping the hub alive, no task left, and the
// process has exactly the fds it had before.
#include <moss/io.hpp>
#include <moss/moss.hpp>

#include "core/hub.hpp"
#include "io/fd_table.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fd_table_fuzz: check failed: %s\n", what);
  std::abort();
}
#define CHECK(c) ((c) ? (void)0 : fail(#c))

using moss::detail::fd_kind;
using moss::detail::fd_table;

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

// A file: one end of a socketpair or pipe, shared by the slots that hold a
// dup of it. Data written to it arrives at its peer.
struct file {
  fd_kind kind;
  int peer;            // index into files
  int refs = 0;        // slots holding it
  bool write_end = true;
  bool written = false;  // data was sent towards this file
  bool eof = false;      // its peer shut down or was closed: readers may wake with 0
};

struct slot {
  int fd = -1;
  int file = -1;
  bool nonblocking = false;
};

struct reader {
  int fd;
  int file;
  bool done = false;
  bool fd_replaced = false;  // its number was closed or replaced while it read
  bool expect_ebadf = false;
  ssize_t n = 0;
  int err = 0;
  moss::task<void> task;
};

class program {
 public:
  void step(std::uint8_t op, std::uint8_t arg) {
    int a = arg & 7, b = (arg >> 3) & 7;
    if (b == a) b = (a + 1) & 7;
    switch (op % 14) {
      case 0: make_pair(a, b, true); break;
      case 1: make_pair(a, b, false); break;
      case 2: close_slot(a, false); break;
      case 3: dup_into(a, b); break;
      case 4: dup2_onto(a, b); break;
      case 5: write_to(a, 1 + (arg >> 6) * 5); break;
      case 6: spawn_reader(a); break;
      case 7: spawn_poll(a, b, arg >> 6); break;
      case 8: kill_reader(arg); break;
      case 9: moss::yield(); break;
      case 10: set_nonblocking(a, !slots_[a].nonblocking); break;
      case 11: read_nonblocking(a); break;
      case 12: shut_down(a); break;
      default: close_slot(a, true); break;
    }
    moss::yield();
    check_records();
  }

  void finish() {
    for (auto& r : readers_) r->task.kill();
    for (auto& p : polls_) p.kill();
    for (int i = 0; i < 8; ++i) close_slot(i, false);
    CHECK(fd_table::for_call()->parked() == 0);
    CHECK(moss::detail::hub_core::current().keepalive == 0);
    CHECK(moss::all_tasks().empty());
  }

 private:
  void drop_ref(int f) {
    if (--files_[f].refs == 0) files_[files_[f].peer].eof = true;
  }
  int new_file(fd_kind k, bool write_end) {
    files_.push_back({k, 0, 0, write_end});
    return static_cast<int>(files_.size()) - 1;
  }
  // replaced(): fd's number now names something else (or nothing): readers
  // parked on it that nothing else could have woken must see EBADF.
  void replaced(int fd, int f) {
    for (auto& r : readers_)
      if (!r->done && r->fd == fd) {
        r->fd_replaced = true;
        if (!files_[f].written && !files_[f].eof) r->expect_ebadf = true;
      }
  }

  void make_pair(int a, int b, bool sock) {
    close_slot(a, false);
    close_slot(b, false);
    int fds[2];
    int rc = sock ? moss::io::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : moss::io::pipe2(fds, O_CLOEXEC);
    CHECK(rc == 0);
    fd_kind k = sock ? fd_kind::socket : fd_kind::pipe;
    int fa = new_file(k, true), fb = new_file(k, sock);
    files_[fa].peer = fb;
    files_[fb].peer = fa;
    if (!sock) files_[fa].write_end = false;  // pipe: fds[0] reads, fds[1] writes
    slots_[a] = {fds[0], fa, false};
    slots_[b] = {fds[1], fb, false};
    files_[fa].refs = files_[fb].refs = 1;
  }

  void close_slot(int i, bool behind_moss) {
    slot& s = slots_[i];
    if (s.fd < 0) return;
    replaced(s.fd, s.file);
    int fd = s.fd;
    if (behind_moss) {
      moss::io::notify_close(fd);
      CHECK(::close(fd) == 0);
    } else {
      CHECK(moss::io::close(fd) == 0);
    }
    drop_ref(s.file);
    s = {};
    // Nothing reopened the number: it has no record.
    CHECK(fd_table::for_call()->get(fd) == nullptr);
  }

  void dup_into(int a, int b) {
    if (slots_[a].fd < 0) return;
    close_slot(b, false);
    int fd = moss::io::dup(slots_[a].fd);
    CHECK(fd >= 0);
    slots_[b] = {fd, slots_[a].file, slots_[a].nonblocking};
    ++files_[slots_[a].file].refs;
  }

  void dup2_onto(int a, int b) {
    if (slots_[a].fd < 0 || slots_[b].fd < 0) return;
    replaced(slots_[b].fd, slots_[b].file);
    CHECK(moss::io::dup2(slots_[a].fd, slots_[b].fd) == slots_[b].fd);
    drop_ref(slots_[b].file);
    slots_[b].file = slots_[a].file;
    slots_[b].nonblocking = slots_[a].nonblocking;
    ++files_[slots_[a].file].refs;
  }

  void write_to(int a, int n) {
    slot& s = slots_[a];
    if (s.fd < 0 || !files_[s.file].write_end || files_[files_[s.file].peer].refs == 0) return;
    if (written_bytes_ + n > 16384) return;  // far below any buffer: a write never parks
    static const char bytes[16] = "0123456789abcde";
    // send() with MSG_NOSIGNAL: a socket shut down for writing gives EPIPE, not SIGPIPE.
    ssize_t got = files_[s.file].kind == fd_kind::socket ? moss::io::send(s.fd, bytes, static_cast<std::size_t>(n), MSG_NOSIGNAL)
                                                         : moss::io::write(s.fd, bytes, static_cast<std::size_t>(n));
    if (got == -1 && errno == EPIPE) return;  // shut down for writing
    CHECK(got == n);
    written_bytes_ += n;
    files_[files_[s.file].peer].written = true;
  }

  void spawn_reader(int a) {
    slot& s = slots_[a];
    if (s.fd < 0 || s.nonblocking || readers_.size() >= 32) return;
    auto r = std::make_unique<reader>();
    r->fd = s.fd;
    r->file = s.file;
    reader* p = r.get();
    r->task = moss::spawn([this, p] {
      char buf[64];
      p->n = moss::io::read(p->fd, buf, sizeof buf);
      p->err = p->n < 0 ? errno : 0;
      p->done = true;
      if (p->expect_ebadf) CHECK(p->n == -1 && p->err == EBADF);
      if (p->n > 0 && !p->fd_replaced) CHECK(files_[p->file].written);
    });
    readers_.push_back(std::move(r));
    moss::yield();  // let it read or park
  }

  void spawn_poll(int a, int b, int ms) {
    if (polls_.size() >= 16) return;
    int fa = slots_[a].fd, fb = slots_[b].fd;
    polls_.push_back(moss::spawn([fa, fb, ms] {
      pollfd p[2] = {{fa, POLLIN, 0}, {fb, POLLIN | POLLOUT, 0}};
      int rc = moss::io::poll(p, 2, ms);
      CHECK(rc >= 0);
    }));
  }

  void kill_reader(std::uint8_t which) {
    if (readers_.empty()) return;
    reader& r = *readers_[which % readers_.size()];
    r.task.kill();
    if (!r.done) r.done = true;  // killed while parked: no result to check
  }

  void set_nonblocking(int a, bool on) {
    slot& s = slots_[a];
    if (s.fd < 0) return;
    int fl = ::fcntl(s.fd, F_GETFL);
    CHECK(::fcntl(s.fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) == 0);
    moss::io::note_nonblocking(s.fd, on);
    // The flag is on the file description: every slot sharing it sees it.
    for (auto& o : slots_)
      if (o.fd >= 0 && o.file == s.file) o.nonblocking = on;
  }

  void read_nonblocking(int a) {
    slot& s = slots_[a];
    if (s.fd < 0 || !s.nonblocking) return;
    char buf[64];
    ssize_t n = moss::io::read(s.fd, buf, sizeof buf);  // must not park
    if (n > 0) CHECK(files_[s.file].written);
    else if (n < 0) CHECK(errno == EAGAIN || errno == EBADF || errno == ECONNRESET);
  }

  void shut_down(int a) {
    slot& s = slots_[a];
    if (s.fd < 0 || files_[s.file].kind != fd_kind::socket) return;
    if (::shutdown(s.fd, SHUT_WR) == 0) files_[files_[s.file].peer].eof = true;
  }

  void check_records() {
    // A close wakes its waiters at once: after the step's yield they ran.
    for (const auto& r : readers_) CHECK(!r->expect_ebadf || r->done);
    fd_table* t = fd_table::for_call();
    for (const slot& s : slots_) {
      if (s.fd < 0) continue;
      auto* r = t->get(s.fd);
      CHECK(r != nullptr);
      CHECK(r->kind == files_[s.file].kind);
      CHECK(r->gen == fd_table::generation(s.fd));
    }
  }

  std::array<slot, 8> slots_{};
  std::vector<file> files_;
  std::vector<std::unique_ptr<reader>> readers_;
  std::vector<moss::task<void>> polls_;
  int written_bytes_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;  // longer programs find nothing shorter ones do not
  // What the first hub leaves for the process (the thread pool's fds, kept
  // for the next hub) is not a leak of the program's.
  static bool warm = (moss::run([] {}), true);
  (void)warm;
  int before = open_fds();
  moss::run([&] {
    program p;
    for (std::size_t i = 0; i + 1 < size; i += 2) p.step(data[i], data[i + 1]);
    p.finish();
  });
  CHECK(open_fds() == before);
  return 0;
}

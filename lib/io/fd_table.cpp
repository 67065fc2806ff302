// fd_table.cpp: fd records, their epoll registration, waking their waiters,
// and the process-wide generations that retire records of closed fds.
//
// Lifetime: a thread's table is made on the first io call of a greenlet on
// a thread with a hub and is the hub's io slot: retired with the hub, after
// its tasks have been killed; only greenlets that nobody resumes (raw
// greenlets parked forever) make it leak instead.
//
// Fork: the child's table keeps what it knows of each fd (the fds are the
// same), but nothing is registered with the child's new epoll yet, and the
// waiters of its records were left behind.
#include "io/fd_table.hpp"

#include "core/sys.hpp"

#include <moss/hub.hpp>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace moss::detail {

namespace {

// errno_guard keeps errno across bookkeeping calls made after the call
// whose errno the caller reports.
class errno_guard {
 public:
  errno_guard() noexcept : e_(errno) {}
  ~errno_guard() { errno = e_; }
  errno_guard(const errno_guard&) = delete;
  errno_guard& operator=(const errno_guard&) = delete;

 private:
  int e_;
};

// Every live table, so a close on one thread reaches waiters on another.
constinit std::mutex registry_mutex;
constinit fd_table* registry_head = nullptr;

}  // namespace

// ---- fd_wait_list ----------------------------------------------------------

fd_wait::~fd_wait() {
  if (list != nullptr) list->remove(*this);
}

void fd_wait_list::push_back(fd_wait& n) noexcept {
  if (n.list != nullptr) n.list->remove(n);
  n.list = this;
  waits_.push_back(n);
}

void fd_wait_list::remove(fd_wait& n) noexcept {
  waits_.remove(n);
  n.list = nullptr;
}

std::size_t fd_wait_list::size() const noexcept {
  std::size_t n = 0;
  for (fd_wait* p = waits_.front(); p != nullptr; p = waits_.next(*p)) ++n;
  return n;
}

void fd_wait_list::wake_all(std::uint32_t events) noexcept {
  while (fd_wait* n = waits_.front()) {
    remove(*n);
    n->got = events;
    n->w->wake();  // false when another fd of the same poll woke it first
  }
}

// ---- fd_record -------------------------------------------------------------

void fd_record::warm() const noexcept {
  if (const fd_wait* n = readers.front()) {
    const waiter* w = n->w;
    __builtin_prefetch(w);
    __builtin_prefetch(w->greenlet());
  }
}

void fd_record::ready(std::uint32_t events) noexcept {
  if ((events & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) unusual = true;
  if ((events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    maybe_readable = true;
    readers.wake_all(events);
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
    maybe_writable = true;
    writers.wake_all(events);
  }
}

// ---- process-wide state ----------------------------------------------------

fd_table::fd_global& fd_table::global(int fd) noexcept {
  auto& slot = globals_[static_cast<unsigned>(fd) >> global_chunk_bits];
  fd_global* c = slot.load(std::memory_order_acquire);
  if (c == nullptr) [[unlikely]] {
    // Zeroed, committed page by page as fds are used; never unmapped.
    void* p = sys::mmap(nullptr, sizeof(fd_global) * global_chunk_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      static const char msg[] = "moss: out of memory for the process-wide fd table\n";
      sys::write_stderr(msg, sizeof msg - 1);
      std::abort();
    }
    fd_global* mine = static_cast<fd_global*>(p);
    if (slot.compare_exchange_strong(c, mine, std::memory_order_acq_rel, std::memory_order_acquire)) {
      c = mine;
    } else {
      sys::munmap(p, sizeof(fd_global) * global_chunk_size);
    }
  }
  return c[fd & (global_chunk_size - 1)];
}

void fd_table::closing(int fd, bool deregister) noexcept {
  if (fd < 0) return;
  errno_guard keep;
  fd_global& g = global(fd);
  g.gen.fetch_add(1, std::memory_order_acq_rel);
  if (fd_table* t = tls_table_) {
    if (fd_record* r = t->existing(fd); r != nullptr && r->kind != fd_kind::unknown) t->drop(*r, fd, deregister);
  }
  if (g.watchers.load(std::memory_order_acquire) == 0) return;
  // Another hub has fd in its epoll, perhaps with greenlets waiting: tell
  // it. Posting can fail only if that hub has stopped: nothing to wake then.
  std::lock_guard lock(registry_mutex);
  for (fd_table* t = registry_head; t != nullptr; t = t->next_) {
    if (t == tls_table_) continue;
    // On that hub's thread: drop the record and wake its waiters.
    post_work(
        *t->facade_,
        [fd] {
          if (fd_table* other = fd_table::current_if_any()) other->refresh(fd);
        },
        "moss::io::notify_close");
  }
}

// ---- the table -------------------------------------------------------------

fd_table::fd_table(hub_core& h)
    : hub_(h), thread_(h.thread()), hub_greenlet_(h.hub_greenlet()), facade_(&h.facade()) {
  live_.fetch_add(1, std::memory_order_relaxed);
}

fd_table::~fd_table() {
  for (fd_record* c : chunks_) delete[] c;
  live_.fetch_sub(1, std::memory_order_relaxed);
}

fd_table* fd_table::make() noexcept {
  thread_state* ts = detail::this_thread_if_any();
  if (ts == nullptr || ts->hub == nullptr) return nullptr;  // no hub, or it is going
  auto* t = new (std::nothrow) fd_table(*ts->hub);
  if (t == nullptr) return nullptr;
  ts->hub->set_slot(slot_kind::io, t);
  tls_table_ = t;
  std::lock_guard lock(registry_mutex);
  t->next_ = registry_head;
  registry_head = t;
  return t;
}

void fd_table::retire() noexcept {
  {
    std::lock_guard lock(registry_mutex);
    for (fd_table** p = &registry_head; *p != nullptr; p = &(*p)->next_) {
      if (*p == this) {
        *p = next_;
        break;
      }
    }
  }
  if (tls_table_ == this) tls_table_ = nullptr;
  if (parked_ > 0) return;  // parked forever by greenlets nobody resumes: leak, do not free under them
  bool hub_alive = thread_.hub == &hub_;
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    if (chunks_[i] == nullptr) continue;
    for (int j = 0; j < chunk_size; ++j) {
      fd_record& r = chunks_[i][j];
      if (!r.registered) continue;
      int fd = static_cast<int>(i * chunk_size) + j;
      // The hub may poll again while it shuts down: its epoll must not
      // hold tags that point into freed records.
      if (hub_alive) hub_.events.remove(fd);
      global(fd).watchers.fetch_sub(1, std::memory_order_acq_rel);
      r.registered = r.watching_output = false;
    }
  }
  delete this;
}

std::size_t fd_table::after_fork() noexcept {
  // Registered with the parent's epoll instance, which the child no longer
  // has (fd_table_at_fork zeroed the watcher counts): the next park
  // registers again, with the child's. What was ready may have been taken
  // by the parent since, so every fd is worth a try first.
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    if (chunks_[i] == nullptr) continue;
    for (int j = 0; j < chunk_size; ++j) {
      fd_record& r = chunks_[i][j];
      r.registered = r.watching_output = false;
      r.maybe_readable = r.maybe_writable = true;
      r.readers.abandon();
      r.writers.abandon();
    }
  }
  // Every greenlet parked here was left behind, each holding a keepalive.
  return std::exchange(parked_, 0);
}

void fd_table::at_fork(fork_phase p) noexcept {
  switch (p) {
    case fork_phase::prepare: registry_mutex.lock(); return;
    case fork_phase::parent: registry_mutex.unlock(); return;
    case fork_phase::child: break;
  }
  new (&registry_mutex) std::mutex;  // held by the prepare step of the parent's thread
  // Other threads' tables belong to hubs that do not exist here: left as
  // they are, unreachable (not even read: their threads may have been
  // changing them). The watcher counts of their fds stay above zero, which
  // only makes a close look for other hubs and find none.
  registry_head = nullptr;
  if (fd_table* mine = tls_table_) {
    // This table's fds are in no epoll of the child yet.
    mine->each_registered([](int fd, fd_record&) { global(fd).watchers.fetch_sub(1, std::memory_order_relaxed); });
    mine->next_ = nullptr;
    registry_head = mine;
  }
}

void fd_table_at_fork(fork_phase p) noexcept { fd_table::at_fork(p); }

fd_record* fd_table::slot(int fd) noexcept {
  if (fd < 0 || fd >= max_fd) return nullptr;
  std::size_t c = static_cast<unsigned>(fd) >> chunk_bits;
  if (c >= chunks_.size()) {
    try {
      chunks_.resize(c + 1, nullptr);
    } catch (...) {
      return nullptr;
    }
  }
  if (chunks_[c] == nullptr) {
    chunks_[c] = new (std::nothrow) fd_record[chunk_size];
    if (chunks_[c] == nullptr) return nullptr;
  }
  return chunks_[c] + (fd & (chunk_size - 1));
}

fd_record* fd_table::get_slow(int fd) noexcept {
  fd_record* r = slot(fd);
  if (r == nullptr) return nullptr;
  std::uint32_t g = generation(fd);
  if (r->kind != fd_kind::unknown && r->gen != g) drop(*r, fd, true);  // closed elsewhere since
  if (r->kind == fd_kind::unknown) {
    r->gen = g;  // read before fstat: a close racing with it leaves the record stale, not wrong
    if (!classify(*r, fd)) return nullptr;
  }
  return r;
}

bool fd_table::classify(fd_record& r, int fd) noexcept {
  struct stat st;
  errno_guard keep;  // the caller's real call reports a bad fd itself
  if (sys::fstat(fd, &st) < 0) return false;
  switch (st.st_mode & S_IFMT) {
    case S_IFSOCK: r.kind = fd_kind::socket; break;
    case S_IFIFO: r.kind = fd_kind::pipe; break;
    case S_IFREG:
    case S_IFDIR:
    case S_IFBLK:
    case S_IFLNK: r.kind = fd_kind::file; break;
    default: r.kind = fd_kind::other; break;  // char devices; anonymous inodes (eventfd, timerfd, epoll, ...)
  }
  return true;
}

fd_record* fd_table::adopt(int fd, fd_kind kind) noexcept {
  fd_record* r = slot(fd);
  if (r == nullptr) return nullptr;
  if (r->kind != fd_kind::unknown) {
    // The number was free, so its last file was closed. If that close went
    // unseen, what every hub knew about it is void: a new generation.
    if (r->gen == generation(fd)) closing(fd, false);
    else drop(*r, fd, false);
  }
  r->gen = generation(fd);
  r->kind = kind;
  return r;
}

void fd_table::drop(fd_record& r, int fd, bool deregister) noexcept {
  errno_guard keep;
  if (r.registered) {
    if (deregister) hub_.events.remove(fd);
    global(fd).watchers.fetch_sub(1, std::memory_order_acq_rel);
    r.registered = r.watching_output = false;
  }
  r.kind = fd_kind::unknown;
  r.maybe_readable = r.maybe_writable = true;
  r.nowait_read = r.nowait_write = r.stream = r.tcp = tri::unknown;
  r.unusual = false;
  r.nonblocking = false;
  r.flags_epoch = r.timeo_epoch = 0;
  r.rcvtimeo = r.sndtimeo = std::chrono::nanoseconds{0};
  // The generation has moved on, so each waiter reports EBADF.
  r.readers.wake_all(0);
  r.writers.wake_all(0);
}

void fd_table::refresh(int fd) noexcept {
  fd_record* r = existing(fd);
  if (r != nullptr && r->kind != fd_kind::unknown && r->gen != generation(fd)) drop(*r, fd, true);
}

bool fd_table::load_flags(fd_record& r, int fd) noexcept {
  errno_guard keep;
  std::uint32_t epoch = flags_epoch();  // before the call: a change racing with it is seen next time
  int fl = sys::fcntl(fd, F_GETFL);
  if (fl < 0) return false;  // the call itself will report the bad fd
  r.nonblocking = (fl & O_NONBLOCK) != 0;
  r.flags_epoch = epoch;
  return r.nonblocking;
}

time_point fd_table::deadline_for(fd_record& r, int fd, direction dir) noexcept {
  if (r.kind != fd_kind::socket) return no_deadline;
  if (r.timeo_epoch != timeo_epoch()) {
    errno_guard keep;
    std::uint32_t epoch = timeo_epoch();
    auto load = [fd](int opt) -> std::chrono::nanoseconds {
      timeval tv{};
      socklen_t len = sizeof tv;
      if (sys::getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0) return std::chrono::nanoseconds{0};
      return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    };
    r.rcvtimeo = load(SO_RCVTIMEO);
    r.sndtimeo = load(SO_SNDTIMEO);
    r.timeo_epoch = epoch;
  }
  std::chrono::nanoseconds t = dir == read_side ? r.rcvtimeo : r.sndtimeo;
  return t.count() > 0 ? deadline_after(t) : no_deadline;
}

int fd_table::watch(fd_record& r, int fd, unsigned dirs) noexcept {
  const bool output = (dirs & write_side) != 0;
  if (r.registered) [[likely]] {
    if (!output || r.watching_output) [[likely]]
      return 0;
    // The first wait to write: watch output too. Like the add, the change
    // reports the fd's readiness now, so a write that failed just before
    // cannot miss its edge.
    errno_guard keep;
    if (hub_.events.modify(fd, &r, poller::input | poller::output) < 0) return errno;
    r.watching_output = true;
    return 0;
  }
  errno_guard keep;
  // Input is always watched: a hang-up or an error wakes the readers.
  unsigned what = output ? poller::input | poller::output : poller::input;
  if (hub_.events.add(fd, &r, what) < 0) {
    int e = errno;
    if (e == EPERM) r.kind = fd_kind::file;  // no readiness in the kernel: it never blocks for long, or always
    if (e != EEXIST) return e;
    // Registered by this record before a drop that could not deregister
    // (the tag is this same record), for what then: set what is asked now.
    if (hub_.events.modify(fd, &r, what) < 0) return errno;
  }
  r.registered = true;
  r.watching_output = output;
  global(fd).watchers.fetch_add(1, std::memory_order_acq_rel);
  return 0;
}

wake_reason fd_table::park(fd_record& r, int fd, unsigned dirs, time_point deadline, const char* what,
                           std::uint32_t* events) {
  if (int e = watch(r, fd, dirs); e != 0) {
    errno = e;
    return wake_reason::failed;
  }
  std::uint32_t gen = r.gen;
  waiter w;
  w.set_what(what);
  fd_wait rd, wr;
  rd.w = wr.w = &w;
  if ((dirs & read_side) != 0) r.readers.push_back(rd);
  if ((dirs & write_side) != 0) r.writers.push_back(wr);
  bool woke;
  {
    parking p(*this);
    woke = w.wait(deadline);
  }
  if (generation(fd) != gen) return wake_reason::closed;
  // Only the nodes that were linked: an unused one may lie in a cache line
  // of this frame that nothing else touched since the park.
  if (events != nullptr) *events = ((dirs & read_side) != 0 ? rd.got : 0) | ((dirs & write_side) != 0 ? wr.got : 0);
  return woke ? wake_reason::ready : wake_reason::timed_out;
}

}  // namespace moss::detail

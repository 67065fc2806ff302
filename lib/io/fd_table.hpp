// fd_table.hpp (internal): what the io layer knows about each fd.
//
// Fds belong to the process, waiting belongs to a hub, so there are two
// levels:
//  - per process, one word pair per fd: a generation, bumped whenever the fd
//    is closed, replaced or forgotten, and the number of hubs that have it
//    registered with their epoll; plus two epochs for all fds, bumped when
//    a user's O_NONBLOCK or a socket timeout changes;
//  - per hub (one per OS thread), an fd_table: an array of fd_records indexed
//    by fd, in chunks that never move (a record's address is its epoll tag).
//
// A record is valid while its generation equals the process-wide one; a
// mismatch means the fd was closed (perhaps by another thread) since, and
// the record is dropped: its waiters wake and see EBADF, it leaves epoll,
// and it is classified again on next use. Classification is lazy (fstat on
// first use), so fds made by libc or inherited work like any other.
//
// A record is registered with its hub's epoll at most once, on the first
// wait, edge-triggered for input and hang-up, and for output from the first
// wait to write on (an fd that is only read, the usual socket, then never
// wakes the poller when its send buffer drains). Edge-triggered means a
// readiness seen by nobody is not reported again, so a greenlet parks only
// after a call (or a zero-timeout poll) found the fd not ready: any readiness
// after that is a new edge. maybe_readable/maybe_writable remember that
// observation ("not ready, and no event since"), which lets a second waiter
// park without repeating a call that would fail. It holds for a record not
// registered yet as well: registering reports the readiness the fd has at
// that moment, as an event.
//
// A short read from a TCP socket is such an observation too: the kernel
// returns less than asked only when the receive queue ran empty, so the next
// read would fail with EAGAIN; io.cpp skips that call and parks at once
// (each request of a keep-alive server then costs one read, not two). The
// exceptions are urgent data (a read stops at the mark) and a peer's FIN or
// an error (nothing more will arrive, so no edge would come): the record is
// registered for EPOLLPRI too, and once it has seen urgent data, a hang-up or
// an error it never trusts a short read again.
#pragma once

#include "core/hub.hpp"

#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace moss::detail {

enum class fd_kind : std::uint8_t {
  unknown,  // not classified yet (or dropped)
  socket,   // recv/send with MSG_DONTWAIT
  pipe,     // pipes and FIFOs: RWF_NOWAIT, else wait for readiness then call
  other,    // char devices, eventfd, timerfd, ...: like pipe; may turn out unpollable
  file,     // regular files, directories, block devices, unpollable fds: pass through
};

// tri: a per-fd probe whose answer is learned on first use.
enum class tri : std::uint8_t { unknown, yes, no };

class fd_wait_list;

// fd_wait: one greenlet waiting for one direction of one fd. Lives on the
// waiting greenlet's stack next to its waiter; several fd_waits may share a
// waiter (poll on many fds). Its destructor unlinks it.
struct fd_wait {
  fd_wait() = default;
  fd_wait(const fd_wait&) = delete;
  fd_wait& operator=(const fd_wait&) = delete;
  ~fd_wait();

  waiter* w = nullptr;
  std::uint32_t got = 0;  // the epoll events that woke it (0: a close)
  fd_wait_list* list = nullptr;
  list_links<fd_wait> links;
};

// fd_wait_list: an intrusive list of fd_waits. A waiter can sit in only one
// waiter_list, and poll() needs one greenlet waiting on many fds, hence a
// list of nodes that point to waiters.
class fd_wait_list {
 public:
  fd_wait_list() = default;
  fd_wait_list(const fd_wait_list&) = delete;
  fd_wait_list& operator=(const fd_wait_list&) = delete;
  ~fd_wait_list() { wake_all(0); }

  void push_back(fd_wait& n) noexcept;
  void remove(fd_wait& n) noexcept;
  bool empty() const noexcept { return waits_.empty(); }
  const fd_wait* front() const noexcept { return waits_.front(); }
  std::size_t size() const noexcept;
  // wake_all() wakes every node's waiter, recording `events`, and empties
  // the list.
  void wake_all(std::uint32_t events) noexcept;
  // abandon() empties the list without touching its nodes: in a forked
  // child they belong to greenlets left behind, whose stacks never run.
  void abandon() noexcept { waits_.forget(); }

 private:
  intrusive_list<fd_wait, member_links<fd_wait, &fd_wait::links>> waits_;
};

class fd_record final : public fd_handler {
 public:
  // ready() is called by the hub with the epoll events of this fd.
  void ready(std::uint32_t events) noexcept override;
  // warm() fetches the first reader's waiter and greenlet, which a wake
  // reads (both cold when thousands of greenlets wait).
  void warm() const noexcept override;

  fd_wait_list readers;  // also woken by hang-up and error
  fd_wait_list writers;
  std::uint32_t gen = 0;  // the process-wide generation this record describes
  fd_kind kind = fd_kind::unknown;
  bool registered = false;
  bool watching_output = false;  // registered for EPOLLOUT too
  bool maybe_readable = true;
  bool maybe_writable = true;
  tri nowait_read = tri::unknown;   // preadv2(RWF_NOWAIT) works on this fd
  tri nowait_write = tri::unknown;  // pwritev2(RWF_NOWAIT) works on this fd
  tri stream = tri::unknown;        // a SOCK_STREAM socket (for MSG_WAITALL)
  tri tcp = tri::unknown;           // a TCP socket: a short read drains it (see the file comment)
  bool unusual = false;             // saw urgent data, a hang-up or an error: short reads prove nothing
  bool nonblocking = false;         // the user's O_NONBLOCK, valid if flags_epoch is current
  std::uint32_t flags_epoch = 0;    // fd_table::flags_epoch() when read; 0: never
  std::uint32_t timeo_epoch = 0;    // fd_table::timeo_epoch() when read; 0: never
  std::chrono::nanoseconds rcvtimeo{0};  // SO_RCVTIMEO; 0: none
  std::chrono::nanoseconds sndtimeo{0};  // SO_SNDTIMEO; 0: none
};

// How a park ended.
enum class wake_reason : std::uint8_t { ready, timed_out, closed, failed };

// fd_table: the hub's io slot (hub_slot), made on the first io call of a
// greenlet on a thread with a hub and retired with the hub.
class fd_table final : public hub_slot {
 public:
  static constexpr int chunk_bits = 8;
  static constexpr int chunk_size = 1 << chunk_bits;
  enum direction : unsigned { read_side = 1, write_side = 2 };

  // for_call() is this thread's table if the caller may wait cooperatively
  // (a greenlet other than the hub's, on a thread whose hub exists); null
  // otherwise, and then the caller passes through to the kernel.
  static fd_table* for_call() noexcept {
    fd_table* t = tls_table_;
    if (t == nullptr) [[unlikely]]
      t = make();
    if (t == nullptr || t->thread_.current == t->hub_greenlet_) return nullptr;
    return t;
  }
  // current_if_any() is this thread's table, or null; any greenlet.
  static fd_table* current_if_any() noexcept { return tls_table_; }

  // get() is fd's valid, classified record, or null when fd is negative,
  // not open or beyond what the table can hold (the caller then makes the
  // real call, which fails as the kernel decides).
  fd_record* get(int fd) noexcept {
    if (static_cast<unsigned>(fd) < chunks_.size() * chunk_size) [[likely]] {
      fd_record* c = chunks_[static_cast<unsigned>(fd) >> chunk_bits];
      if (c != nullptr) [[likely]] {
        fd_record* r = c + (fd & (chunk_size - 1));
        if (r->kind != fd_kind::unknown && r->gen == generation(fd)) [[likely]]
          return r;
      }
    }
    return get_slow(fd);
  }

  // adopt() records a fd the caller just created (socket, accept, pipe):
  // its kind is known, so no fstat is needed (fd_kind::unknown: learn it on
  // first use). Whatever the number's record held is dropped.
  fd_record* adopt(int fd, fd_kind kind) noexcept;

  // park() waits until fd is ready in one of `dirs`, it is closed, or the
  // deadline passes. The caller must have seen the fd not ready since the
  // last event (see the file comment). Registers the fd on first use; if
  // that fails returns failed with errno set (EPERM: the fd cannot be
  // polled, and the record became fd_kind::file). When it returns ready and
  // events is given, *events holds the epoll events that woke it. Throws
  // what waiter::wait throws (kill, moss::timeout).
  wake_reason park(fd_record& r, int fd, unsigned dirs, time_point deadline, const char* what,
                   std::uint32_t* events = nullptr);

  // nonblocking() is the user's O_NONBLOCK for fd, read with F_GETFL when
  // the cached value is stale. Preserves errno.
  bool nonblocking(fd_record& r, int fd) noexcept {
    if (r.flags_epoch == flags_epoch()) [[likely]]
      return r.nonblocking;
    return load_flags(r, fd);
  }
  // deadline_for() is when a wait in direction `dir` must give up, from
  // SO_RCVTIMEO/SO_SNDTIMEO (sockets only), computed from now.
  time_point deadline_for(fd_record& r, int fd, direction dir) noexcept;

  // existing() is fd's record if its chunk exists, classified or not; never
  // allocates, never classifies.
  fd_record* existing(int fd) noexcept {
    if (fd < 0 || static_cast<unsigned>(fd) >= chunks_.size() * chunk_size) return nullptr;
    fd_record* c = chunks_[static_cast<unsigned>(fd) >> chunk_bits];
    return c != nullptr ? c + (fd & (chunk_size - 1)) : nullptr;
  }
  // watch() registers fd with the hub's epoll for the directions in `dirs`
  // (read_side | write_side) if it is not yet. Returns 0 or an errno: EPERM
  // means fd cannot be polled (r becomes fd_kind::file).
  int watch(fd_record& r, int fd, unsigned dirs = read_side | write_side) noexcept;
  // parking counts a greenlet parked on fds: it keeps the hub polling
  // (hub_core::keepalive) instead of raising loop_exit.
  class parking {
   public:
    explicit parking(fd_table& t) noexcept : t_(t) {
      ++t_.hub_.keepalive;
      ++t_.parked_;
    }
    ~parking() {
      --t_.hub_.keepalive;
      --t_.parked_;
    }
    parking(const parking&) = delete;
    parking& operator=(const parking&) = delete;

   private:
    fd_table& t_;
  };

  // drop() forgets what r knew about fd: its waiters wake (and see the new
  // generation, so report EBADF), it leaves epoll (if deregister: only while
  // fd still names the same file), and it is classified again on next use.
  void drop(fd_record& r, int fd, bool deregister) noexcept;
  // refresh() drops fd's record if another thread closed fd since.
  void refresh(int fd) noexcept;

  hub_core& hub() const noexcept { return hub_; }
  // live_tables() counts tables not yet freed, in the process (leak checks).
  static std::size_t live_tables() noexcept { return live_.load(std::memory_order_relaxed); }
  std::size_t parked() const noexcept { return parked_; }

  // The process-wide state. fd must be >= 0.
  static std::uint32_t generation(int fd) noexcept {
    const fd_global* c = globals_[static_cast<unsigned>(fd) >> global_chunk_bits].load(std::memory_order_acquire);
    return c != nullptr ? c[fd & (global_chunk_size - 1)].gen.load(std::memory_order_relaxed) : 0;
  }
  // Epochs of the user's settings: bumped by note_nonblocking (flags) and
  // note_timeout (timeouts), so every record re-reads its cached copy, dups
  // and other threads' records of the same file description included.
  static std::uint32_t flags_epoch() noexcept { return flags_epoch_.load(std::memory_order_relaxed); }
  static std::uint32_t timeo_epoch() noexcept { return timeo_epoch_.load(std::memory_order_relaxed); }
  static std::uint32_t bump_flags_epoch() noexcept { return flags_epoch_.fetch_add(1, std::memory_order_relaxed) + 1; }
  static std::uint32_t bump_timeo_epoch() noexcept { return timeo_epoch_.fetch_add(1, std::memory_order_relaxed) + 1; }
  // closing() is notify_close/forget: a new generation for fd, this
  // thread's record dropped, and other hubs that registered fd told to drop
  // theirs (their waiters wake with EBADF).
  static void closing(int fd, bool deregister) noexcept;

  // The hub_slot contract. retire() leaks the table instead of freeing it
  // while greenlets nobody will resume are parked on its records.
  void retire() noexcept override;
  std::size_t after_fork() noexcept override;
  // at_fork() is fd_table_at_fork (hub.hpp): the registry's lock, and in a
  // child, the registry and the process-wide watcher counts reset.
  static void at_fork(fork_phase p) noexcept;

 private:
  explicit fd_table(hub_core& h);
  ~fd_table() override;
  fd_table(const fd_table&) = delete;
  fd_table& operator=(const fd_table&) = delete;

  static fd_table* make() noexcept;
  fd_record* slot(int fd) noexcept;  // the record for fd, allocating its chunk
  fd_record* get_slow(int fd) noexcept;
  bool classify(fd_record& r, int fd) noexcept;
  bool load_flags(fd_record& r, int fd) noexcept;
  // each_registered() calls f(fd, record) for every record in epoll.
  template <class F>
  void each_registered(F f) noexcept {
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
      if (chunks_[i] == nullptr) continue;
      for (int j = 0; j < chunk_size; ++j)
        if (chunks_[i][j].registered) f(static_cast<int>(i * chunk_size) + j, chunks_[i][j]);
    }
  }

  // A table covers fds below 2^24; calls on larger fds pass through.
  static constexpr int max_fd = 1 << 24;

  hub_core& hub_;
  thread_state& thread_;
  greenlet_impl* hub_greenlet_;
  moss::hub* facade_;  // never freed: safe to post to from other threads
  std::vector<fd_record*> chunks_;
  std::size_t parked_ = 0;  // greenlets parked on fds
  fd_table* next_ = nullptr;  // every live table (fd_table.cpp's registry)

  // Per process, per fd: 2^15 chunks of 2^16 fds cover every fd the kernel
  // can hand out (at most 2^31); a chunk is mapped on first use and never
  // freed, so other threads can read it without a lock.
  struct fd_global {
    std::atomic<std::uint32_t> gen;
    std::atomic<std::uint32_t> watchers;  // hubs with fd in their epoll
  };
  static constexpr int global_chunk_bits = 16;
  static constexpr int global_chunk_size = 1 << global_chunk_bits;
  static fd_global& global(int fd) noexcept;

  static inline constinit std::atomic<fd_global*> globals_[1u << (31 - global_chunk_bits)] = {};
  static inline constinit std::atomic<std::uint32_t> flags_epoch_{1};
  static inline constinit std::atomic<std::uint32_t> timeo_epoch_{1};
  static inline constinit std::atomic<std::size_t> live_{0};
  // initial-exec: no __tls_get_addr call on the fast path in libmoss.so
  // (as the greenlet layer's own thread pointer).
  [[gnu::tls_model("initial-exec")]] static inline constinit thread_local fd_table* tls_table_ = nullptr;
};

}  // namespace moss::detail

// io.cpp: moss::io's calls.
//
// Every call has the same shape: find the calling thread's fd table (none:
// make the plain system call); make the call so that it cannot block; if it
// fails with EAGAIN and the user did not ask for that, park on the fd and
// try again.
//
// "Cannot block" per kind of fd:
//  - sockets: MSG_DONTWAIT, a per-call flag; for accept, connect and
//    sendfile, which take no such flag, O_NONBLOCK is set with FIONBIO for
//    the one system call and cleared again (only when the user's socket is
//    blocking, so the user's own flag is never touched);
//  - pipes, FIFOs and other pollable fds: preadv2/pwritev2 with RWF_NOWAIT.
//    Where the kernel refuses it for the fd (EOPNOTSUPP: ttys, inotify,
//    eventfd writes, pipes before Linux 5.x) a zero-timeout poll must say
//    ready first, then the plain call runs: a read then returns what is
//    there, and a write is cut to PIPE_BUF bytes, which fit once the pipe
//    polls writable. No greenlet of this hub can run in between, so only
//    another thread or process draining the same fd in that instant can make
//    the call block. O_NONBLOCK is never flipped on them: a pipe is often
//    shared with other processes (a shell's), which would see EAGAIN.
//  - regular files: passed through; they block the thread.
//
// A short read from a TCP socket counts as "not ready" (fd_table.hpp): the
// next read parks without first failing with EAGAIN.
//
// A blocking write transfers everything before returning, as the kernel's
// does, so it loops over partial writes; when it stops early (error,
// timeout) it returns the count written so far, as the kernel does.
#include <moss/io.hpp>

#include "io/fd_table.hpp"
#include "core/sys.hpp"

#include <moss/time.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace moss::io {

namespace {

using detail::fd_kind;
using detail::fd_record;
using detail::fd_table;
using detail::time_point;
using detail::tri;
using detail::wake_reason;
namespace sys = detail::sys;

constexpr timespec zero_timeout{0, 0};

// ---- helpers -----------------------------------------------------------------

std::size_t iov_total(const iovec* iov, std::size_t n) noexcept {
  std::size_t t = 0;
  for (std::size_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// iov_cursor: a copy of an iovec array that can drop bytes from its front,
// for the rest of a partial transfer (the caller's array is const).
class iov_cursor {
 public:
  iov_cursor(const iovec* iov, std::size_t n) : v_(iov, iov + n) {}
  void advance(std::size_t k) noexcept {
    while (first_ < v_.size() && (k > 0 || v_[first_].iov_len == 0)) {
      iovec& e = v_[first_];
      if (k < e.iov_len) {
        e.iov_base = static_cast<char*>(e.iov_base) + k;
        e.iov_len -= k;
        return;
      }
      k -= e.iov_len;
      ++first_;
    }
  }
  iovec* data() noexcept { return v_.data() + first_; }
  int count() const noexcept { return static_cast<int>(v_.size() - first_); }

 private:
  std::vector<iovec> v_;
  std::size_t first_ = 0;
};

// prefix() copies into out the first `limit` bytes of iov (at most max
// entries); returns the entry count.
int prefix(const iovec* iov, int n, std::size_t limit, iovec* out, int max) noexcept {
  int k = 0;
  for (int i = 0; i < n && k < max && limit > 0; ++i) {
    if (iov[i].iov_len == 0) continue;
    out[k] = iov[i];
    out[k].iov_len = std::min(out[k].iov_len, limit);
    limit -= out[k].iov_len;
    ++k;
  }
  return k;
}

// with_nonblock() runs f with O_NONBLOCK set on fd's file description, for
// calls that have no per-call flag. The user's flag is known to be clear.
template <class F>
long with_nonblock(int fd, F&& f) noexcept {
  int on = 1;
  if (sys::ioctl(fd, FIONBIO, &on) < 0) return -1;
  long r = f();
  int e = errno;
  int off = 0;
  sys::ioctl(fd, FIONBIO, &off);
  errno = e;
  return r;
}

// zero_poll() is one poll of fd with no timeout: its revents, 0 if not
// ready, or POLLNVAL.
short zero_poll(int fd, short events) noexcept {
  pollfd p{fd, events, 0};
  int k = sys::ppoll(&p, 1, &zero_timeout);
  return k > 0 ? p.revents : 0;
}

// timespec_until() is the time left until a deadline, for the kernel.
timespec timespec_until(time_point deadline) noexcept {
  auto left = std::max(std::chrono::nanoseconds{0}, deadline - detail::clock::now());
  return timespec{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
}

// blocking_poll() is poll(2) until a deadline, blocking the thread: what
// the io calls do where they cannot park.
int blocking_poll(pollfd* fds, nfds_t n, time_point deadline) noexcept {
  if (deadline == detail::no_deadline) return sys::ppoll(fds, n, nullptr);
  for (;;) {
    timespec ts = timespec_until(deadline);
    int k = sys::ppoll(fds, n, &ts);
    if (k < 0 && errno == EINTR && detail::clock::now() < deadline) continue;
    return k;
  }
}

// ---- waiting -----------------------------------------------------------------

// blocking_call: one call that may park several times on one fd. The
// deadline (from SO_RCVTIMEO/SO_SNDTIMEO unless given) is fixed at the first
// park, so retries do not extend it.
class blocking_call {
 public:
  blocking_call(fd_table& t, fd_record& r, int fd, fd_table::direction dir, const char* what) noexcept
      : t_(t), r_(r), fd_(fd), dir_(dir), what_(what) {}

  void set_deadline(time_point d, int timeout_errno) noexcept {
    deadline_ = d;
    have_deadline_ = true;
    timeout_errno_ = timeout_errno;
  }

  enum outcome { retry, stop, block };
  // wait() parks until the fd may be ready (retry; *events, if given, holds
  // the epoll events that woke it), or gives up with errno set (stop:
  // closed, timed out; or the kernel could not register the fd, ENOMEM), or
  // finds the fd has no readiness to watch (block: make the plain blocking
  // call instead; errno EPERM).
  outcome wait(std::uint32_t* events = nullptr) {
    if (!have_deadline_) {
      deadline_ = t_.deadline_for(r_, fd_, dir_);
      have_deadline_ = true;
    }
    switch (t_.park(r_, fd_, dir_, deadline_, what_, events)) {
      case wake_reason::ready: return retry;
      case wake_reason::closed: errno = EBADF; return stop;
      case wake_reason::timed_out: errno = timeout_errno_; return stop;
      case wake_reason::failed: return unwatchable();
    }
    return block;
  }

  // unwatchable() decides after epoll refused the fd (errno says why). EPERM:
  // a file with no readiness, the plain call never blocks for long. Anything
  // else (ENOMEM, ENOSPC at fs.epoll.max_user_watches): the call fails with
  // ENOMEM, since its plain blocking form would stop every greenlet of the
  // hub until the fd is ready.
  outcome unwatchable() noexcept {
    if (errno == EPERM) return block;
    errno = ENOMEM;
    return stop;
  }

  fd_table& table() const noexcept { return t_; }
  fd_record& record() const noexcept { return r_; }
  int fd() const noexcept { return fd_; }
  bool& maybe_ready() const noexcept { return dir_ == fd_table::read_side ? r_.maybe_readable : r_.maybe_writable; }
  bool nonblocking() const noexcept { return t_.nonblocking(r_, fd_); }

 private:
  fd_table& t_;
  fd_record& r_;
  int fd_;
  fd_table::direction dir_;
  const char* what_;
  time_point deadline_{};
  bool have_deadline_ = false;
  int timeout_errno_ = EAGAIN;
};

// until_ready() makes one call that succeeds or fails for a reason other
// than "not ready". call(true) must not block; call(false) is the plain
// blocking call. Parks between tries unless the user asked for non-blocking
// behaviour (dontwait, or O_NONBLOCK on the fd), which gets EAGAIN.
template <class F>
long until_ready(blocking_call& c, bool dontwait, F&& call) {
  bool& maybe = c.maybe_ready();
  // Seen not ready and no event since: the call would fail, park first.
  bool attempt = dontwait || maybe || c.nonblocking();
  for (;;) {
    if (attempt) {
      long r = call(true);
      if (r >= 0 || errno != EAGAIN) return r;
      maybe = false;
      if (dontwait || c.nonblocking()) {
        errno = EAGAIN;
        return -1;
      }
    }
    attempt = true;
    switch (c.wait()) {
      case blocking_call::retry: break;
      case blocking_call::stop: return -1;
      case blocking_call::block: return call(false);
    }
  }
}

// ready_then() is until_ready() for fds without a non-blocking variant of
// the call: a zero-timeout poll must say ready, then the plain call runs.
template <class F>
long ready_then(blocking_call& c, short events, F&& call) {
  if (c.nonblocking()) return call();
  bool& maybe = c.maybe_ready();
  for (;;) {
    if (maybe) {
      if (zero_poll(c.fd(), events) != 0) return call();
      maybe = false;
    }
    switch (c.wait()) {
      case blocking_call::retry: break;
      case blocking_call::stop: return -1;
      case blocking_call::block: return call();
    }
  }
}

// socket_is() learns once whether fd's integer socket option opt is want,
// and keeps the answer in known.
bool socket_is(tri& known, int fd, int opt, int want) noexcept {
  if (known == tri::unknown) {
    int value = 0;
    socklen_t len = sizeof value;
    int e = errno;
    known = sys::getsockopt(fd, SOL_SOCKET, opt, &value, &len) == 0 && value == want ? tri::yes : tri::no;
    errno = e;
  }
  return known == tri::yes;
}

bool is_stream(fd_record& r, int fd) noexcept { return socket_is(r.stream, fd, SO_TYPE, SOCK_STREAM); }
bool is_tcp(fd_record& r, int fd) noexcept { return socket_is(r.tcp, fd, SO_PROTOCOL, IPPROTO_TCP); }

// note_read() learns from a read that took `got` of `asked` bytes: short,
// from a TCP socket, it emptied the receive queue, so the next read parks
// without a call that would fail (fd_table.hpp says when this holds).
// Reads that peek or take ancillary data must not come here.
void note_read(fd_record& r, int fd, long got, std::size_t asked) noexcept {
  if (got > 0 && static_cast<std::size_t>(got) < asked && asked <= INT_MAX && !r.unusual && is_tcp(r, fd))
    r.maybe_readable = false;
}

// ---- sockets -----------------------------------------------------------------

// Flags that make recv return at once whatever the socket's mode.
constexpr int never_blocks = MSG_ERRQUEUE | MSG_OOB;

ssize_t sock_recv(fd_table& t, fd_record& r, int fd, void* buf, std::size_t n, int flags, sockaddr* from,
                  socklen_t* fromlen, const char* what) {
  if ((flags & never_blocks) != 0) return sys::recvfrom(fd, buf, n, flags, from, fromlen);
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(t, r, fd, fd_table::read_side, what);
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  for (;;) {
    long got = until_ready(c, dontwait, [&](bool nowait) {
      return sys::recvfrom(fd, p + done, n - done, nowait ? flags | MSG_DONTWAIT : flags, from, fromlen);
    });
    if (got < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    if ((flags & MSG_PEEK) == 0) note_read(r, fd, got, n - done);
    done += static_cast<std::size_t>(got);
    // MSG_WAITALL on a blocking stream socket waits for all n bytes.
    bool all = (flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL && !dontwait;
    if (got == 0 || done >= n || !all || c.nonblocking() || !is_stream(r, fd)) return static_cast<ssize_t>(done);
  }
}

ssize_t sock_send(fd_table& t, fd_record& r, int fd, const void* buf, std::size_t n, int flags, const sockaddr* to,
                  socklen_t tolen, const char* what) {
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(t, r, fd, fd_table::write_side, what);
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  for (;;) {
    long sent = until_ready(c, dontwait, [&](bool nowait) {
      return sys::sendto(fd, p + done, n - done, nowait ? flags | MSG_DONTWAIT : flags, to, tolen);
    });
    if (sent < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(sent);
    if (done >= n || sent == 0 || dontwait || c.nonblocking()) return static_cast<ssize_t>(done);
  }
}

ssize_t sock_recvmsg(fd_table& t, fd_record& r, int fd, msghdr* m, int flags, const char* what) {
  if ((flags & never_blocks) != 0) return sys::recvmsg(fd, m, flags);
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(t, r, fd, fd_table::read_side, what);
  // Ancillary data can end a read early (a record type, passed fds): only a
  // plain one tells whether the queue was emptied.
  const bool plain = (m->msg_control == nullptr || m->msg_controllen == 0) && (flags & MSG_PEEK) == 0;
  long got = until_ready(c, dontwait, [&](bool nowait) { return sys::recvmsg(fd, m, nowait ? flags | MSG_DONTWAIT : flags); });
  std::size_t total = got > 0 ? iov_total(m->msg_iov, m->msg_iovlen) : 0;
  if (plain) note_read(r, fd, got, total);
  bool all = (flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL && !dontwait;
  if (got <= 0 || !all || c.nonblocking() || !is_stream(r, fd)) return got;
  auto done = static_cast<std::size_t>(got);
  if (done >= total) return got;
  // The rest of MSG_WAITALL: more data only; name and control came first.
  iov_cursor rest(m->msg_iov, m->msg_iovlen);
  rest.advance(done);
  while (done < total) {
    msghdr more{};
    more.msg_iov = rest.data();
    more.msg_iovlen = static_cast<std::size_t>(rest.count());
    long k = until_ready(c, false, [&](bool nowait) { return sys::recvmsg(fd, &more, nowait ? flags | MSG_DONTWAIT : flags); });
    if (plain) note_read(r, fd, k, total - done);
    if (k <= 0) break;
    done += static_cast<std::size_t>(k);
    rest.advance(static_cast<std::size_t>(k));
  }
  return static_cast<ssize_t>(done);
}

ssize_t sock_sendmsg(fd_table& t, fd_record& r, int fd, const msghdr* m, int flags, const char* what) {
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(t, r, fd, fd_table::write_side, what);
  long sent = until_ready(c, dontwait, [&](bool nowait) { return sys::sendmsg(fd, m, nowait ? flags | MSG_DONTWAIT : flags); });
  if (sent < 0 || dontwait) return sent;
  std::size_t total = iov_total(m->msg_iov, m->msg_iovlen);
  auto done = static_cast<std::size_t>(sent);
  if (done >= total || c.nonblocking()) return sent;
  // A stream socket took part of it: send the rest, without the control
  // data, which went with the first bytes.
  iov_cursor rest(m->msg_iov, m->msg_iovlen);
  rest.advance(done);
  while (done < total) {
    msghdr more{};
    more.msg_name = m->msg_name;
    more.msg_namelen = m->msg_namelen;
    more.msg_iov = rest.data();
    more.msg_iovlen = static_cast<std::size_t>(rest.count());
    long k = until_ready(c, false, [&](bool nowait) { return sys::sendmsg(fd, &more, nowait ? flags | MSG_DONTWAIT : flags); });
    if (k <= 0) break;
    done += static_cast<std::size_t>(k);
    rest.advance(static_cast<std::size_t>(k));
  }
  return static_cast<ssize_t>(done);
}

// ---- pipes and other pollable fds ------------------------------------------

ssize_t stream_readv(fd_table& t, fd_record& r, int fd, const iovec* iov, int n, const char* what) {
  blocking_call c(t, r, fd, fd_table::read_side, what);
  if (r.nowait_read != tri::no) {
    long got = until_ready(c, false, [&](bool nowait) {
      return nowait ? sys::preadv2(fd, iov, n, RWF_NOWAIT) : sys::readv(fd, iov, n);
    });
    if (got >= 0 || r.nowait_read == tri::yes || (errno != EOPNOTSUPP && errno != ENOSYS)) {
      if (got >= 0) r.nowait_read = tri::yes;
      return got;
    }
    r.nowait_read = tri::no;
  }
  return ready_then(c, POLLIN, [&] { return sys::readv(fd, iov, n); });
}

ssize_t stream_writev(fd_table& t, fd_record& r, int fd, const iovec* iov, int n, const char* what) {
  blocking_call c(t, r, fd, fd_table::write_side, what);
  const std::size_t total = iov_total(iov, static_cast<std::size_t>(n));
  std::unique_ptr<iov_cursor> rest;  // made on the first partial write
  std::size_t done = 0;
  for (;;) {
    const iovec* v = rest ? rest->data() : iov;
    int vn = rest ? rest->count() : n;
    long sent;
    if (r.nowait_write != tri::no) {
      sent = until_ready(c, false, [&](bool nowait) {
        return nowait ? sys::pwritev2(fd, v, vn, RWF_NOWAIT) : sys::writev(fd, v, vn);
      });
      if (sent < 0 && r.nowait_write == tri::unknown && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        r.nowait_write = tri::no;
        continue;
      }
      if (sent >= 0) r.nowait_write = tri::yes;
    } else if (c.nonblocking()) {
      sent = sys::writev(fd, v, vn);
    } else {
      // Up to PIPE_BUF bytes in one call: atomic, as POSIX wants for small
      // writes, and sure to fit once the fd polls writable.
      iovec part[16];
      int pn = prefix(v, vn, PIPE_BUF, part, 16);
      sent = ready_then(c, POLLOUT, [&] { return sys::writev(fd, part, pn); });
    }
    if (sent < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(sent);
    if (done >= total || sent == 0 || c.nonblocking()) return static_cast<ssize_t>(done);
    if (!rest) {
      rest = std::make_unique<iov_cursor>(iov, static_cast<std::size_t>(n));
      rest->advance(done);
    } else {
      rest->advance(static_cast<std::size_t>(sent));
    }
  }
}

// ---- wait_readable / wait_writable --------------------------------------------

int wait_fd(int fd, short events, fd_table::direction dir, time_point deadline, const char* what) {
  if (fd < 0) {  // poll(2) would ignore it and wait out the timeout
    errno = EBADF;
    return -1;
  }
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr ? t->get(fd) : nullptr;
  if (r == nullptr) {
    pollfd p{fd, events, 0};
    int k = blocking_poll(&p, 1, deadline);
    if (k < 0) return -1;
    if (k == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if ((p.revents & POLLNVAL) != 0) {
      errno = EBADF;
      return -1;
    }
    return 0;
  }
  blocking_call c(*t, *r, fd, dir, what);
  c.set_deadline(deadline, ETIMEDOUT);
  // The epoll events that answer this wait as poll(2) would: urgent data
  // alone does not make a socket readable.
  const std::uint32_t answer = dir == fd_table::read_side ? EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR
                                                          : EPOLLOUT | EPOLLHUP | EPOLLERR;
  for (;;) {
    if (r->kind == fd_kind::file) return 0;  // regular files are always ready (poll says so too)
    bool& maybe = c.maybe_ready();
    if (maybe) {
      short got = zero_poll(fd, events);
      if ((got & POLLNVAL) != 0) {
        errno = EBADF;
        return -1;
      }
      if (got != 0) return 0;
      maybe = false;
    }
    std::uint32_t woke_by = 0;
    switch (c.wait(&woke_by)) {
      // An edge of what was asked for arrived after the fd was seen not
      // ready: ready, without a poll(2) to confirm it (a keep-alive server
      // waiting for each request would pay a system call a request). Like
      // poll's answer, it can be stale by the time the caller acts on it,
      // if another greenlet or thread read (or filled) the fd in between.
      case blocking_call::retry:
        if ((woke_by & answer) != 0) return 0;
        break;
      case blocking_call::stop: return -1;
      case blocking_call::block: return 0;  // no readiness to watch (EPERM): never waits
    }
  }
}

// ---- connect -----------------------------------------------------------------

// connect_result() is how a connect that went on in the background ended:
// 0, or -1 with its error (SO_ERROR) in errno.
int connect_result(int fd) noexcept {
  int err = 0;
  socklen_t el = sizeof err;
  if (sys::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -1;
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

// connect_blocking() is connect with a deadline on a thread that cannot
// park: O_NONBLOCK for the call, then poll(2).
int connect_blocking(int fd, const sockaddr* addr, socklen_t len, time_point deadline) noexcept {
  int fl = sys::fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK) != 0) return sys::connect(fd, addr, len);
  std::chrono::milliseconds backoff{1};
  for (;;) {
    int rc = static_cast<int>(with_nonblock(fd, [&] { return sys::connect(fd, addr, len); }));
    if (rc == 0) return 0;
    if (errno == EAGAIN) {  // a unix socket's listener has a full backlog: no readiness for that
      if (detail::clock::now() >= deadline) {
        errno = ETIMEDOUT;
        return -1;
      }
      time_point until = std::min(deadline, detail::clock::now() + backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds{50});
      timespec ts = timespec_until(until);
      sys::ppoll(nullptr, 0, &ts);
      continue;
    }
    if (errno != EINPROGRESS) return -1;
    break;
  }
  pollfd p{fd, POLLOUT, 0};
  int k = blocking_poll(&p, 1, deadline);
  if (k < 0) return -1;
  if (k == 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  return connect_result(fd);
}

// connect_until(): explicit is false when the deadline comes from
// SO_SNDTIMEO (or there is none): the kernel then reports EINPROGRESS.
int connect_until(int fd, const sockaddr* addr, socklen_t len, time_point deadline, bool explicit_deadline) {
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr ? t->get(fd) : nullptr;
  if (r == nullptr || r->kind != fd_kind::socket) {
    if (explicit_deadline && r == nullptr) return connect_blocking(fd, addr, len, deadline);
    return sys::connect(fd, addr, len);
  }
  if (t->nonblocking(*r, fd)) return sys::connect(fd, addr, len);
  blocking_call c(*t, *r, fd, fd_table::write_side, "connect");
  if (!explicit_deadline) deadline = t->deadline_for(*r, fd, fd_table::write_side);
  c.set_deadline(deadline, explicit_deadline ? ETIMEDOUT : EINPROGRESS);
  std::chrono::milliseconds backoff{1};
  for (;;) {
    int rc = static_cast<int>(with_nonblock(fd, [&] { return sys::connect(fd, addr, len); }));
    if (rc == 0) return 0;
    if (errno == EINPROGRESS) break;
    if (errno != EAGAIN) return -1;
    // A unix socket whose listener's backlog is full: the kernel offers no
    // readiness for "room in the backlog", so retry on a backing-off timer.
    if (detail::clock::now() >= deadline) {
      errno = explicit_deadline ? ETIMEDOUT : EAGAIN;
      return -1;
    }
    detail::sleep_until(std::min(deadline, detail::clock::now() + backoff));
    backoff = std::min(backoff * 2, std::chrono::milliseconds{50});
  }
  r->maybe_writable = false;
  for (;;) {
    switch (c.wait()) {
      case blocking_call::retry: break;
      case blocking_call::stop: return -1;
      case blocking_call::block: {
        pollfd p{fd, POLLOUT, 0};
        int k = blocking_poll(&p, 1, deadline);
        if (k < 0) return -1;
        if (k == 0) {
          errno = explicit_deadline ? ETIMEDOUT : EINPROGRESS;
          return -1;
        }
        break;
      }
    }
    // Writable, hung up or in error: the attempt is over. Else the event
    // was for something else (stale): wait on.
    if (zero_poll(fd, POLLOUT) != 0) break;
    r->maybe_writable = false;
  }
  return connect_result(fd);
}

}  // namespace

// ---- public calls ---------------------------------------------------------------

bool cooperative() noexcept { return fd_table::for_call() != nullptr; }

int wait_readable(int fd) { return wait_fd(fd, POLLIN, fd_table::read_side, detail::no_deadline, "wait_readable"); }
int wait_readable(int fd, clock::time_point deadline) {
  return wait_fd(fd, POLLIN, fd_table::read_side, deadline, "wait_readable");
}
int wait_writable(int fd) { return wait_fd(fd, POLLOUT, fd_table::write_side, detail::no_deadline, "wait_writable"); }
int wait_writable(int fd, clock::time_point deadline) {
  return wait_fd(fd, POLLOUT, fd_table::write_side, deadline, "wait_writable");
}

ssize_t read(int fd, void* buf, std::size_t count) {
  if (fd_table* t = fd_table::for_call()) {
    if (fd_record* r = t->get(fd)) {
      switch (r->kind) {
        case fd_kind::socket: return sock_recv(*t, *r, fd, buf, count, 0, nullptr, nullptr, "read");
        case fd_kind::pipe:
        case fd_kind::other: {
          iovec v{buf, count};
          return stream_readv(*t, *r, fd, &v, 1, "read");
        }
        default: break;
      }
    }
  }
  return sys::read(fd, buf, count);
}

ssize_t write(int fd, const void* buf, std::size_t count) {
  if (fd_table* t = fd_table::for_call()) {
    if (fd_record* r = t->get(fd)) {
      switch (r->kind) {
        case fd_kind::socket: return sock_send(*t, *r, fd, buf, count, 0, nullptr, 0, "write");
        case fd_kind::pipe:
        case fd_kind::other: {
          iovec v{const_cast<void*>(buf), count};
          return stream_writev(*t, *r, fd, &v, 1, "write");
        }
        default: break;
      }
    }
  }
  return sys::write(fd, buf, count);
}

// vectored() is readv/writev: a socket's through its msghdr call, a pipe's
// or other pollable fd's through the RWF_NOWAIT path, any other fd's (and
// iovcnt outside [0, IOV_MAX], for the kernel's EINVAL, which recvmsg/sendmsg
// would give as EMSGSIZE) the plain system call.
template <class Msg, class Stream, class Plain>
ssize_t vectored(int fd, const iovec* iov, int iovcnt, const char* what, Msg msg_call, Stream stream_call,
                 Plain plain_call) {
  if (fd_table* t = fd_table::for_call(); t != nullptr && iovcnt >= 0 && iovcnt <= IOV_MAX) {
    if (fd_record* r = t->get(fd)) {
      switch (r->kind) {
        case fd_kind::socket: {
          msghdr m{};
          m.msg_iov = const_cast<iovec*>(iov);
          m.msg_iovlen = static_cast<std::size_t>(iovcnt);
          return msg_call(*t, *r, fd, &m, 0, what);
        }
        case fd_kind::pipe:
        case fd_kind::other: return stream_call(*t, *r, fd, iov, iovcnt, what);
        default: break;
      }
    }
  }
  return plain_call(fd, iov, iovcnt);
}

ssize_t readv(int fd, const iovec* iov, int iovcnt) {
  return vectored(fd, iov, iovcnt, "readv", sock_recvmsg, stream_readv, sys::readv);
}

ssize_t writev(int fd, const iovec* iov, int iovcnt) {
  return vectored(fd, iov, iovcnt, "writev", sock_sendmsg, stream_writev, sys::writev);
}

ssize_t recv(int fd, void* buf, std::size_t len, int flags) { return io::recvfrom(fd, buf, len, flags, nullptr, nullptr); }

ssize_t send(int fd, const void* buf, std::size_t len, int flags) { return io::sendto(fd, buf, len, flags, nullptr, 0); }

ssize_t recvfrom(int fd, void* buf, std::size_t len, int flags, sockaddr* src, socklen_t* addrlen) {
  if (fd_table* t = fd_table::for_call())
    if (fd_record* r = t->get(fd); r != nullptr && r->kind == fd_kind::socket)
      return sock_recv(*t, *r, fd, buf, len, flags, src, addrlen, "recv");
  return sys::recvfrom(fd, buf, len, flags, src, addrlen);
}

ssize_t sendto(int fd, const void* buf, std::size_t len, int flags, const sockaddr* dest, socklen_t addrlen) {
  if (fd_table* t = fd_table::for_call())
    if (fd_record* r = t->get(fd); r != nullptr && r->kind == fd_kind::socket)
      return sock_send(*t, *r, fd, buf, len, flags, dest, addrlen, "send");
  return sys::sendto(fd, buf, len, flags, dest, addrlen);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  if (fd_table* t = fd_table::for_call(); t != nullptr && msg != nullptr)
    if (fd_record* r = t->get(fd); r != nullptr && r->kind == fd_kind::socket)
      return sock_recvmsg(*t, *r, fd, msg, flags, "recvmsg");
  return sys::recvmsg(fd, msg, flags);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (fd_table* t = fd_table::for_call(); t != nullptr && msg != nullptr)
    if (fd_record* r = t->get(fd); r != nullptr && r->kind == fd_kind::socket)
      return sock_sendmsg(*t, *r, fd, msg, flags, "sendmsg");
  return sys::sendmsg(fd, msg, flags);
}

int recvmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags, timespec* timeout) {
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr && msgvec != nullptr && vlen > 0 ? t->get(fd) : nullptr;
  if (r == nullptr || r->kind != fd_kind::socket || (flags & never_blocks) != 0)
    return sys::recvmmsg(fd, msgvec, vlen, flags, timeout);
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(*t, *r, fd, fd_table::read_side, "recvmmsg");
  time_point deadline = t->deadline_for(*r, fd, fd_table::read_side);
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000) {
      errno = EINVAL;
      return -1;
    }
    deadline = std::min(deadline, detail::deadline_after(std::chrono::seconds(timeout->tv_sec) + std::chrono::nanoseconds(timeout->tv_nsec)));
  }
  c.set_deadline(deadline, EAGAIN);
  // Blocking, the kernel waits for all vlen messages (only the first with
  // MSG_WAITFORONE); the timeout is checked after each one.
  unsigned done = 0;
  for (;;) {
    long got = until_ready(c, dontwait, [&](bool nowait) {
      return sys::recvmmsg(fd, msgvec + done, vlen - done, (flags & ~MSG_WAITFORONE) | (nowait ? MSG_DONTWAIT : 0), nullptr);
    });
    if (got < 0) return done > 0 ? static_cast<int>(done) : -1;
    done += static_cast<unsigned>(got);
    if (got == 0 || done >= vlen || dontwait || (flags & MSG_WAITFORONE) != 0 || c.nonblocking() ||
        detail::clock::now() >= deadline)
      return static_cast<int>(done);
  }
}

int sendmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags) {
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr && msgvec != nullptr && vlen > 0 ? t->get(fd) : nullptr;
  if (r == nullptr || r->kind != fd_kind::socket) return sys::sendmmsg(fd, msgvec, vlen, flags);
  const bool dontwait = (flags & MSG_DONTWAIT) != 0;
  blocking_call c(*t, *r, fd, fd_table::write_side, "sendmmsg");
  unsigned done = 0;
  for (;;) {
    long sent = until_ready(c, dontwait, [&](bool nowait) {
      return sys::sendmmsg(fd, msgvec + done, vlen - done, nowait ? flags | MSG_DONTWAIT : flags);
    });
    if (sent <= 0) return done > 0 ? static_cast<int>(done) : static_cast<int>(sent);
    done += static_cast<unsigned>(sent);
    if (dontwait || c.nonblocking()) return static_cast<int>(done);
    // A stream socket may have taken only part of the last message: a
    // blocking send finishes it.
    mmsghdr& last = msgvec[done - 1];
    std::size_t want = iov_total(last.msg_hdr.msg_iov, last.msg_hdr.msg_iovlen);
    if (last.msg_len < want) {
      iov_cursor rest(last.msg_hdr.msg_iov, last.msg_hdr.msg_iovlen);
      rest.advance(last.msg_len);
      msghdr more{};
      more.msg_iov = rest.data();
      more.msg_iovlen = static_cast<std::size_t>(rest.count());
      long k = sock_sendmsg(*t, *r, fd, &more, flags, "sendmmsg");
      if (k > 0) last.msg_len += static_cast<unsigned>(k);
      if (last.msg_len < want) return static_cast<int>(done);
    }
    if (done >= vlen) return static_cast<int>(done);
  }
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, std::size_t count) {
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr ? t->get(out_fd) : nullptr;
  if (r == nullptr || r->kind == fd_kind::file || t->nonblocking(*r, out_fd)) return sys::sendfile(out_fd, in_fd, offset, count);
  blocking_call c(*t, *r, out_fd, fd_table::write_side, "sendfile");
  std::size_t done = 0;
  for (;;) {
    long sent;
    if (r->kind == fd_kind::socket) {
      sent = until_ready(c, false, [&](bool nowait) {
        return nowait ? with_nonblock(out_fd, [&] { return sys::sendfile(out_fd, in_fd, offset, count - done); })
                      : sys::sendfile(out_fd, in_fd, offset, count - done);
      });
    } else {
      // Into a pipe, sendfile waits only while the pipe is full; once it
      // polls writable it moves what fits and returns.
      sent = ready_then(c, POLLOUT, [&] { return sys::sendfile(out_fd, in_fd, offset, count - done); });
    }
    if (sent < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    done += static_cast<std::size_t>(sent);
    if (sent == 0 || done >= count) return static_cast<ssize_t>(done);
  }
}

int accept(int fd, sockaddr* addr, socklen_t* addrlen) { return io::accept4(fd, addr, addrlen, 0); }

int accept4(int fd, sockaddr* addr, socklen_t* addrlen, int flags) {
  fd_table* t = fd_table::for_call();
  fd_record* r = t != nullptr ? t->get(fd) : nullptr;
  if (r == nullptr || r->kind != fd_kind::socket) return sys::accept4(fd, addr, addrlen, flags);
  int nfd;
  if (t->nonblocking(*r, fd)) {
    nfd = sys::accept4(fd, addr, addrlen, flags);
  } else {
    blocking_call c(*t, *r, fd, fd_table::read_side, "accept");
    nfd = static_cast<int>(until_ready(c, false, [&](bool nowait) {
      return nowait ? with_nonblock(fd, [&] { return sys::accept4(fd, addr, addrlen, flags); })
                    : sys::accept4(fd, addr, addrlen, flags);
    }));
  }
  if (nfd >= 0) {
    if (fd_record* n = t->adopt(nfd, fd_kind::socket)) {
      // Same protocol as the listener: learned once per listener, not per
      // connection.
      n->tcp = is_tcp(*r, fd) ? tri::yes : tri::no;
      n->stream = r->stream;
      // The kernel copies the listener's socket options, timeouts included.
      if (r->timeo_epoch == fd_table::timeo_epoch()) {
        n->rcvtimeo = r->rcvtimeo;
        n->sndtimeo = r->sndtimeo;
        n->timeo_epoch = r->timeo_epoch;
      }
    }
  }
  return nfd;
}

int connect(int fd, const sockaddr* addr, socklen_t addrlen) {
  return connect_until(fd, addr, addrlen, detail::no_deadline, false);
}

int connect(int fd, const sockaddr* addr, socklen_t addrlen, clock::time_point deadline) {
  return connect_until(fd, addr, addrlen, deadline, true);
}

int poll(pollfd* fds, nfds_t nfds, int timeout_ms) {
  return io::poll(fds, nfds, timeout_ms < 0 ? detail::no_deadline : detail::deadline_after(std::chrono::milliseconds(timeout_ms)));
}

int poll(pollfd* fds, nfds_t nfds, clock::time_point deadline) {
  fd_table* t = fd_table::for_call();
  if (t == nullptr) return blocking_poll(fds, nfds, deadline);
  int k = sys::ppoll(fds, nfds, &zero_timeout);
  if (k != 0) return k;
  // One waiter, woken through a node per fd and direction. Small polls keep
  // their nodes on the stack.
  constexpr nfds_t on_stack = 8;
  detail::fd_wait local[2 * on_stack];
  std::unique_ptr<detail::fd_wait[]> heap;
  detail::fd_wait* nodes = local;
  if (nfds > on_stack) {
    heap.reset(new detail::fd_wait[2 * nfds]);
    nodes = heap.get();
  }
  constexpr short read_events = POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND | POLLRDHUP;
  constexpr short write_events = POLLOUT | POLLWRNORM | POLLWRBAND;
  for (;;) {
    bool woke;
    {
      detail::waiter w;
      w.set_what("poll");
      struct unlink_all {
        detail::fd_wait* n;
        nfds_t count;
        ~unlink_all() {
          for (nfds_t i = 0; i < 2 * count; ++i)
            if (n[i].list != nullptr) n[i].list->remove(n[i]);
        }
      } cleanup{nodes, nfds};
      std::size_t watched = 0;
      for (nfds_t i = 0; i < nfds; ++i) {
        if (fds[i].fd < 0) continue;
        fd_record* r = t->get(fds[i].fd);
        // Not open, or a regular file: the zero-timeout poll reported all
        // there is to report about it.
        if (r == nullptr || r->kind == fd_kind::file) continue;
        // Hang-up and error wake readers, so a fd polled for nothing else
        // waits on that side.
        const bool rd = (fds[i].events & read_events) != 0 || (fds[i].events & write_events) == 0;
        const bool wr = (fds[i].events & write_events) != 0;
        if (t->watch(*r, fds[i].fd, (rd ? fd_table::read_side : 0u) | (wr ? fd_table::write_side : 0u)) != 0) {
          if (r->kind == fd_kind::file) continue;  // EPERM: no readiness, as above
          errno = ENOMEM;  // the kernel could not register it: waiting would miss it
          return -1;
        }
        detail::fd_wait& rn = nodes[2 * i];
        detail::fd_wait& wn = nodes[2 * i + 1];
        rn.w = wn.w = &w;
        if (rd) r->readers.push_back(rn);
        if (wr) r->writers.push_back(wn);
        ++watched;
      }
      if (watched > 0) {
        fd_table::parking p(*t);
        woke = w.wait(deadline);
      } else {
        woke = w.wait(deadline);
      }
    }
    k = sys::ppoll(fds, nfds, &zero_timeout);
    if (k != 0 || !woke) return k;
  }
}

// A new fd's O_NONBLOCK and timeouts are left unknown, so code that sets
// them with plain fcntl/setsockopt right after (no note_*) is still
// honoured, for the price of reading them once, at the fd's first wait.
int socket(int domain, int type, int protocol) {
  int s = sys::socket(domain, type, protocol);
  if (s >= 0)
    if (fd_table* t = fd_table::current_if_any())
      if (fd_record* r = t->adopt(s, fd_kind::socket)) {
        bool stream = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
        bool inet = domain == AF_INET || domain == AF_INET6;
        r->stream = stream ? tri::yes : tri::no;
        r->tcp = stream && inet && (protocol == 0 || protocol == IPPROTO_TCP) ? tri::yes : tri::no;
      }
  return s;
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
  int rc = sys::socketpair(domain, type, protocol, sv);
  if (rc == 0)
    if (fd_table* t = fd_table::current_if_any())
      for (int i = 0; i < 2; ++i) t->adopt(sv[i], fd_kind::socket);
  return rc;
}

int pipe(int fds[2]) { return io::pipe2(fds, 0); }

int pipe2(int fds[2], int flags) {
  int rc = sys::pipe2(fds, flags);
  if (rc == 0)
    if (fd_table* t = fd_table::current_if_any())
      for (int i = 0; i < 2; ++i) t->adopt(fds[i], fd_kind::pipe);
  return rc;
}

int dup(int oldfd) {
  int n = sys::dup(oldfd);
  if (n >= 0)
    if (fd_table* t = fd_table::current_if_any()) t->adopt(n, fd_kind::unknown);
  return n;
}

int dup2(int oldfd, int newfd) {
  if (oldfd == newfd) return sys::fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
  return io::dup3(oldfd, newfd, 0);
}

int dup3(int oldfd, int newfd, int flags) {
  // Only a dup3 that can succeed replaces newfd: check oldfd first, so a
  // failing call leaves newfd's waiters alone.
  if (oldfd == newfd || sys::fcntl(oldfd, F_GETFD) < 0) return sys::dup3(oldfd, newfd, flags);
  notify_close(newfd);
  return sys::dup3(oldfd, newfd, flags);
}

int close(int fd) {
  notify_close(fd);
  return sys::close(fd);
}

void notify_close(int fd) noexcept { fd_table::closing(fd, true); }

void note_nonblocking(int fd, bool on) noexcept {
  std::uint32_t epoch = fd_table::bump_flags_epoch();
  if (fd_table* t = fd_table::current_if_any())
    if (fd_record* r = t->existing(fd); r != nullptr && r->kind != fd_kind::unknown && r->gen == fd_table::generation(fd)) {
      r->nonblocking = on;
      r->flags_epoch = epoch;
    }
}

void note_timeout(int fd, int optname, const timeval& tv) noexcept {
  if (optname != SO_RCVTIMEO && optname != SO_SNDTIMEO) return;
  std::uint32_t epoch = fd_table::bump_timeo_epoch();
  fd_table* t = fd_table::current_if_any();
  fd_record* r = t != nullptr ? t->existing(fd) : nullptr;
  // Only a record that knew both timeouts can take one new value; any
  // other reads both from the kernel when it next needs them.
  if (r == nullptr || r->kind != fd_kind::socket || r->gen != fd_table::generation(fd) || r->timeo_epoch + 1 != epoch)
    return;
  std::chrono::nanoseconds v{0};
  if (tv.tv_sec > 0 || (tv.tv_sec == 0 && tv.tv_usec > 0))
    v = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  (optname == SO_RCVTIMEO ? r->rcvtimeo : r->sndtimeo) = v;
  r->timeo_epoch = epoch;
}

}  // namespace moss::io

// hook_poll.cpp: poll, ppoll, select, pselect, epoll_wait, epoll_pwait.
//
// In a greenlet they park on the hub (moss::io::poll) instead of blocking
// the thread. Calls that pass a signal mask (ppoll, pselect, epoll_pwait with
// a non-null mask) promise atomic mask switching, which a hub cannot give:
// they go to the real function. select() keeps Linux's behaviour of writing
// the time left back into its timeout.
//
// A call that finds something ready (or has a zero timeout) returns without
// waiting, and then first lets the other green threads run once: a thread
// that polls in a loop for what another thread must do (Python's
// multiprocessing.Pool polls a pipe that its result thread drains) would
// otherwise never let that thread run, where the kernel would preempt it.
#include "hooks.hpp"
#include "real.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/io.hpp>

#include <cerrno>
#include <chrono>
#include <exception>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

namespace moss::patch {
namespace {

MOSS_REAL(poll, int (*)(pollfd*, nfds_t, int))
MOSS_REAL(ppoll, int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*))
MOSS_REAL(select, int (*)(int, fd_set*, fd_set*, fd_set*, timeval*))
MOSS_REAL(pselect, int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*))
MOSS_REAL(epoll_wait, int (*)(int, epoll_event*, int, int))
MOSS_REAL(epoll_pwait, int (*)(int, epoll_event*, int, int, const sigset_t*))

using moss::io::clock;
using namespace std::chrono;

// fair() is a call's result, after a turn for the others when it returned
// at once (see the file comment). A call that waited already gave them
// theirs; one more turn costs a round trip through the hub.
int fair(int result) noexcept {
  if (result >= 0) interpose::let_others_run();
  return result;
}

clock::time_point deadline_ms(int ms) noexcept {
  return ms < 0 ? clock::time_point::max() : detail::deadline_after(milliseconds(ms));
}

bool valid(const timespec& t) noexcept { return t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000; }

clock::time_point deadline_ts(const timespec* t) noexcept {
  if (t == nullptr) return clock::time_point::max();
  if (t->tv_sec >= 9'000'000'000) return clock::time_point::max();
  return detail::deadline_after(seconds(t->tv_sec) + nanoseconds(t->tv_nsec));
}

// select() on top of poll(): fd_sets in, pollfds through moss, fd_sets out.
int select_via_poll(int nfds, fd_set* r, fd_set* w, fd_set* e, clock::time_point deadline) {
  std::vector<pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (r != nullptr && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w != nullptr && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (e != nullptr && FD_ISSET(fd, e)) ev |= POLLPRI;
    if (ev != 0) fds.push_back(pollfd{fd, ev, 0});
  }
  int n = moss::io::poll(fds.data(), fds.size(), deadline);
  if (n < 0) return -1;
  for (const pollfd& p : fds) {
    if ((p.revents & POLLNVAL) != 0) {
      errno = EBADF;  // select reports a closed fd as an error, not an event
      return -1;
    }
  }
  if (r != nullptr) FD_ZERO(r);
  if (w != nullptr) FD_ZERO(w);
  if (e != nullptr) FD_ZERO(e);
  int count = 0;
  for (const pollfd& p : fds) {
    if (r != nullptr && (p.events & POLLIN) != 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      FD_SET(p.fd, r);
      ++count;
    }
    if (w != nullptr && (p.events & POLLOUT) != 0 && (p.revents & (POLLOUT | POLLERR)) != 0) {
      FD_SET(p.fd, w);
      ++count;
    }
    if (e != nullptr && (p.events & POLLPRI) != 0 && (p.revents & POLLPRI) != 0) {
      FD_SET(p.fd, e);
      ++count;
    }
  }
  return count;
}

void time_left(timeval* tv, clock::time_point deadline) noexcept {
  if (tv == nullptr || deadline == clock::time_point::max()) return;
  auto left = std::max(clock::duration::zero(), deadline - clock::now());
  auto us = duration_cast<microseconds>(left).count();
  tv->tv_sec = static_cast<time_t>(us / 1'000'000);
  tv->tv_usec = static_cast<suseconds_t>(us % 1'000'000);
}

// epoll_wait: wait for the epoll fd itself to become readable on our hub,
// then collect without blocking.
int epoll_via_hub(int epfd, epoll_event* events, int max, int timeout_ms) {
  if (max <= 0) {
    errno = EINVAL;
    return -1;
  }
  clock::time_point deadline = deadline_ms(timeout_ms);
  for (;;) {
    int n = real_epoll_wait()(epfd, events, max, 0);
    if (n != 0 || timeout_ms == 0) return n;
    if (moss::io::wait_readable(epfd, deadline) != 0) return errno == ETIMEDOUT ? 0 : -1;
  }
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" {

[[noreturn]] void __chk_fail(void);

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
  if (!cooperative(family_poll)) return real_poll()(fds, n, timeout_ms);
  if (timeout_ms == 0) return fair(real_poll()(fds, n, 0));
  return fair(guarded([&] { return moss::io::poll(fds, n, timeout_ms); }));
}

int ppoll(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask) {
  if (!cooperative(family_poll) || mask != nullptr) return real_ppoll()(fds, n, t, mask);
  if (t != nullptr && !valid(*t)) {
    errno = EINVAL;
    return -1;
  }
  return fair(guarded([&] { return moss::io::poll(fds, n, deadline_ts(t)); }));
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* tv) {
  if (!cooperative(family_poll)) return real_select()(nfds, r, w, e, tv);
  if (nfds < 0 || nfds > FD_SETSIZE || (tv != nullptr && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1'000'000))) {
    errno = EINVAL;
    return -1;
  }
  clock::time_point deadline = clock::time_point::max();
  if (tv != nullptr) deadline = moss::detail::deadline_after(seconds(tv->tv_sec) + microseconds(tv->tv_usec));
  int r_ = guarded([&] { return select_via_poll(nfds, r, w, e, deadline); });
  time_left(tv, deadline);
  return fair(r_);
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* t, const sigset_t* mask) {
  if (!cooperative(family_poll) || mask != nullptr) return real_pselect()(nfds, r, w, e, t, mask);
  if (nfds < 0 || nfds > FD_SETSIZE || (t != nullptr && !valid(*t))) {
    errno = EINVAL;
    return -1;
  }
  return fair(guarded([&] { return select_via_poll(nfds, r, w, e, deadline_ts(t)); }));
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout_ms) {
  if (!cooperative(family_poll)) return real_epoll_wait()(epfd, events, max, timeout_ms);
  return fair(guarded([&] { return epoll_via_hub(epfd, events, max, timeout_ms); }));
}

int epoll_pwait(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* mask) {
  if (!cooperative(family_poll) || mask != nullptr) return real_epoll_pwait()(epfd, events, max, timeout_ms, mask);
  return fair(guarded([&] { return epoll_via_hub(epfd, events, max, timeout_ms); }));
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout_ms, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return poll(fds, n, timeout_ms);
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return ppoll(fds, n, t, mask);
}

}  // extern "C"

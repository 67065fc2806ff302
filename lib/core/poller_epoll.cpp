// poller_epoll.cpp: the poller on Linux epoll, plus an eventfd for wake().
#include "core/poller.hpp"

#include "core/sys.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>

namespace moss::detail {
namespace {
// The eventfd's tag: an address no caller can own.
char wake_tag;
// At most one hub batch (hub_core::batch) of events a call. The hub polls
// after every batch of resumes, so its ready queue stays about a batch
// long: a greenlet woken here runs soon after, while the lines its wake
// touched (its fd record, the waiter on its stack, its control block) are
// still cached. With 256 at 10,000 busy connections the queue grew to
// thousands and every resume missed those lines a second time (cachegrind:
// tests/bench/cg_per_request.py). What is not taken stays in epoll's ready
// list for the next call.
constexpr int max_events = 64;

// open_fds() makes the epoll instance and the wake eventfd: 0, or an errno.
int open_fds(int& epfd, int& wakefd) noexcept {
  epfd = sys::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return errno;
  wakefd = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakefd < 0) {
    int e = errno;
    sys::close(epfd);
    epfd = -1;
    return e;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_tag;
  sys::epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev);
  return 0;
}
}  // namespace

poller::poller() {
  if (int e = open_fds(epfd_, wakefd_); e != 0)
    throw std::system_error(e, std::generic_category(), epfd_ < 0 ? "moss: epoll_create1" : "moss: eventfd");
}

poller::~poller() {
  sys::close(wakefd_);
  sys::close(epfd_);
}

void poller::abandon() noexcept {
  if (wakefd_ >= 0) sys::close(wakefd_);
  if (epfd_ >= 0) sys::close(epfd_);
  wakefd_ = epfd_ = -1;
  watched_ = 0;
}

void poller::after_fork() noexcept {
  abandon();  // first: the new fds may take the same numbers
  if (int e = open_fds(epfd_, wakefd_); e != 0) {
    // The child closed two fds just before, so this is ENOMEM: nothing
    // could wait in this process.
    char msg[128];
    int n = std::snprintf(msg, sizeof msg, "moss: cannot make the forked child's epoll instance: %s\n", std::strerror(e));
    sys::write_stderr(msg, static_cast<std::size_t>(n));
    std::abort();
  }
}

namespace {
epoll_event event_for(void* tag, unsigned what) noexcept {
  epoll_event ev{};
  // EPOLLPRI: urgent data on a TCP socket (see fd_table.hpp on short reads).
  // EPOLLRDHUP with either: a hang-up wakes readers and writers alike.
  ev.events = EPOLLRDHUP | EPOLLET;
  if ((what & poller::input) != 0) ev.events |= EPOLLIN | EPOLLPRI;
  if ((what & poller::output) != 0) ev.events |= EPOLLOUT;
  ev.data.ptr = tag;
  return ev;
}
}  // namespace

int poller::add(int fd, void* tag, unsigned what) noexcept {
  epoll_event ev = event_for(tag, what);
  int r = sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  if (r == 0) ++watched_;
  return r;
}

int poller::modify(int fd, void* tag, unsigned what) noexcept {
  epoll_event ev = event_for(tag, what);
  return sys::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

int poller::remove(int fd) noexcept {
  int r = sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  if (r == 0) --watched_;
  return r;
}

int poller::wait(std::chrono::nanoseconds timeout, callback cb, void* ctx, warm_callback warm) noexcept {
  epoll_event events[max_events];
  int n;
  if (timeout.count() < 0) {
    n = sys::epoll_wait(epfd_, events, max_events, -1);
  } else if (timeout.count() == 0) {
    n = sys::epoll_wait(epfd_, events, max_events, 0);
  } else {
    n = -1;
    if (have_pwait2_) {
      timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000), static_cast<long>(timeout.count() % 1'000'000'000)};
      n = sys::epoll_pwait2(epfd_, events, max_events, &ts);
      if (n < 0 && errno == ENOSYS) have_pwait2_ = false;
    }
    if (!have_pwait2_) {
      // Round up: waking early would spin until the deadline.
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
      n = sys::epoll_wait(epfd_, events, max_events, ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms));
    }
  }
  if (n < 0) return errno == EINTR ? 0 : -1;
  for (int i = 0; i < n; ++i) __builtin_prefetch(events[i].data.ptr);
  if (warm != nullptr)
    for (int i = 0; i < n; ++i)
      if (events[i].data.ptr != &wake_tag) warm(ctx, events[i].data.ptr);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == &wake_tag) {
      std::uint64_t drain;
      sys::read(wakefd_, &drain, sizeof drain);
      continue;
    }
    cb(ctx, events[i].data.ptr, events[i].events);
  }
  return n;
}

void poller::wake() noexcept {
  std::uint64_t one = 1;
  sys::write(wakefd_, &one, sizeof one);
}

}  // namespace moss::detail

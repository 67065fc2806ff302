// poller_epoll.cpp: the poller on Linux epoll, plus an eventfd for wake().
#include "poller.hpp"

#include "sys.hpp"

#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>

namespace moss::detail {
namespace {
// The eventfd's tag: an address no caller can own.
char wake_tag;
constexpr int max_events = 256;
}  // namespace

poller::poller() {
  epfd_ = sys::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "moss: epoll_create1");
  wakefd_ = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakefd_ < 0) {
    int e = errno;
    sys::close(epfd_);
    throw std::system_error(e, std::generic_category(), "moss: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_tag;
  sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
}

poller::~poller() {
  sys::close(wakefd_);
  sys::close(epfd_);
}

int poller::add(int fd, void* tag) noexcept {
  epoll_event ev{};
  // EPOLLPRI: urgent data on a TCP socket (see fd_table.hpp on short reads).
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  ev.data.ptr = tag;
  int r = sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  if (r == 0) ++watched_;
  return r;
}

int poller::remove(int fd) noexcept {
  int r = sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  if (r == 0) --watched_;
  return r;
}

int poller::wait(std::chrono::nanoseconds timeout, callback cb, void* ctx) noexcept {
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

// poller.hpp: the hub's readiness poller, a four-function contract:
//
//   add(fd, tag, what)  start watching fd, edge-triggered, for hang-up and
//                       errors and what is asked: input (with urgent input),
//                       output, or both; tag comes back with its events.
//                       modify(fd, tag, what) changes what is watched.
//                       Both report the readiness fd has at that moment as
//                       an event, so an edge that came before is not lost.
//   remove(fd)          stop watching fd (before it is closed).
//   wait(timeout, cb)   wait up to timeout (negative: forever) and call
//                       cb(ctx, tag, events) for each ready fd; first, if
//                       given, warm(ctx, tag) for each (see wait()).
//   wake()              make a wait() in progress (or the next one) return
//                       now; the only function safe from any thread.
//
// One implementation per platform, chosen by the build: poller_epoll.cpp.
#pragma once

#include <chrono>
#include <cstdint>

namespace moss::detail {

class poller {
 public:
  using callback = void (*)(void* ctx, void* tag, std::uint32_t events);
  using warm_callback = void (*)(void* ctx, void* tag);
  // What to watch besides hang-up and errors. Output only when someone
  // waits to write: a socket that is only read would otherwise wake the
  // poller each time its send buffer drains (a UDP socket, for every
  // datagram sent).
  enum interest : unsigned { input = 1, output = 2 };

  poller();
  ~poller();
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  int add(int fd, void* tag, unsigned what = input | output) noexcept;
  int modify(int fd, void* tag, unsigned what) noexcept;
  int remove(int fd) noexcept;
  // wait() hands over a batch of events in three passes: it asks the cache
  // for every tag's first line, calls warm (when given) on every tag, then
  // cb on every event. With thousands of fds each handler's data is cold;
  // handled one after the other, each chain of misses (the tag, what it
  // points to, what that points to) would be waited for in turn, whereas
  // the passes let the CPU fetch many chains at once.
  int wait(std::chrono::nanoseconds timeout, callback cb, void* ctx, warm_callback warm = nullptr) noexcept;
  void wake() noexcept;

  // In a forked child the epoll instance and the eventfd are the parent's
  // (the same open files): a registration made or removed through them
  // would change the parent's. after_fork() closes the child's copies, never
  // calling epoll_ctl on them, and opens new ones with nothing watched.
  // abandon() only closes the copies (the poller of a hub whose thread does
  // not exist in the child). Both are for the child only.
  void after_fork() noexcept;
  void abandon() noexcept;

  // watched() counts fds added and not removed (the wake fd excluded).
  int watched() const noexcept { return watched_; }

  // The poller's own fds, for leak accounting and diagnostics.
  int epoll_fd() const noexcept { return epfd_; }
  int wake_fd() const noexcept { return wakefd_; }

 private:
  int epfd_ = -1;
  int wakefd_ = -1;
  bool have_pwait2_ = true;
  int watched_ = 0;
};

}  // namespace moss::detail

// hub.hpp: the per-thread event loop that runs spawned tasks.
//
// Each OS thread gets one hub, created on first use: a ready queue, a timer
// heap on the steady clock and an epoll poller, running on its own greenlet.
// A greenlet that waits switches to the hub (or straight to the next ready
// greenlet); the hub polls and resumes whoever became ready. The hub itself
// never blocks on behalf of a greenlet.
#pragma once

#include <cstddef>

namespace moss {

namespace detail {
class hub_core;
}

class hub {
 public:
  // current() is this thread's hub, created on first use. Throws moss::error
  // while the thread is exiting (its hub is gone).
  static hub& current();

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // task_count() is the number of spawned tasks that have not finished.
  std::size_t task_count() const noexcept;

  detail::hub_core& core() noexcept { return core_; }

 private:
  friend class detail::hub_core;
  explicit hub(detail::hub_core& core) noexcept : core_(core) {}
  detail::hub_core& core_;
};

}  // namespace moss

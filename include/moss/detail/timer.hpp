// detail/timer.hpp: a node in the hub's timer heap. Embedded in whatever owns
// it (a waiter, a task waiting to start), so arming a timer never allocates.
#pragma once

#include <moss/detail/export.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace moss::detail {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
inline constexpr time_point no_deadline = time_point::max();

// deadline_after() turns a relative timeout into a deadline, rounding up and
// saturating at no_deadline (a timeout of centuries must not overflow).
template <class Rep, class Period>
time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  auto now = clock::now();
  if (d <= d.zero()) return now;
  if (std::chrono::duration<double>(d).count() >= std::chrono::duration<double>(no_deadline - now).count() * 0.99)
    return no_deadline;
  return now + std::chrono::ceil<std::chrono::nanoseconds>(d);
}

class MOSS_API timer {
 public:
  static constexpr std::size_t not_armed = static_cast<std::size_t>(-1);
  // fire() runs on the hub greenlet when the deadline passes; it must not block.
  virtual void fire() noexcept = 0;
  bool armed() const noexcept { return heap_index_ != not_armed; }

  time_point deadline_{};
  std::uint64_t seq_ = 0;
  std::size_t heap_index_ = not_armed;

 protected:
  ~timer() = default;
};

}  // namespace moss::detail

// timer_queue.hpp: the hub's timers, a 4-ary min-heap on (deadline, seq)
// with each node's index stored in the node, so cancelling is O(log n).
// Equal deadlines fire in the order they were armed.
//
// The heap holds {deadline, seq, timer*} entries, not bare pointers: timers
// live in their owners (a waiter on a parked greenlet's stack, mostly), and
// comparing through pointers would touch one cold stack per comparison when
// thousands are armed. Only the timers an operation moves are written (their
// index). Four children per node halve the depth of a binary heap, so
// fewer timers move, and the four are compared within one or two cache lines.
#pragma once

#include <moss/detail/timer.hpp>

#include <vector>

namespace moss::detail {

class timer_queue {
 public:
  void add(timer& t, time_point deadline);
  void remove(timer& t) noexcept;
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  time_point next_deadline() const noexcept { return heap_.empty() ? no_deadline : heap_.front().deadline; }
  // fire_expired() fires, in deadline order, every timer due at `now`.
  // Returns how many fired.
  std::size_t fire_expired(time_point now) noexcept;

 private:
  static constexpr std::size_t arity = 4;
  struct entry {
    time_point deadline;
    std::uint64_t seq;
    timer* t;
  };
  static bool before(const entry& a, const entry& b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, const entry& e) noexcept {
    heap_[i] = e;
    e.t->heap_index_ = i;
  }

  std::vector<entry> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace moss::detail

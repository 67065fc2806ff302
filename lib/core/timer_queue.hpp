// timer_queue.hpp: the hub's timers, a binary min-heap on (deadline, seq)
// with each node's index stored in the node, so cancelling is O(log n).
// Equal deadlines fire in the order they were armed.
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
  time_point next_deadline() const noexcept { return heap_.empty() ? no_deadline : heap_.front()->deadline_; }
  // fire_expired() fires, in deadline order, every timer due at `now`.
  // Returns how many fired.
  std::size_t fire_expired(time_point now) noexcept;

 private:
  static bool before(const timer* a, const timer* b) noexcept {
    return a->deadline_ < b->deadline_ || (a->deadline_ == b->deadline_ && a->seq_ < b->seq_);
  }
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, timer* t) noexcept {
    heap_[i] = t;
    t->heap_index_ = i;
  }

  std::vector<timer*> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace moss::detail

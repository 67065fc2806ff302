// timer_queue.cpp: heap maintenance.
#include "core/timer_queue.hpp"

namespace moss::detail {

void timer_queue::add(timer& t, time_point deadline) {
  if (t.armed()) remove(t);
  t.deadline_ = deadline;  // owners read it (armed and due when?)
  t.seq_ = seq_;
  heap_.push_back(entry{deadline, seq_++, &t});
  t.heap_index_ = heap_.size() - 1;
  sift_up(t.heap_index_);
}

void timer_queue::remove(timer& t) noexcept {
  if (!t.armed()) return;
  std::size_t i = t.heap_index_;
  entry last = heap_.back();
  heap_.pop_back();
  t.heap_index_ = timer::not_armed;
  if (last.t == &t) return;
  place(i, last);
  sift_up(i);
  sift_down(last.t->heap_index_);
}

std::size_t timer_queue::fire_expired(time_point now) noexcept {
  std::size_t n = 0;
  while (!heap_.empty() && heap_.front().deadline <= now) {
    timer* t = heap_.front().t;
    remove(*t);
    t->fire();
    ++n;
  }
  return n;
}

void timer_queue::sift_up(std::size_t i) noexcept {
  entry e = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / arity;
    if (!before(e, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void timer_queue::sift_down(std::size_t i) noexcept {
  entry e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t first = arity * i + 1;
    if (first >= n) break;
    std::size_t end = first + arity < n ? first + arity : n;
    std::size_t best = first;
    for (std::size_t c = first + 1; c < end; ++c)
      if (before(heap_[c], heap_[best])) best = c;
    if (!before(heap_[best], e)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, e);
}

}  // namespace moss::detail

// timer_queue.cpp: heap maintenance.
#include "core/timer_queue.hpp"

namespace moss::detail {

void timer_queue::add(timer& t, time_point deadline) {
  if (t.armed()) remove(t);
  t.deadline_ = deadline;
  t.seq_ = seq_++;
  heap_.push_back(&t);
  t.heap_index_ = heap_.size() - 1;
  sift_up(t.heap_index_);
}

void timer_queue::remove(timer& t) noexcept {
  if (!t.armed()) return;
  std::size_t i = t.heap_index_;
  timer* last = heap_.back();
  heap_.pop_back();
  t.heap_index_ = timer::not_armed;
  if (last == &t) return;
  place(i, last);
  sift_up(i);
  sift_down(last->heap_index_);
}

std::size_t timer_queue::fire_expired(time_point now) noexcept {
  std::size_t n = 0;
  while (!heap_.empty() && heap_.front()->deadline_ <= now) {
    timer* t = heap_.front();
    remove(*t);
    t->fire();
    ++n;
  }
  return n;
}

void timer_queue::sift_up(std::size_t i) noexcept {
  timer* t = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!before(t, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void timer_queue::sift_down(std::size_t i) noexcept {
  timer* t = heap_[i];
  std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], t)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

}  // namespace moss::detail

// detail/handoff.hpp: what the synchronization primitives share — waiting
// for something another greenlet hands over directly (a permit, a lock, a
// value), so a newcomer cannot barge ahead of the waiters (FIFO).
//
// The giver wakes the first waiter and hands it the thing at once. The
// receiver may be killed, or hit by a moss::timeout, after that and before
// it runs; then the thing must go back (to the next waiter) instead of being
// lost with the receiver. await_handoff() does that.
#pragma once

#include <moss/detail/waiter.hpp>

#include <exception>
#include <utility>

namespace moss::detail {

// await_handoff() parks on w (already in a waiter_list) until it is woken
// or the deadline passes. Returns true if it was woken, i.e. handed
// something; false on timeout. If the greenlet has an exception to raise
// (killed, a moss::timeout fired) once it was handed something, give_back()
// returns the thing first and the exception is raised now rather than at
// the greenlet's next wait.
template <class GiveBack>
bool await_handoff(waiter& w, time_point deadline, GiveBack&& give_back) {
  try {
    if (!w.wait(deadline)) return false;
  } catch (...) {
    if (w.woken()) give_back();
    throw;
  }
  greenlet_impl* g = w.greenlet();
  if (g->pending_) {
    give_back();
    std::rethrow_exception(std::exchange(g->pending_, nullptr));
  }
  return true;
}

// wake_front() wakes the first waiter of l and returns it (null if l is
// empty). Every listed waiter can be woken: timing out, being interrupted
// and being woken all unlink a waiter first.
template <class Node = waiter>
Node* wake_front(waiter_list& l) noexcept {
  waiter* w = l.front();
  if (w == nullptr) return nullptr;
  w->wake();
  return static_cast<Node*>(w);
}

}  // namespace moss::detail

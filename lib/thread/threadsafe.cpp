// threadsafe.cpp: handing work to a hub from other threads — the hub's
// inbox (declared in lib/core/hub.hpp), hub::call_threadsafe's task nodes and
// spawn_threadsafe.
//
// Invariants: an inbox is never freed (references to a hub outlive its
// thread); a node is either dispatched on the hub's thread exactly once or
// deleted without running; the eventfd is written only while the hub may be
// blocked in the poller, only by the first producer to see that, and never
// after close() has returned.
#include <moss/threadsafe.hpp>

#include "core/hub.hpp"

#include <moss/error.hpp>
#include <moss/task.hpp>

#include <cstdio>
#include <string>
#include <thread>

namespace moss::detail {

namespace {
// Every inbox ever made; keeps them reachable for leak checkers. Constant
// initialised and trivially destructible, so usable during static teardown.
constinit std::atomic<inbox*> all_inboxes{nullptr};
}  // namespace

inbox* first_inbox() noexcept { return all_inboxes.load(std::memory_order_acquire); }

inbox::inbox(hub_core& h) : waker_(h.events), facade_(h, *this) {
  next_ = all_inboxes.load(std::memory_order_relaxed);
  while (!all_inboxes.compare_exchange_weak(next_, this, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

void inbox::post(std::unique_ptr<posted> n, const char* what) {
  posted* p = n.get();
  posted* old = head_.load(std::memory_order_relaxed);
  do {
    if (old == closed_tag())
      throw moss::error(std::string("moss: ") + what + " onto a stopped hub (its thread has exited)");
    p->next_ = old;
  } while (!head_.compare_exchange_weak(old, p, std::memory_order_seq_cst, std::memory_order_relaxed));
  n.release();
  // Pushing, then looking for a sleeper (seq_cst both) pairs with
  // sleep_begin(); exchange() lets only one producer write per sleep.
  if (!sleeping_.load(std::memory_order_seq_cst) || !sleeping_.exchange(false, std::memory_order_relaxed)) return;
  // Count ourselves before touching the poller, then make sure close() has
  // not begun: it either sees us and waits, or we see it and skip the write
  // (a closing hub needs no wake-up).
  waking_.fetch_add(1, std::memory_order_seq_cst);
  if (head_.load(std::memory_order_seq_cst) != closed_tag()) waker_.wake();
  waking_.fetch_sub(1, std::memory_order_release);
}

bool inbox::closed() const noexcept { return head_.load(std::memory_order_acquire) == closed_tag(); }

bool inbox::sleep_begin() noexcept {
  sleeping_.store(true, std::memory_order_seq_cst);
  posted* h = head_.load(std::memory_order_seq_cst);
  if (h == nullptr || h == closed_tag()) return true;
  sleeping_.store(false, std::memory_order_relaxed);
  return false;
}

namespace {
// reversed() turns the newest-first stack into arrival order.
posted* reversed(posted* list) noexcept {
  posted* out = nullptr;
  while (list != nullptr) {
    posted* n = list;
    list = n->next_;
    n->next_ = out;
    out = n;
  }
  return out;
}
}  // namespace

void inbox::take() noexcept {
  posted* list = head_.load(std::memory_order_acquire);
  do {
    if (list == nullptr || list == closed_tag()) return;
  } while (!head_.compare_exchange_weak(list, nullptr, std::memory_order_acquire, std::memory_order_relaxed));
  for (posted* n = reversed(list); n != nullptr;) {
    posted* next = n->next_;
    n->dispatch();
    n = next;
  }
}

void inbox::close() noexcept {
  posted* list = head_.exchange(closed_tag(), std::memory_order_seq_cst);
  if (list == closed_tag()) return;
  while (waking_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  for (posted* n = reversed(list); n != nullptr;) {
    posted* next = n->next_;
    delete n;
    n = next;
  }
}

void inbox::after_fork(bool mine) noexcept {
  // Only the forking thread exists: no producer is inside post(), whatever
  // the counters say. The nodes are dropped without running or deleting
  // them (a node's destructor may touch its sender's state).
  waking_.store(0, std::memory_order_relaxed);
  sleeping_.store(false, std::memory_order_relaxed);
  posted* h = head_.load(std::memory_order_relaxed);
  if (mine) {
    if (h != closed_tag()) head_.store(nullptr, std::memory_order_relaxed);
    return;
  }
  if (h == closed_tag()) return;  // that hub is gone: its poller with it
  head_.store(closed_tag(), std::memory_order_relaxed);
  waker_.abandon();
}

void inboxes_at_fork(fork_phase p) noexcept {
  if (p != fork_phase::child) return;
  hub_core* here = hub_core::current_if_any();
  inbox* mine = here != nullptr ? &here->box() : nullptr;
  for (inbox* b = all_inboxes.load(std::memory_order_acquire); b != nullptr; b = b->next()) b->after_fork(b == mine);
}

bool post_to(moss::hub& h, std::unique_ptr<posted> n, const char* what) noexcept {
  try {
    hub_access::post(h, std::move(n), what);
    return true;
  } catch (...) {
    return false;  // stopped; the inbox deleted n
  }
}

void posted_call::dispatch() noexcept {
  std::unique_ptr<posted_call> self(this);
  try {
    moss::spawn([n = std::move(self)] { n->call(); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss: could not start a task for call_threadsafe: %s\n", e.what());
  } catch (...) {
    std::fputs("moss: could not start a task for call_threadsafe\n", stderr);
  }
}

}  // namespace moss::detail

namespace moss {

void hub::post(std::unique_ptr<detail::posted> n, const char* what) { inbox_.post(std::move(n), what); }

bool hub::stopped() const noexcept { return inbox_.closed(); }

}  // namespace moss

// threadsafe.cpp: handing work to a hub from other threads — the hub's
// inbox (declared in lib/hub.hpp), hub::call_threadsafe's task nodes and
// spawn_threadsafe.
//
// Invariants: an inbox is never freed (references to a hub outlive its
// thread); a node is either dispatched on the hub's thread exactly once or
// deleted without running; the eventfd is written only while the hub may be
// blocked in the poller, and only by the first producer to see that.
#include <moss/threadsafe.hpp>

#include "hub.hpp"

#include <moss/error.hpp>
#include <moss/task.hpp>

#include <cstdio>
#include <string>

namespace moss::detail {

namespace {
// Every inbox ever made; keeps them reachable for leak checkers. Constant
// initialised and trivially destructible, so usable during static teardown.
constinit std::atomic<inbox*> all_inboxes{nullptr};
}  // namespace

inbox::inbox(hub_core& h) : waker_(h.events), facade_(h, *this) {
  next_ = all_inboxes.load(std::memory_order_relaxed);
  while (!all_inboxes.compare_exchange_weak(next_, this, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

void inbox::post(std::unique_ptr<posted> n, const char* what) {
  std::lock_guard lock(m_);
  if (closed_) throw moss::error(std::string("moss: ") + what + " onto a stopped hub (its thread has exited)");
  posted* p = n.release();
  p->next_ = nullptr;
  if (tail_ != nullptr) tail_->next_ = p;
  else head_ = p;
  tail_ = p;
  // Marking work, then looking for a sleeper (seq_cst both) pairs with
  // sleep_begin(). The write happens under the lock, so close() cannot
  // free the poller under it; exchange() lets only one producer write.
  nonempty_.store(true, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst) && sleeping_.exchange(false, std::memory_order_relaxed)) waker_.wake();
}

bool inbox::closed() const noexcept {
  std::lock_guard lock(m_);
  return closed_;
}

bool inbox::sleep_begin() noexcept {
  sleeping_.store(true, std::memory_order_seq_cst);
  if (!nonempty_.load(std::memory_order_seq_cst)) return true;
  sleeping_.store(false, std::memory_order_relaxed);
  return false;
}

void inbox::take() noexcept {
  posted* list;
  {
    std::lock_guard lock(m_);
    list = head_;
    head_ = tail_ = nullptr;
    nonempty_.store(false, std::memory_order_relaxed);
  }
  while (list != nullptr) {
    posted* n = list;
    list = n->next_;
    n->dispatch();
  }
}

void inbox::close() noexcept {
  posted* list;
  {
    std::lock_guard lock(m_);
    closed_ = true;
    list = head_;
    head_ = tail_ = nullptr;
    nonempty_.store(false, std::memory_order_relaxed);
  }
  while (list != nullptr) {
    posted* n = list;
    list = n->next_;
    delete n;
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

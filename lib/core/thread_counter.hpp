// thread_counter.hpp (internal): a process-wide count that the hot paths
// update without a locked instruction (spawning a task used to pay five
// `lock xadd`s for its leak-check counters and its id: ~15 ns of ~110).
//
// Each thread adds to a slot of its own with a plain load and store; total()
// sums the slots. A slot holds a signed delta, so an object made on one
// thread and destroyed on another still sums right. Slots are never freed: a
// thread gives its slot back at exit (its count stays in it) and a later
// thread reuses it. Updates made on a thread after it gave its slot back (by
// later thread_local destructors) go to a shared atomic.
#pragma once

#include <atomic>
#include <new>

namespace moss::detail {

// Tag makes each counter a separate set of slots.
template <class Tag>
class thread_counter {
 public:
  static void add(long delta) noexcept {
    slot* s = mine_;
    if (s == nullptr) [[unlikely]] s = claim();
    if (s == nullptr) {
      spill_.fetch_add(delta, std::memory_order_relaxed);
      return;
    }
    s->n.store(s->n.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  // total() is exact once the threads that changed the count have been
  // joined (or are the caller); otherwise a recent value.
  static long total() noexcept {
    long sum = spill_.load(std::memory_order_relaxed);
    for (slot* s = head_.load(std::memory_order_acquire); s != nullptr; s = s->next)
      sum += s->n.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct slot {
    std::atomic<long> n{0};
    std::atomic<bool> taken{true};
    slot* next = nullptr;
  };

  struct releaser {
    ~releaser() {
      closed_ = true;
      if (mine_ != nullptr) mine_->taken.store(false, std::memory_order_release);
      mine_ = nullptr;
    }
  };

  static slot* claim() noexcept {
    if (closed_) return nullptr;
    slot* s = nullptr;
    for (slot* f = head_.load(std::memory_order_acquire); f != nullptr && s == nullptr; f = f->next) {
      bool free = false;
      if (f->taken.load(std::memory_order_relaxed) == false &&
          f->taken.compare_exchange_strong(free, true, std::memory_order_acquire))
        s = f;
    }
    if (s == nullptr) {
      s = new (std::nothrow) slot;
      if (s == nullptr) return nullptr;
      s->next = head_.load(std::memory_order_relaxed);
      while (!head_.compare_exchange_weak(s->next, s, std::memory_order_release, std::memory_order_relaxed)) {
      }
    }
    static thread_local releaser r;  // gives the slot back at thread exit
    (void)r;
    mine_ = s;
    return s;
  }

  static inline std::atomic<slot*> head_{nullptr};
  static inline std::atomic<long> spill_{0};
  [[gnu::tls_model("initial-exec")]] static inline constinit thread_local slot* mine_ = nullptr;
  [[gnu::tls_model("initial-exec")]] static inline constinit thread_local bool closed_ = false;
};

}  // namespace moss::detail

/// @file
/// queue.hpp: queues between greenlets (gevent's Queue/JoinableQueue,
/// asyncio's Queue), unbounded or bounded, FIFO, LIFO or by priority.
///
///   moss::queue<int> q(10);                     // at most 10 items
///   moss::spawn([&] { for (;;) { auto v = q.get(); use(v); q.task_done(); } });
///   q.put(1);  q.join();                        // wait until all are done
///
/// Fairness: a getter that waits is handed the next item directly, and a
/// putter that waits has its item moved in as soon as there is room, both
/// in the order they came; a newcomer cannot overtake a waiter.
///
/// Closing: after close(), put() throws moss::error and greenlets blocked in
/// put() are woken with that error; get() still returns what is queued,
/// then throws moss::queue_closed. task_done()/join() are unaffected.
///
/// A queue belongs to one thread's hub.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/handoff.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace moss {

/// queue_closed is thrown by get() on a queue that is closed and empty.
class MOSS_API queue_closed : public error {
 public:
  queue_closed() : error("moss: get from a closed and empty queue") {}
  using error::error;
};

namespace detail {

/// The three orders, each a store with push, pop, put_back (return an item
/// that was popped as if it had never been) and size.
template <class T>
class fifo_store {
 public:
  bool empty() const noexcept { return d_.empty(); }
  std::size_t size() const noexcept { return d_.size(); }
  void push(T v) { d_.push_back(std::move(v)); }
  void put_back(T v) { d_.push_front(std::move(v)); }
  T pop() {
    T v = std::move(d_.front());
    d_.pop_front();
    return v;
  }

 private:
  std::deque<T> d_;
};

template <class T>
class lifo_store {
 public:
  bool empty() const noexcept { return d_.empty(); }
  std::size_t size() const noexcept { return d_.size(); }
  void push(T v) { d_.push_back(std::move(v)); }
  void put_back(T v) { d_.push_back(std::move(v)); }
  T pop() {
    T v = std::move(d_.back());
    d_.pop_back();
    return v;
  }

 private:
  std::vector<T> d_;
};

/// A binary heap whose top is the smallest item by Compare.
template <class T, class Compare>
class priority_store {
 public:
  bool empty() const noexcept { return d_.empty(); }
  std::size_t size() const noexcept { return d_.size(); }
  void push(T v) {
    d_.push_back(std::move(v));
    std::push_heap(d_.begin(), d_.end(), later());
  }
  void put_back(T v) { push(std::move(v)); }
  T pop() {
    std::pop_heap(d_.begin(), d_.end(), later());
    T v = std::move(d_.back());
    d_.pop_back();
    return v;
  }

 private:
  auto later() const {
    return [this](const T& a, const T& b) { return comp_(b, a); };
  }
  std::vector<T> d_;
  [[no_unique_address]] Compare comp_;
};

template <class T, class Store>
class basic_queue {
 public:
  using value_type = T;

  /// basic_queue() makes a queue holding at most maxsize items; 0 means
  /// unbounded.
  explicit basic_queue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;

  /// put() adds v, waiting while the queue is full. Throws moss::error if
  /// the queue is or gets closed.
  void put(T v) { put_until(std::move(v), no_deadline); }
  /// put(v, timeout) is put() giving up after timeout: false if v was not
  /// added (it is dropped). A timeout <= 0 is try_put(). Throws moss::error
  /// if the queue is or gets closed, as put() does.
  template <class Rep, class Period>
  bool put(T v, std::chrono::duration<Rep, Period> timeout) {
    return put_until(std::move(v), deadline_after(timeout));
  }
  /// try_put() adds v if there is room now; false (v dropped) if full.
  /// Putting to a closed queue is a mistake, not a full queue: it throws
  /// moss::error as put() does.
  bool try_put(T v) { return offer(v); }

  /// get() removes and returns the next item, waiting while there is none.
  /// Throws moss::queue_closed once the queue is closed and empty.
  T get() { return *get_until(no_deadline); }
  /// get(timeout) is get() giving up after timeout (nullopt). A timeout <= 0
  /// only takes an item that is there now.
  template <class Rep, class Period>
  std::optional<T> get(std::chrono::duration<Rep, Period> timeout) {
    return get_until(deadline_after(timeout));
  }
  /// try_get() returns the next item if there is one now (also once closed).
  std::optional<T> try_get() { return take(); }

  /// size() is the number of items a get() could take now. Items already
  /// handed to a waiting getter that has not run yet are not counted, but
  /// they still hold their place against maxsize.
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  bool full() const noexcept { return maxsize_ != 0 && items_.size() + in_flight_ >= maxsize_; }
  std::size_t maxsize() const noexcept { return maxsize_; }

  /// close() stops further puts and wakes every blocked getter (which throws
  /// moss::queue_closed) and putter (moss::error). Closing twice is fine.
  void close() noexcept {
    closed_ = true;
    getters_.wake_all();
    putters_.wake_all();
  }
  bool closed() const noexcept { return closed_; }

  /// task_done() says one item taken earlier is fully processed; join()
  /// returns when every item ever put has been (JoinableQueue). Calling it
  /// more often than items were put throws moss::error.
  void task_done() {
    if (unfinished_ == 0)
      throw moss::error("moss: queue::task_done() called more times than items were put");
    if (--unfinished_ == 0) joiners_.wake_all();
  }
  void join() { join_until(no_deadline); }
  /// join(timeout) is join() giving up after timeout; true if all are done.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(deadline_after(timeout));
  }
  /// unfinished_tasks() is how many items were put and not yet task_done().
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

  /// Greenlets waiting in get() and in put().
  std::size_t getters_waiting() const noexcept { return getters_.size(); }
  std::size_t putters_waiting() const noexcept { return putters_.size(); }

 private:
  /// A waiting getter receives its item here; a waiting putter's item waits
  /// here until it is moved into the queue (then the optional is empty).
  struct slot_waiter : waiter {
    std::optional<T> item;
  };

  void check_open() const {
    if (closed_) throw moss::error("moss: put to a closed queue");
  }

  /// deliver() hands v to the first waiting getter, else stores it.
  void deliver(T&& v, bool returned) {
    if (auto* g = wake_front<slot_waiter>(getters_)) {
      g->item.emplace(std::move(v));
      ++in_flight_;
    } else if (returned) {
      items_.put_back(std::move(v));
    } else {
      items_.push(std::move(v));
    }
  }

  /// admit() moves the items of waiting putters in while there is room.
  void admit() {
    while (!putters_.empty() && !full()) {
      auto* p = wake_front<slot_waiter>(putters_);
      T v = std::move(*p->item);
      p->item.reset();
      ++unfinished_;
      deliver(std::move(v), false);
    }
  }

  bool offer(T& v) {
    check_open();
    if (full()) return false;
    ++unfinished_;
    deliver(std::move(v), false);
    return true;
  }

  bool put_until(T&& v, time_point deadline) {
    if (offer(v)) return true;
    slot_waiter p;
    p.set_what("queue put");
    p.item.emplace(std::move(v));
    putters_.push_back(p);
    // Once woken, the put has happened (or the queue closed): a kill that
    // arrives after that is raised at the next wait, as usual.
    if (!p.wait(deadline)) return false;
    if (p.item) throw moss::error("moss: put to a closed queue");
    return true;
  }

  std::optional<T> take() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> v(items_.pop());
    admit();
    return v;
  }

  std::optional<T> get_until(time_point deadline) {
    if (auto v = take()) return v;
    if (closed_) throw queue_closed();
    slot_waiter g;
    g.set_what("queue get");
    getters_.push_back(g);
    // An item handed to a getter killed before it ran goes back in front.
    bool woken = await_handoff(g, deadline, [&] {
      if (!g.item) return;
      --in_flight_;
      deliver(std::move(*g.item), true);
    });
    if (!woken) return std::nullopt;
    if (!g.item) throw queue_closed();
    --in_flight_;
    std::optional<T> v(std::move(g.item));
    admit();
    return v;
  }

  bool join_until(time_point deadline) {
    if (unfinished_ == 0) return true;
    waiter w;
    w.set_what("queue join");
    joiners_.push_back(w);
    return w.wait(deadline) || unfinished_ == 0;
  }

  /// Invariants: getters wait only while items_ is empty; putters wait only
  /// while full(). in_flight_ counts items handed to getters not yet run.
  Store items_;
  std::size_t maxsize_;
  std::size_t in_flight_ = 0;
  std::size_t unfinished_ = 0;
  bool closed_ = false;
  waiter_list getters_;
  waiter_list putters_;
  waiter_list joiners_;
};

}  // namespace detail

/// queue: first in, first out.
template <class T>
class queue : public detail::basic_queue<T, detail::fifo_store<T>> {
 public:
  using detail::basic_queue<T, detail::fifo_store<T>>::basic_queue;
};

/// lifo_queue: last in, first out (gevent's LifoQueue).
template <class T>
class lifo_queue : public detail::basic_queue<T, detail::lifo_store<T>> {
 public:
  using detail::basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

/// priority_queue: get() returns the smallest item by Compare first, like
/// Python's PriorityQueue — the opposite of std::priority_queue; pass
/// std::greater<T> for largest first. Equal items come out in no set order.
template <class T, class Compare = std::less<T>>
class priority_queue : public detail::basic_queue<T, detail::priority_store<T, Compare>> {
 public:
  using detail::basic_queue<T, detail::priority_store<T, Compare>>::basic_queue;
};

}  // namespace moss

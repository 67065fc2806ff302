// threadpool.cpp: the process's pool of real threads for blocking work.
//
// One pool per process, made on first use and never destroyed: its threads
// are detached, and one may still be finishing a job (or waiting for one)
// while the process exits, so nothing they touch may be torn down by static
// destructors. Exit does not wait for them; the kernel ends them.
//
// A job goes: caller's hub thread (await_job: keepalive + 1, submit) -> pool
// thread (execute, done_ = true, post done_node_ to the caller's hub) ->
// hub thread (the node wakes the waiting greenlet). The done node is made
// before submitting, so a pool thread never allocates to report back.
#include <moss/threadpool.hpp>

#include "core/config.hpp"
#include "core/hub.hpp"
#include "thread/native_thread.hpp"
#include "thread/threadpool.hpp"
#include "core/parse_count.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <pthread.h>

namespace moss::detail {

namespace {

constexpr std::size_t max_size = 1024;

// job_done: the post that tells the caller's hub a job has run. It owns the
// pool's reference to the job once armed (handed to the inbox).
class job_done final : public posted {
 public:
  explicit job_done(pool_job* j) noexcept : j_(j) {}
  ~job_done() override {
    if (armed_) j_->unref();
  }
  void dispatch() noexcept override {
    std::unique_ptr<job_done> self(this);
    if (j_->waiter_ != nullptr) j_->waiter_->wake();
  }
  bool armed_ = false;

 private:
  pool_job* j_;
};

class pool {
 public:
  pool() : size_(initial_size()) {
    instance = this;
    install_fork_handlers();  // threadpool_at_fork
  }

  std::size_t size() {
    std::lock_guard lock(m_);
    return size_;
  }

  void resize(std::size_t n) {
    std::lock_guard lock(m_);
    size_ = n;
    cv_.notify_all();  // idle threads above the limit exit
    while (queued_ > idle_ && threads_ < size_)
      if (!start_thread()) break;
  }

  // submit() queues j (holding a reference for the pool) and makes sure a
  // thread will take it.
  void submit(pool_job* j) {
    std::lock_guard lock(m_);
    j->next_ = nullptr;
    if (tail_ != nullptr) tail_->next_ = j;
    else head_ = j;
    tail_ = j;
    ++queued_;
    if (idle_ >= queued_) {
      cv_.notify_one();
      return;
    }
    if (threads_ < size_ && !start_thread() && threads_ == 0) {
      unlink(j);
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                              "moss: run_in_thread could not start a pool thread");
    }
  }

  // cancel() takes j back if no thread has started it; the caller then owns
  // the pool's reference.
  bool cancel(pool_job* j) noexcept {
    std::lock_guard lock(m_);
    return unlink(j);
  }

 private:
  // A forked child has only the thread that forked: the pool's threads are
  // gone, and its lock and condition variable may hold their state. The
  // child starts over with fresh ones, no threads and no jobs: those queued
  // or running at the fork were submitted by greenlets that the child's hub
  // left behind (a job never runs twice, once in each process).
  friend void moss::detail::threadpool_at_fork(fork_phase p) noexcept;
  static inline pool* instance = nullptr;
  void at_fork(fork_phase p) noexcept {
    switch (p) {
      case fork_phase::prepare: m_.lock(); return;
      case fork_phase::parent: m_.unlock(); return;
      case fork_phase::child: break;
    }
    new (&m_) std::mutex;
    new (&cv_) std::condition_variable;
    threads_ = 0;
    idle_ = 0;
    head_ = tail_ = nullptr;  // the jobs are left to their waiters, never run
    queued_ = 0;
  }

  static std::size_t initial_size() {
    if (const char* text = env_value("MOSS_THREADPOOL_SIZE")) {
      try {
        return parse_pool_size(text);
      } catch (const moss::error& e) {
        bad_environment(e);  // exits: see config.hpp
      }
    }
    return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 4, max_size);
  }

  bool unlink(pool_job* j) noexcept {
    pool_job* prev = nullptr;
    for (pool_job* p = head_; p != nullptr; prev = p, p = p->next_) {
      if (p != j) continue;
      if (prev != nullptr) prev->next_ = p->next_;
      else head_ = p->next_;
      if (tail_ == p) tail_ = prev;
      p->next_ = nullptr;
      --queued_;
      return true;
    }
    return false;
  }

  // Called with m_ held.
  bool start_thread() noexcept {
    if (start_native_thread([](void* p) { static_cast<pool*>(p)->work(); }, this) != 0) return false;
    ++threads_;
    return true;
  }

  void work() noexcept {
    std::unique_lock lock(m_);
    for (;;) {
      while (head_ == nullptr && threads_ <= size_) {
        ++idle_;
        cv_.wait(lock);
        --idle_;
      }
      if (threads_ > size_) {
        // Above the limit: leave, passing on a wake-up meant for a job.
        --threads_;
        if (head_ != nullptr) cv_.notify_one();
        return;
      }
      pool_job* j = head_;
      head_ = j->next_;
      if (head_ == nullptr) tail_ = nullptr;
      --queued_;
      lock.unlock();
      run(j);
      lock.lock();
    }
  }

  static void run(pool_job* j) noexcept {
    j->execute();
    std::unique_ptr<posted> n = std::move(j->done_node_);
    static_cast<job_done*>(n.get())->armed_ = true;  // the node now holds our reference
    j->done_.store(true, std::memory_order_release);
    j->done_.notify_all();  // a caller blocked because its hub is stopping
    // False if the caller's hub has stopped; the node's destructor dropped our reference.
    post_to(*j->hub_, std::move(n), "run_in_thread");
  }

  std::mutex m_;
  std::condition_variable cv_;
  pool_job* head_ = nullptr;
  pool_job* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::size_t size_;
  std::size_t threads_ = 0;
  std::size_t idle_ = 0;
};

// run_in_thread waits of this thread's hub in progress (each holds one of
// the hub's keepalive).
constinit thread_local std::size_t jobs_awaited = 0;

pool& the_pool() {
  static pool* p = new pool;  // never destroyed: see the top of this file
  return *p;
}

}  // namespace

std::size_t parse_pool_size(const char* text) {
  long n = 0;
  if (!parse_count(text, 1, static_cast<long>(max_size), &n))
    throw moss::error(std::string("moss: MOSS_THREADPOOL_SIZE=\"") + text +
                      "\" is not valid; use a number of threads from 1 to " + std::to_string(max_size));
  return static_cast<std::size_t>(n);
}

void await_job(pool_job& j) {
  hub_core& h = hub_core::current();
  if (h.thread().current->role_ == greenlet_impl::role::hub)
    throw moss::error("moss: run_in_thread was called on the hub greenlet; code run by the hub must not wait");
  if (h.box().closed()) throw moss::error("moss: run_in_thread called while this thread's hub is stopping");
  pool& p = the_pool();
  j.hub_ = &h.facade();
  j.done_node_ = std::make_unique<job_done>(&j);
  j.ref();  // the pool's
  try {
    p.submit(&j);
  } catch (...) {
    j.unref();
    throw;
  }
  // From here until we stop waiting, a pool thread will post to this hub:
  // the hub must block for it rather than call this a deadlock.
  ++h.keepalive;
  ++jobs_awaited;
  struct stop_waiting {
    hub_core& h;
    pool_job& j;
    ~stop_waiting() {
      --h.keepalive;
      --jobs_awaited;
      j.waiter_ = nullptr;
    }
  } guard{h, j};
  std::exception_ptr interrupted;
  bool tried_cancel = false;
  while (!j.done_.load(std::memory_order_acquire)) {
    if (interrupted && !tried_cancel) {
      tried_cancel = true;
      if (p.cancel(&j)) {
        j.unref();  // the pool's reference came back with it
        break;
      }
    }
    if (h.box().closed()) {
      // The hub is stopping and will not take the done node: block this
      // thread until the job has run (it may use this greenlet's stack).
      j.done_.wait(false, std::memory_order_acquire);
      break;
    }
    waiter w;
    j.waiter_ = &w;
    try {
      w.wait();
    } catch (...) {
      if (!interrupted) interrupted = std::current_exception();
    }
    j.waiter_ = nullptr;
  }
  if (interrupted) std::rethrow_exception(interrupted);
}

void threadpool_at_fork(fork_phase p) noexcept {
  if (pool::instance != nullptr) pool::instance->at_fork(p);
}

std::size_t threadpool_waits_at_fork() noexcept { return std::exchange(jobs_awaited, 0); }

}  // namespace moss::detail

namespace moss::threadpool {

std::size_t size() { return detail::the_pool().size(); }

void set_size(std::size_t n) {
  if (n < 1 || n > detail::max_size)
    throw moss::error("moss: threadpool::set_size(" + std::to_string(n) + "): the size must be from 1 to " +
                      std::to_string(detail::max_size));
  detail::the_pool().resize(n);
}

}  // namespace moss::threadpool

/// @file
/// threadpool.hpp: blocking work on a small pool of real threads (gevent's
/// threadpool).
///
///   std::string text = moss::run_in_thread(read_whole_file, path);
///
/// The calling greenlet waits; its hub keeps running the other tasks. The
/// pool's threads start on demand, at most threadpool::size() of them, and
/// are left running (idle) at process exit, so exit never waits for them.
/// A child made by fork() starts with an empty pool of the same size.
#pragma once

#include <moss/detail/export.hpp>
#include <moss/detail/stored_call.hpp>
#include <moss/hub.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace moss {

namespace threadpool {

/// size() is how many threads the pool may run at once: MOSS_THREADPOOL_SIZE
/// if set (read once, on the pool's first use), else the larger of 4 and the
/// number of cores. Throws moss::error for a malformed MOSS_THREADPOOL_SIZE.
MOSS_API std::size_t size();

/// set_size() changes that limit; n must be from 1 to 1024. Idle threads
/// above the new limit exit; busy ones finish their job first.
MOSS_API void set_size(std::size_t n);

}  // namespace threadpool

namespace detail {

class waiter;

/// pool_job: one run_in_thread() call, shared by the greenlet that waits for
/// it and the pool thread that runs it (hence the atomic count). The fields
/// below are the pool's (lib/thread/threadpool.cpp); `waiter_` is only touched on
/// the caller's hub thread.
class MOSS_API pool_job {
 public:
  pool_job() noexcept = default;
  pool_job(const pool_job&) = delete;
  pool_job& operator=(const pool_job&) = delete;
  virtual ~pool_job() = default;

  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  /// execute() runs the function on a pool thread and keeps its outcome.
  virtual void execute() noexcept = 0;

  std::atomic<unsigned> refs_{1};
  std::atomic<bool> done_{false};    // set by the pool thread after execute()
  pool_job* next_ = nullptr;         // the pool's queue
  moss::hub* hub_ = nullptr;         // where completion is posted
  std::unique_ptr<posted> done_node_;  // that post, made before submitting
  waiter* waiter_ = nullptr;         // the waiting greenlet, if it still waits
};

/// await_job() hands j to the pool and waits cooperatively until it has run.
/// If the waiting greenlet is killed (or times out) before j starts, j is
/// dropped; once j runs, the kill takes effect when it returns, because the
/// function may use the caller's stack.
MOSS_API void await_job(pool_job& j);

/// parse_pool_size() reads a MOSS_THREADPOOL_SIZE value (exposed for tests).

template <class R, class F, class... Args>
class pool_job_fn final : public pool_job {
 public:
  template <class G, class... A>
  explicit pool_job_fn(G&& f, A&&... args) : call_(std::forward<G>(f), std::forward<A>(args)...) {}

  void execute() noexcept override {
    try {
      // What the function owns is released on the pool thread, when it returns.
      if constexpr (std::is_void_v<R>) call_.template invoke<void>();
      else result_.emplace(call_.template invoke<R>());
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  R take() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  stored_call<F, Args...> call_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result_{};
  std::exception_ptr error_;
};

struct pool_job_ref {
  pool_job* j;
  ~pool_job_ref() { j->unref(); }
};

}  // namespace detail

/// run_in_thread() calls f(args...) on one of the pool's threads and returns
/// its value or rethrows its exception; the calling greenlet waits, the hub
/// keeps running others. Arguments are copied or moved, as by std::thread.
/// Must not be called from the hub greenlet. A kill or timeout aimed at the
/// caller while f runs takes effect when f returns (f may use the caller's
/// stack); one that comes before f starts cancels it.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto run_in_thread(F&& f, Args&&... args) {
  using R = std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;
  auto* job = new detail::pool_job_fn<R, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f),
                                                                                  std::forward<Args>(args)...);
  detail::pool_job_ref hold{job};
  detail::await_job(*job);
  return job->take();
}

}  // namespace moss

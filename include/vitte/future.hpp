// Future<T> and Promise<T>: a result that arrives later, and work that runs when it does.
//
//   vitte::Promise<int> p(sched);                    // completed from any thread
//   vitte::Future<std::string> f = p.get_future()
//       .then([](int v) { return v + 1; })           // a task, once p is set
//       .then([](int v) { return std::to_string(v); });
//   p.set_value(41);                                 // e.g. from an I/O callback
//   f.get();                                         // "42"
//
// Sources of futures: Scheduler::async(fn), Promise<T>, then(), and when_all()/when_any()
// (when_all.hpp).
//
// get()/wait() wait like TaskGroup::wait(): a worker runs other tasks meanwhile (so a task
// may block on a future whose producer is queued behind it, even on a single worker), other
// threads sleep. get() returns the value or rethrows the error and empties the future. The
// hazard of TaskGroup::wait() applies: a task holding a mutex across get() should call it
// inside vitte::isolate(); inside a region, a wait runs the tasks its future depends on
// (then() sources, when_all inputs), but a Promise's future is only safe to wait for if
// whoever sets the promise can run elsewhere (the region's waits run none of its tasks). A
// future can be dropped unread: its producer still runs, and its error is dropped with it.
//
// then(fn) consumes the future (rvalue-qualified: std::move(f).then(...)) and returns the
// future of fn's result. fn(T) (fn() for a Future<void>) runs as a task on the future's
// scheduler once the value is there; no thread blocks in between. An error skips fn and
// reaches the returned future unchanged, so a chain's first error comes out of its last
// get(); an exception fn throws becomes the returned future's error. A fn that returns a
// Future<V> makes then() return Future<V> (flattened): it completes with that inner future.
//   - Where it runs: whoever completes the future queues the continuation, with its own
//     locality: a worker of the same scheduler on its own deque (it usually runs next, on
//     the same core, in the same caches); any other thread (an I/O thread, a worker of
//     another scheduler) on the injection queue of its node. A link that completes its
//     own future hands the next link straight to its worker (a strand: no queue, no
//     thief; see StrandState below), so a chain runs on one worker from end to end. then()
//     on a future that is ready already queues the continuation at once, from the calling
//     thread. The task runs in the isolation region then() was called in (vitte::isolate).
//   - Accounting: a queued continuation is a detached task of the scheduler: join_all()
//     and shutdown() wait for it, and for the links it queues in turn. A continuation on a
//     future that is not ready yet is not counted until it is queued: join_all() does not
//     wait for a Promise that nobody has set.
//   - Any length: each link is its own task (no recursion however long the chain), and a
//     finished link's memory is freed when the next one runs.
//   - Shutdown: continuations are never refused or blocked while shutdown() drains (their
//     source has completed; they must run). A future completed after shutdown() finished
//     draining, after the Scheduler was destroyed (then() on a ready future, a promise set
//     later), or in a fork() child runs no continuation: the future then() returned fails
//     with BrokenPromise, and so does the rest of its chain. The scheduler is not touched
//     for it (liveness.hpp); destroying it while another thread completes one of its
//     futures remains a race.
//   - A future bound to no scheduler (when_all() of an empty range made outside a worker)
//     takes the calling worker's scheduler for then(); on other threads then() on it is a
//     UsageError.
//   - A continuation that cannot be allocated (std::bad_alloc while queuing it) ends the
//     process: its source has completed and has nowhere to report it.
//
// Promise<T>: made for a scheduler (the one continuations on its future run on).
// get_future() once; set_value()/set_exception() once, from any thread; a second call of
// either throws UsageError. A promise destroyed unset fails its future with BrokenPromise,
// so a chain on it runs its error path instead of waiting forever.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/future_core.hpp"
#include "vitte/detail/future_state.hpp"
#include "vitte/detail/future_then.hpp"
#include "vitte/detail/liveness.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

template <class T>
class Future {
 public:
  using value_type = T;

  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureState<T>> s) noexcept : state_(std::move(s)) {}
  // Move-only: one reader waits for and takes the result.
  Future(Future&&) noexcept = default;
  Future& operator=(Future&&) noexcept = default;
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;

  bool valid() const noexcept { return state_ != nullptr; }
  bool ready() const noexcept { return state_ && state_->counter.finished(); }

  void wait() const {
    check();
    if (state_->counter.finished()) return;
    // A promise's future may be waited for after its scheduler was destroyed (the promise
    // is set by another thread): wait as for a future bound to none, not touching it.
    detail::wait_for(state_->counter, detail::alive(state_->live) ? state_->core : nullptr);
  }

  // Waits, then returns the result (moved out) or rethrows the task's exception.
  // The future is empty afterwards.
  T get() {
    wait();
    auto s = std::move(state_);
    if (auto e = s->counter.take_error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return std::move(*s->value);
  }

  // Runs fn(value) (fn() for Future<void>) as a task once the value is there; returns the
  // future of its result (flattened when fn returns a Future). Consumes this future. An
  // error skips fn and goes to the returned future. See the file comment for where fn
  // runs and how it is counted. Throws UsageError on an empty future, and on a future
  // bound to no scheduler outside a worker.
  // With `opts` (task_options.hpp) the continuation is placed as they say (a node's
  // queue, a group's level, a deadline counted from when it is queued, a name) instead of
  // where the completing thread is; UsageError for options that would not apply.
  template <class F>
  auto then(F&& fn) && -> Future<detail::ThenValue<T, std::decay_t<F>>> {
    return std::move(*this).then_with(std::forward<F>(fn), nullptr);
  }
  template <class F>
  auto then(F&& fn, const TaskOptions& opts) && -> Future<detail::ThenValue<T, std::decay_t<F>>> {
    return std::move(*this).then_with(std::forward<F>(fn), &opts);
  }

 private:
  // (No default argument: see Scheduler::async.)
  template <class F>
  auto then_with(F&& fn, const TaskOptions* opts) && -> Future<detail::ThenValue<T, std::decay_t<F>>> {
    using Link = detail::ThenLink<T, std::decay_t<F>>;
    using U = detail::ThenValue<T, std::decay_t<F>>;
    if (!state_) throw UsageError("Future::then() on an empty future (already read, or consumed by then()/when_all())");
    const detail::CoreRef core = detail::bound_ref(state_->core, state_->live);
    if (core.core == nullptr)
      throw UsageError("Future::then() outside a worker on a future bound to no scheduler (when_all() of an empty "
                       "range made outside a worker): nothing can run the continuation");
    // A destroyed scheduler is not asked (its continuation fails with BrokenPromise anyway).
    std::shared_ptr<const detail::BoundOptions> bound;
    if (opts != nullptr && !opts->empty() && detail::alive(core.live))
      bound = detail::share_options(core.core, *opts, "Future::then(fn, options)");
    auto link = std::make_shared<Link>(core, std::forward<F>(fn), std::move(state_), detail::region_for(core.core),
                                       std::move(bound));
    Future<U> out(link);
    Link::start(std::move(link));
    return out;
  }

  friend struct detail::FutureAccess;
  void check() const {
    if (!state_) throw UsageError("Future::get()/wait() on an empty future (already read?)");
  }
  std::shared_ptr<detail::FutureState<T>> state_;
};

// The producing side of a Future: completed once, from any thread.
template <class T>
class Promise {
 public:
  // Continuations on the future run on `sched`, which must outlive the promise's
  // fulfilment (see the file comment).
  explicit Promise(Scheduler& sched) : state_(std::make_shared<detail::PromiseState<T>>(detail::core_of(sched))) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& o) noexcept {
    if (this != &o) {
      break_if_unset();
      state_ = std::move(o.state_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  // An unset promise fails its future with BrokenPromise.
  ~Promise() { break_if_unset(); }

  bool valid() const noexcept { return state_ != nullptr; }

  // The future this promise completes. Once; a second call throws UsageError.
  Future<T> get_future() {
    check("get_future()");
    // relaxed: only the RMW's single winner matters; the state is published by the
    // shared_ptr copy below.
    if (state_->future_taken.exchange(true, std::memory_order_relaxed))
      throw UsageError("Promise::get_future() called twice: a promise has one future");
    return Future<T>(state_);
  }

  // Completes the future with T(args...) (nothing for Promise<void>). Throws UsageError if
  // the promise was satisfied already. If constructing the value throws, the exception
  // propagates and the promise stays unset.
  template <class... A>
  void set_value(A&&... args) {
    static_assert(std::is_void_v<T> ? sizeof...(A) == 0 : std::is_constructible_v<Stored, A&&...>,
                  "Promise<T>::set_value(args...): T must be constructible from args (none for void)");
    claim("set_value()");
    if constexpr (!std::is_void_v<T>) {
      try {
        state_->value.emplace(std::forward<A>(args)...);
      } catch (...) {
        // release: pairs with the next claimer's acquire, which then sees value_ empty.
        state_->settled.store(false, std::memory_order_release);
        throw;
      }
    }
    detail::complete(*state_);  // C3: publishes the value
  }

  // Completes the future with an error (not null). Throws UsageError if the promise was
  // satisfied already.
  void set_exception(std::exception_ptr e) {
    if (!e) throw UsageError("Promise::set_exception() with a null exception_ptr");
    claim("set_exception()");
    state_->counter.record_exception(std::move(e));
    detail::complete(*state_);
  }

 private:
  using Stored = std::conditional_t<std::is_void_v<T>, char, T>;

  void check(const char* what) const {
    if (!state_) throw UsageError(std::string("Promise::") + what + " on a moved-from promise");
  }
  void claim(const char* what) {
    check(what);
    // acq_rel: one winner completes the future; acquire pairs with an unclaim's release.
    if (state_->settled.exchange(true, std::memory_order_acq_rel))
      throw UsageError(std::string("Promise::") + what + ": the promise was already satisfied (set_value() or "
                       "set_exception() was called before)");
  }
  void break_if_unset() noexcept {
    if (!state_ || state_->settled.exchange(true, std::memory_order_acq_rel)) return;
    state_->counter.record_exception(std::make_exception_ptr(
        BrokenPromise("Promise destroyed without a value: set_value()/set_exception() was never called")));
    detail::complete(*state_);
  }

  std::shared_ptr<detail::PromiseState<T>> state_;
};

}  // namespace vitte

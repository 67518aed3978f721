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
#include "vitte/detail/liveness.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

template <class T>
class Future;

namespace detail {

class SchedulerCore;

// What a future does once it is ready, besides waking a blocked get(): queue a then()
// continuation, resume a coroutine that co_awaits it. Intrusive (it lives in the
// awaiter or the continuation's own state); ready() is called once, on the thread that
// fulfilled the future, and must only queue work (resume_later, a frame), not run it.
struct Continuation {
  void (*ready)(Continuation*) noexcept = nullptr;
};

// The slot a future's single continuation sits in. States: null (none yet), a
// Continuation* (subscribed), kReady (the value is there; subscribers are refused).
// Invariants:
//   C1  the slot goes null -> c -> kReady, or null -> kReady, or c -> null (unsubscribe)
//       and nothing else; kReady is final.
//   C2  ready() is called exactly once per subscription that was not unsubscribed: by
//       the fulfiller, whose exchange to kReady took it.
//   C3  the value (or error) is written before the exchange (release), and a subscriber
//       that finds kReady reads it after its acquire: ready() and a refused subscriber
//       both see the result.
class ContinuationSlot {
 public:
  // False: the future is ready already (nothing subscribed; go on at once).
  bool subscribe(Continuation* c) noexcept {
    Continuation* expected = nullptr;
    // acq_rel: release publishes *c to the fulfiller; acquire (also on failure) pairs
    // with the fulfiller's exchange so a refused subscriber sees the result (C3).
    return slot_.compare_exchange_strong(expected, c, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  // True: `c` was taken back before the future became ready; ready() will not be called.
  bool unsubscribe(Continuation* c) noexcept {
    Continuation* expected = c;
    // acquire on failure: the fulfiller's ready() for c is then in flight or done (C2).
    return slot_.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel, std::memory_order_acquire);
  }
  // The fulfiller, after writing the result.
  void make_ready() noexcept {
    // acq_rel: release publishes the result (C3); acquire pairs with subscribe's release.
    Continuation* c = slot_.exchange(ready_mark(), std::memory_order_acq_rel);
    if (c != nullptr && c != ready_mark()) c->ready(c);
  }
  bool is_ready() const noexcept {
    return slot_.load(std::memory_order_acquire) == ready_mark();  // C3
  }

 private:
  static Continuation* ready_mark() noexcept {
    static Continuation mark;
    return &mark;
  }
  std::atomic<Continuation*> slot_{nullptr};
};

// A scheduler and its liveness token (liveness.hpp), as a future holds them.
struct CoreRef {
  SchedulerCore* core = nullptr;
  std::uint64_t live = 0;
};

template <class T>
struct FutureState : FutureCore {
  FutureState() = default;
  // `c` must be alive (a Scheduler& in hand, or the calling worker's).
  explicit FutureState(SchedulerCore* c) : core(c), live(live_of(c)) {}
  // From another future's reference, which may name a destroyed scheduler: not touched.
  explicit FutureState(CoreRef r) noexcept : core(r.core), live(r.live) {}
  template <class F>
  void fulfil(F& fn) noexcept {
    try {
      if constexpr (std::is_void_v<T>)
        fn();
      else
        value.emplace(fn());
    } catch (...) {
      counter.record_exception(std::current_exception());
    }
    continuation.make_ready();
    counter.done(nullptr);  // the closure still holds a reference to this state here
  }
  ContinuationSlot continuation;
  SchedulerCore* core = nullptr;  // the scheduler continuations run on
  std::uint64_t live = 0;         // core's liveness token (liveness.hpp)
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
};

// The fulfiller's last step once the value or the error is in place (C3): runs the
// subscribed continuation's ready() (C2), then wakes a blocked get(). The caller holds a
// reference to the state across the call.
template <class T>
void complete(FutureState<T>& s) noexcept {
  s.continuation.make_ready();
  s.counter.done(nullptr);
}

// Moves `src`'s outcome (its value, or its error) into `dst`, which is not complete yet.
// Only the one consumer of `src` calls it, after `src` is ready.
template <class T>
void move_outcome(FutureState<T>& src, FutureState<T>& dst) noexcept {
  if (std::exception_ptr e = src.counter.take_error()) {
    dst.counter.record_exception(std::move(e));
    return;
  }
  if constexpr (!std::is_void_v<T>) {
    try {
      dst.value.emplace(std::move(*src.value));
    } catch (...) {
      dst.counter.record_exception(std::current_exception());
    }
  }
}

struct FutureAccess {
  template <class T>
  static std::shared_ptr<FutureState<T>> take(Future<T>& f) noexcept {
    return std::move(f.state_);
  }
  template <class T>
  static FutureState<T>* peek(const Future<T>& f) noexcept {
    return f.state_.get();
  }
};

// The scheduler a continuation on `c`'s future runs on: its own, else the calling
// worker's (a future bound to none), else none (null).
inline SchedulerCore* bound_core(SchedulerCore* c) noexcept {
  if (c != nullptr) return c;
  return tls_worker != nullptr ? tls_worker->core : nullptr;
}
// The same with its liveness token: a future's own scheduler (alive or not: not touched),
// else the calling worker's.
inline CoreRef bound_ref(SchedulerCore* c, std::uint64_t live) noexcept {
  if (c != nullptr) return {c, live};
  if (const WorkerLocal* w = tls_worker) return {w->core, w->core_live};
  return {};
}
// The isolation region a continuation made now runs in: the caller's, on `core`'s workers.
inline std::uint64_t region_for(const SchedulerCore* core) noexcept {
  const WorkerLocal* w = tls_worker;
  return w != nullptr && w->core == core ? w->isolation : 0;
}

// Queues a frame from a thread that is not one of `core`'s workers, on its node's
// injection queue, counted as a detached task. Never blocks and is never bounded. Once
// shutdown() has drained, once the scheduler is destroyed (`live`, its liveness token,
// says so without touching it), or in a fork() child, it refuses instead: the frame is
// destroyed unrun on this thread (a continuation's closure then fails its future with
// BrokenPromise), iteratively, so a refused chain of any length costs no stack.
// src/future/continuations.cpp.
void queue_continuation_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f,
                                 const BoundOptions* opts = nullptr) noexcept;

// Strands: a chain runs on one worker with no queue between its links.
//
// When a continuation's task completes its own future (complete_in_strand), the one
// continuation that this completion queues on the same worker is not pushed: it is held,
// and the task that held it runs it as soon as its own closure returned, in a loop (one
// link after another, no recursion), as the task graph's strands do (docs/design.md). A
// held link is part of the running task (counted with it, never seen by thieves), and no
// user code runs between holding it and running it, so nothing can be waiting for it.
// Invariants (per thread):
//   S1  `held` is set only while `capturing` (inside complete_in_strand, on a worker of
//       the continuation's scheduler), only when it is empty, and only for a frame of the
//       worker's current isolation region. `capturing` is false while user code runs (a
//       continuation task clears it on entry), so a promise set inside fn is queued.
//   S2  `loop_above` is true only from a strand loop's call of a held frame until the entry
//       of the continuation task it runs, which clears it; so it is false whenever user
//       code runs, and a task run by a blocking get() inside fn runs its own loop.
//   S3  a continuation task not started by a loop runs the loop before it returns, until
//       `held` is empty; one started by a loop leaves `held` to that loop.
struct StrandState {
  TaskFrame* held = nullptr;
  bool capturing = false;
  bool loop_above = false;
};
inline constinit thread_local StrandState tls_strand;

// complete(), from the task of a continuation: the next link may be held (S1).
template <class T>
void complete_in_strand(FutureState<T>& s) noexcept {
  StrandState& st = tls_strand;
  const bool outer = std::exchange(st.capturing, true);
  complete(s);
  st.capturing = outer;
}

// The strand loop (S3): runs held links on this worker until none is left.
inline void run_strand(StrandState& st) noexcept {
  WorkerLocal* w = tls_worker;
  while (TaskFrame* f = st.held) {
    VITTE_ASSERT(w != nullptr && !st.capturing, "S1: a link held outside a worker, or while capturing");
    st.held = nullptr;
    st.loop_above = true;  // S2
    f->op(f, FrameOp::Run);  // a ContinuationTask: never throws
    w->pool.put(f);
    w->counters.executed.bump();
  }
}

// Queues the task of a continuation (then(), when_all(), when_any()) whose source has
// just completed, with the completing thread's locality (the file comment), or holds it
// for the running strand (S1). `joins`: the future the task completes, so an isolated
// get() on it recognises the task. A null `core` (every input bound to no scheduler,
// hence ready already) runs it here.
// `opts`: the then() link's options (null: none), which the caller keeps alive across the
// call; a continuation with options is routed by them, never held for the strand.
template <class C>
void queue_continuation(SchedulerCore* core, std::uint64_t live, C&& task, std::uint64_t region,
                        const FutureCore* joins, const BoundOptions* opts = nullptr) noexcept {
  if (core == nullptr) {
    std::decay_t<C> t(std::forward<C>(task));
    t();
    return;
  }
  WorkerLocal* w = tls_worker;
  // By token, not address: a newer scheduler at a destroyed one's address is not it.
  const bool local = w != nullptr && w->core_live == live;
  TaskFrame* f = pack(local ? w : nullptr, std::forward<C>(task));  // bad_alloc: terminate
  f->isolation = region;
  f->joins = joins;
  if (!local) {
    if constexpr (!kFitsInline<std::decay_t<C>>) {
      if (alive(live)) note_external_boxed(core);
    }
    queue_continuation_external(core, live, f, opts);
    return;
  }
  f->counter = w->detached;
  StrandState& st = tls_strand;
  if (opts == nullptr && st.capturing && st.held == nullptr && region == w->isolation) {  // S1
    st.held = f;
    return;
  }
  w->detached->add(w);  // before the push that publishes the frame
  if (opts == nullptr)
    route(w->core, w, f);
  else
    route(w->core, w, f, Route{.opts = opts, .source = Source::Continuation});
}

// The closure of a continuation's task: calls S::run_task(self) once, then runs the
// strand (S3); destroyed unrun (a refused continuation) it calls S::abandon(), so the
// future S completes fails with BrokenPromise rather than never completing.
template <class S>
struct ContinuationTask {
  explicit ContinuationTask(std::shared_ptr<S> p) noexcept : s(std::move(p)) {}
  ContinuationTask(ContinuationTask&&) noexcept = default;
  ContinuationTask& operator=(ContinuationTask&&) = delete;
  ~ContinuationTask() {
    if (s) s->abandon();
  }
  void operator()() noexcept {
    VITTE_ASSERT(s != nullptr, "a continuation task runs once");
    StrandState& st = tls_strand;
    const bool from_loop = std::exchange(st.loop_above, false);  // S2
    const bool outer_capturing = std::exchange(st.capturing, false);  // S1: never around fn
    {
      std::shared_ptr<S> self = std::move(s);
      self->run_task(self);
    }
    if (!from_loop) run_strand(st);  // S3
    st.capturing = outer_capturing;
  }
  std::shared_ptr<S> s;
};

template <class T, class F>
struct ThenCall {
  static_assert(std::is_invocable_v<F&, T&&>, "Future<T>::then(fn): fn must be callable with a T");
  using type = std::invoke_result_t<F&, T&&>;
  static_assert(!std::is_reference_v<type>, "Future::then(fn): fn returns a reference; return a value");
};
template <class F>
struct ThenCall<void, F> {
  static_assert(std::is_invocable_v<F&>, "Future<void>::then(fn): fn must be callable with no arguments");
  using type = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<type>, "Future::then(fn): fn returns a reference; return a value");
};
template <class R>
struct Flatten {
  using type = R;
  static constexpr bool kFuture = false;
};
template <class V>
struct Flatten<Future<V>> {
  using type = V;
  static constexpr bool kFuture = true;
};
// The value type of the future fn's then() returns.
template <class T, class F>
using ThenValue = typename Flatten<typename ThenCall<T, F>::type>::type;

// One link of a then() chain: the future it completes (it *is* that future's state), the
// callable, and its subscription to the source's slot. One allocation per link.
//
// Ownership. The returned Future holds the link; the link holds its source (src_). While
// subscribed, the link also holds itself (self_): the source's slot refers to it, and the
// user may drop the returned future meanwhile. ready() moves self_ into the queued task,
// which releases the source (freeing the previous link) and the callable when it runs. So
// nothing is freed recursively, and a pending chain stays alive until it runs.
//
// Flattening (fn returns a Future<V>): the task subscribes the same link (its Continuation
// is free once the source fired, C2) to the inner future; when that one completes, a
// second task moves its outcome here. Every hop is a task, so nested flattened futures
// cost no stack either.
template <class T, class F>
class ThenLink final : public FutureState<ThenValue<T, F>>, public Continuation {
  using R = typename ThenCall<T, F>::type;
  using U = ThenValue<T, F>;
  static constexpr bool kFlatten = Flatten<R>::kFuture;
  struct None {};

 public:
  template <class G>
  ThenLink(CoreRef core, G&& fn, std::shared_ptr<FutureState<T>>&& src, std::uint64_t region,
           std::shared_ptr<const BoundOptions> opts = nullptr)
      : FutureState<U>(core),
        fn_(std::in_place, std::forward<G>(fn)),
        src_(std::move(src)),
        region_(region),
        opts_(std::move(opts)) {
    Continuation::ready = &on_ready;
  }

  // then(): subscribes the link to its source, or queues it now if the source is ready.
  static void start(std::shared_ptr<ThenLink> link) noexcept {
    ThenLink* l = link.get();
    ContinuationSlot& slot = l->src_->continuation;
    l->src_->feed(l);            // F1: before the subscription
    l->self_ = std::move(link);  // published to the fulfiller by subscribe's release (C3)
    if (!slot.subscribe(l)) on_ready(l);
  }

  void run_task(std::shared_ptr<ThenLink>& self) noexcept {
    if constexpr (kFlatten) {
      if (forwarding_) {
        std::shared_ptr<FutureState<U>> inner = std::move(inner_);
        move_outcome(*inner, *this);
        inner.reset();
        complete_in_strand(*this);
        return;
      }
    }
    std::shared_ptr<FutureState<T>> src = std::move(src_);
    std::exception_ptr e = src->counter.take_error();
    if (!e) {
      try {
        if constexpr (kFlatten) {
          R inner = call(*src);
          src.reset();
          fn_.reset();
          if (!inner.valid())
            throw UsageError("Future::then(): the continuation returned an empty Future (moved from, or read)");
          forward(FutureAccess::take(inner), self);
          return;
        } else if constexpr (std::is_void_v<R>) {
          call(*src);
        } else {
          this->value.emplace(call(*src));
        }
      } catch (...) {
        e = std::current_exception();
      }
    }
    src.reset();  // frees the previous link
    fn_.reset();
    if (e) this->counter.record_exception(std::move(e));
    complete_in_strand(*this);
  }

  void abandon() noexcept {
    src_.reset();
    fn_.reset();
    if constexpr (kFlatten) inner_.reset();
    this->counter.record_exception(std::make_exception_ptr(BrokenPromise(
        "Future::then(): the continuation did not run: its scheduler had shut down (or was destroyed, or "
        "inherited through fork()) before the future it waited for completed")));
    complete(*this);
  }

 private:
  static void on_ready(Continuation* c) noexcept {
    auto* l = static_cast<ThenLink*>(c);
    // Read before the push: the task may run, and free the link, at once.
    SchedulerCore* core = l->core;
    const std::uint64_t live = l->live;
    const std::uint64_t region = l->region_;
    const FutureCore* joins = l;
    // The options outlive the call: the task may run, and free the link, before it returns.
    const std::shared_ptr<const BoundOptions> opts = l->opts_;
    queue_continuation(core, live, ContinuationTask<ThenLink>(std::move(l->self_)), region, joins, opts.get());
  }

  decltype(auto) call(FutureState<T>& src) {
    if constexpr (std::is_void_v<T>)
      return std::invoke(*fn_);
    else
      return std::invoke(*fn_, std::move(*src.value));
  }

  // fn returned `inner`: complete with it, now if it is ready, else from a second task.
  void forward(std::shared_ptr<FutureState<U>> inner, std::shared_ptr<ThenLink>& self) noexcept {
    FutureState<U>* in = inner.get();
    inner_ = std::move(inner);
    forwarding_ = true;
    in->feed(this);           // F1: before the subscription
    self_ = std::move(self);  // published by subscribe's release, as in start()
    if (in->continuation.subscribe(this)) return;
    std::shared_ptr<ThenLink> keep = std::move(self_);
    inner = std::move(inner_);
    move_outcome(*inner, *this);
    inner.reset();
    complete_in_strand(*this);
  }

  std::optional<F> fn_;  // before src_: a throwing copy of fn leaves the caller's future intact
  std::shared_ptr<FutureState<T>> src_;
  std::shared_ptr<ThenLink> self_;  // while subscribed: the slot's reference
  [[no_unique_address]] std::conditional_t<kFlatten, std::shared_ptr<FutureState<U>>, None> inner_;
  std::uint64_t region_;
  std::shared_ptr<const BoundOptions> opts_;  // then(fn, options); null: none
  bool forwarding_ = false;
};

template <class T>
struct PromiseState : FutureState<T> {
  using FutureState<T>::FutureState;
  std::atomic<bool> settled{false};       // set_value/set_exception/the destructor claimed it
  std::atomic<bool> future_taken{false};  // get_future() was called
};

}  // namespace detail

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

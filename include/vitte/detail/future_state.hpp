// The state behind a Future (future.hpp): its continuation slot, the shared state, and how
// a continuation's task is queued (the strand, the route). Included by future.hpp.
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
  // Runs `fn` into this state; returns how it ended (its task is counted by it).
  template <class F>
  RunEnd fulfil(F& fn) noexcept {
    RunEnd end = RunEnd::Ok;
    try {
      if constexpr (std::is_void_v<T>)
        fn();
      else
        value.emplace(fn());
    } catch (...) {
      end = counter.record_exception(std::current_exception());
    }
    continuation.make_ready();
    counter.done(nullptr);  // the closure still holds a reference to this state here
    return end;
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

}  // namespace detail
}  // namespace vitte

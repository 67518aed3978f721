// Future<T>: the result of Scheduler::async().
//
// get() waits like TaskGroup::wait() (a worker runs other tasks meanwhile, other threads
// sleep), then returns the value or rethrows the task's exception. The same hazard as
// TaskGroup::wait() applies: a task holding a mutex across get() should call it inside
// vitte::isolate(). A future can be
// dropped unread: the task still runs and join_all() still waits for it.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

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

template <class T>
struct FutureState {
  FutureState() { counter.add(nullptr); }
  explicit FutureState(SchedulerCore* c) : core(c) { counter.add(nullptr); }
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
  WaitCounter counter{/*cancel_on_error=*/false};
  ContinuationSlot continuation;
  SchedulerCore* core = nullptr;  // the scheduler continuations run on
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
};

template <class T>
struct FutureAccess;

}  // namespace detail

template <class T>
class Future {
 public:
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
    detail::wait_for(state_->counter);
  }

  // Waits, then returns the result (moved out) or rethrows the task's exception.
  // The future is empty afterwards.
  T get() {
    wait();
    auto s = std::move(state_);
    if (auto e = s->counter.take_error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return std::move(*s->value);
  }

 private:
  friend struct detail::FutureAccess<T>;
  void check() const {
    if (!state_) throw UsageError("Future::get()/wait() on an empty future (already read?)");
  }
  std::shared_ptr<detail::FutureState<T>> state_;
};

namespace detail {

// For the coroutine awaiter (coro_when.hpp): the state, and the result once the slot said
// ready (C3), without waiting on the counter that fulfil() releases a moment later.
template <class T>
struct FutureAccess {
  static FutureState<T>* state(const Future<T>& f) noexcept { return f.state_.get(); }
  static T take(Future<T>& f) {
    auto s = std::move(f.state_);
    if (std::exception_ptr e = s->counter.take_error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return std::move(*s->value);
  }
};

}  // namespace detail
}  // namespace vitte

// then(): one link of a continuation chain (future.hpp), and a Promise's state. Included
// by future.hpp.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "vitte/detail/future_state.hpp"

namespace vitte {
namespace detail {

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
}  // namespace vitte

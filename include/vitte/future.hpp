// Future<T>: the result of Scheduler::async().
//
// get() waits like TaskGroup::wait() (a worker runs other tasks meanwhile, other threads
// sleep), then returns the value or rethrows the task's exception. The same hazard as
// TaskGroup::wait() applies: a task holding a mutex across get() should call it inside
// vitte::isolate(). A future can be
// dropped unread: the task still runs and join_all() still waits for it.
#pragma once

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

template <class T>
struct FutureState {
  FutureState() { counter.add(nullptr); }
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
    counter.done(nullptr);  // the closure still holds a reference to this state here
  }
  WaitCounter counter{/*cancel_on_error=*/false};
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
};

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
  void check() const {
    if (!state_) throw UsageError("Future::get()/wait() on an empty future (already read?)");
  }
  std::shared_ptr<detail::FutureState<T>> state_;
};

}  // namespace vitte

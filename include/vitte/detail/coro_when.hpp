// when_all / when_any over vitte::task (and futures, wrapped as tasks), and co_await of a
// vitte::Future. Included by coro.hpp; see there for the contracts.
//
// Both combinators start every child at once: all but the first are queued on this
// worker's deque (thieves take them), the first runs here by symmetric transfer. The
// children report to a JoinScope in the awaiter (coro_promise.hpp, J1-J4) declared in
// full before any starts, so the last child to finish resumes the parent. Each call owns
// a std::stop_source linked to the parent's token: when_all triggers it on the first
// error, when_any on the first child to finish; the children inherit its token.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "vitte/coro.hpp"  // task, TaskAccess (coro.hpp includes this file at its end)
#include "vitte/detail/coro_promise.hpp"
#include "vitte/detail/coro_suspend.hpp"
#include "vitte/future.hpp"
#include "vitte/when_all.hpp"  // WhenAnyResult; when_all/when_any of futures alone

namespace vitte {

namespace detail {

template <class T>
using NonVoid = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
NonVoid<T> take_result(TaskPromise<T>& p) {
  if constexpr (std::is_void_v<T>) {
    p.result();
    return {};
  } else {
    return p.result();
  }
}

// The scope, stop source and the link from the parent's token, shared by both awaiters.
class Fanout {
 protected:
  Fanout() = default;
  // Awaiters may be moved before they are awaited (GCC moves the operand of co_await
  // into the frame); nothing has started then, so the copy starts fresh.
  Fanout(Fanout&&) noexcept {}
  Fanout& operator=(const Fanout&) = delete;

  struct Forward {
    std::stop_source* to;
    void operator()() const noexcept { to->request_stop(); }
  };

  // Prepares the scope for `n` children resumed into `parent`; returns their token.
  template <class P>
  std::stop_token open(std::coroutine_handle<P> parent, std::size_t n, bool any) {
    worker_ = &require_worker("vitte::when_all/when_any");
    scope_.stop = &stop_;
    scope_.kind = any ? JoinScope::Kind::Any : JoinScope::Kind::All;
    scope_.waiter = parent;
    scope_.count.store(static_cast<std::int64_t>(n), std::memory_order_relaxed);  // J1: all declared
    if (const std::stop_token* t = token_of(parent); t != nullptr && t->stop_possible()) link_.emplace(*t, Forward{&stop_});
    return stop_.get_token();
  }
  template <class T>
  void adopt(std::coroutine_handle<TaskPromise<T>> h, const std::stop_token& token) noexcept {
    TaskPromise<T>& p = h.promise();
    p.scope = &scope_;
    p.token = token;
  }
  // Queues the children but the first, returns the first to run here.
  Transfer launch(std::coroutine_handle<>* hs, std::size_t n) noexcept {
    for (std::size_t i = n; i-- > 1;) push_resume(worker_, hs[i]);
    return transfer_to(hs[0]);
  }
  void close() noexcept { link_.reset(); }
  // The range forms: start every task of `ts` into `parent`'s scope.
  template <class T, class P>
  Transfer start_range(std::vector<task<T>>& ts, std::coroutine_handle<P> parent, bool any, const char* what) {
    std::vector<std::coroutine_handle<>> hs;
    hs.reserve(ts.size());
    for (task<T>& t : ts) hs.push_back(TaskAccess::start(t, what));
    const std::stop_token token = open(parent, ts.size(), any);
    for (task<T>& t : ts) adopt(TaskAccess::handle(t), token);
    return launch(hs.data(), hs.size());
  }

  JoinScope scope_;
  std::stop_source stop_;
  std::optional<std::stop_callback<Forward>> link_;
  WorkerLocal* worker_ = nullptr;
};

template <class... Ts>
class WhenAllAwaiter : Fanout {
 public:
  explicit WhenAllAwaiter(task<Ts>... ts) : tasks_(std::move(ts)...) {}
  bool await_ready() const noexcept { return sizeof...(Ts) == 0; }
  template <class P>
  Transfer await_suspend(std::coroutine_handle<P> parent) {
    std::coroutine_handle<> hs[sizeof...(Ts)];
    std::apply([&](task<Ts>&... t) {
      std::size_t i = 0;
      ((hs[i++] = TaskAccess::start(t, "vitte::when_all")), ...);
    }, tasks_);
    const std::stop_token token = open(parent, sizeof...(Ts), false);
    std::apply([&](task<Ts>&... t) { (adopt(TaskAccess::handle(t), token), ...); }, tasks_);
    return launch(hs, sizeof...(Ts));
  }
  std::tuple<NonVoid<Ts>...> await_resume() {
    close();
    if (std::exception_ptr e = scope_.take_error()) std::rethrow_exception(e);
    return std::apply([](task<Ts>&... t) { return std::tuple<NonVoid<Ts>...>(take_result(TaskAccess::handle(t).promise())...); },
                      tasks_);
  }

 private:
  std::tuple<task<Ts>...> tasks_;
};

template <class T>
class WhenAllRangeAwaiter : Fanout {
 public:
  explicit WhenAllRangeAwaiter(std::vector<task<T>> ts) : tasks_(std::move(ts)) {}
  bool await_ready() const noexcept { return tasks_.empty(); }
  template <class P>
  Transfer await_suspend(std::coroutine_handle<P> parent) {
    return start_range(tasks_, parent, false, "vitte::when_all");
  }
  auto await_resume() {
    close();
    if (std::exception_ptr e = scope_.take_error()) std::rethrow_exception(e);
    if constexpr (std::is_void_v<T>) {
      for (task<T>& t : tasks_) TaskAccess::handle(t).promise().result();
    } else {
      std::vector<T> out;
      out.reserve(tasks_.size());
      for (task<T>& t : tasks_) out.push_back(TaskAccess::handle(t).promise().result());
      return out;
    }
  }

 private:
  std::vector<task<T>> tasks_;
};

template <class T>
class WhenAnyAwaiter : Fanout {
 public:
  explicit WhenAnyAwaiter(std::vector<task<T>> ts) : tasks_(std::move(ts)) {
    if (tasks_.empty()) throw UsageError("vitte::when_any() of no tasks: nothing could finish first");
  }
  bool await_ready() const noexcept { return false; }
  template <class P>
  Transfer await_suspend(std::coroutine_handle<P> parent) {
    return start_range(tasks_, parent, true, "vitte::when_any");
  }
  WhenAnyResult<T> await_resume() {
    close();
    // acquire: pairs with the winner's CAS (J3 holds for `first` as for `error`).
    PromiseBase* first = scope_.first.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      auto h = TaskAccess::handle(tasks_[i]);
      if (static_cast<PromiseBase*>(&h.promise()) != first) continue;
      if constexpr (std::is_void_v<T>) {
        h.promise().result();
        return WhenAnyResult<void>{i};
      } else {
        return WhenAnyResult<T>{i, h.promise().result()};
      }
    }
    throw UsageError("vitte::when_any: no child finished first (internal error)");
  }

 private:
  std::vector<task<T>> tasks_;
};

// co_await of a Future: the worker is released until the future is ready (its
// ContinuationSlot resumes us on the fulfiller's worker, or our node when the fulfiller is
// another thread); a stop request takes the subscription back and resumes us with
// Cancelled.
template <class T>
class FutureAwaiter : Interruptible, Continuation {
 public:
  explicit FutureAwaiter(Future<T>& f) : future_(f) {
    if (!f.valid()) throw UsageError("co_await of an empty vitte::Future (already read?)");
    ready = &on_ready;
  }
  FutureAwaiter(FutureAwaiter&& o) noexcept : Interruptible(), Continuation{&on_ready}, future_(o.future_) {}
  bool await_ready() const noexcept { return state().continuation.is_ready(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    if (!begin(h, token_of(h), Lane::Local, -1)) return false;
    // F4: a wait of this region may run the tasks this future depends on (future_core.hpp).
    if (const std::uint64_t region = tls_worker->isolation; region != 0) state().awaited_from(region);
    if (!state().continuation.subscribe(this)) {  // ready in the meantime
      event(Outcome::Event);
      return false;
    }
    return end(&take_back);
  }
  T await_resume() {
    if (finish() != Outcome::Event) throw_cancelled(Outcome::Stopped, "co_await vitte::Future");
    // The slot said ready (C3): the outcome is in place, though fulfil() may not have
    // released the counter a blocking get() waits on yet; read it without waiting.
    std::shared_ptr<FutureState<T>> s = FutureAccess::take(future_);
    if (std::exception_ptr e = s->counter.take_error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return std::move(*s->value);
  }

 private:
  FutureState<T>& state() const noexcept { return *FutureAccess::peek(future_); }
  static void on_ready(Continuation* c) noexcept {
    static_cast<FutureAwaiter*>(c)->event(Outcome::Event);
  }
  static bool take_back(Interruptible* i) noexcept {
    FutureAwaiter* self = static_cast<FutureAwaiter*>(i);
    return self->state().continuation.unsubscribe(self);
  }
  Future<T>& future_;
};

// A future as a task, for when_all/when_any.
template <class T>
task<T> future_task(Future<T> f) {
  co_return co_await FutureAwaiter<T>(f);
}

template <class T>
task<T> as_task(task<T>&& t) noexcept {
  return std::move(t);
}
template <class T>
task<T> as_task(Future<T>&& f) {
  return future_task(std::move(f));
}
template <class A>
using TaskValue = typename decltype(as_task(std::declval<A&&>()))::value_type;

template <class A>
inline constexpr bool kIsTask = false;
template <class T>
inline constexpr bool kIsTask<task<T>> = true;

}  // namespace detail

// co_await vitte::when_all(a, b, ...): runs every task (or future) in parallel; returns a
// tuple of their results (std::monostate for void), or rethrows the first error after
// asking the others to stop and waiting for them to end.
// (At least one argument is a task; futures alone go to when_all.hpp's overload, which
// returns a Future that a task co_awaits the same way.)
template <class... As>
  requires(detail::kIsTask<std::remove_cvref_t<As>> || ...)
detail::WhenAllAwaiter<detail::TaskValue<As>...> when_all(As&&... as) {
  return detail::WhenAllAwaiter<detail::TaskValue<As>...>(detail::as_task(std::forward<As>(as))...);
}
// The same over a range: returns std::vector<T> in input order (nothing for void).
template <class T>
detail::WhenAllRangeAwaiter<T> when_all(std::vector<task<T>> ts) {
  return detail::WhenAllRangeAwaiter<T>(std::move(ts));
}
// co_await vitte::when_any(tasks): runs every task in parallel; the first to finish wins:
// returns its index and value (or rethrows its error). The others are asked to stop and
// waited for. UsageError for an empty range.
template <class T>
detail::WhenAnyAwaiter<T> when_any(std::vector<task<T>> ts) {
  return detail::WhenAnyAwaiter<T>(std::move(ts));
}
template <class T, class... Ts>
detail::WhenAnyAwaiter<T> when_any(task<T>&& first, task<Ts>&&... rest) {
  static_assert((std::is_same_v<T, Ts> && ...), "when_any of tasks needs one result type");
  std::vector<task<T>> v;
  v.reserve(1 + sizeof...(Ts));
  v.push_back(std::move(first));
  (v.push_back(std::move(rest)), ...);
  return detail::WhenAnyAwaiter<T>(std::move(v));
}

// co_await future inside a vitte::task.
template <class T>
detail::FutureAwaiter<T> operator co_await(Future<T>& f) {
  return detail::FutureAwaiter<T>(f);
}
template <class T>
detail::FutureAwaiter<T> operator co_await(Future<T>&& f) {
  return detail::FutureAwaiter<T>(f);
}

}  // namespace vitte

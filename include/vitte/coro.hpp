// Coroutines: vitte::task<T>, a lazy C++20 coroutine that runs on the scheduler.
//
//   vitte::task<long> fib(int n) {
//     if (n < 2) co_return n;
//     vitte::task<long> a = fib(n - 1);
//     co_await vitte::fork(a);            // queued on this worker's deque; thieves take it
//     long b = co_await fib(n - 2);       // runs here at once (symmetric transfer)
//     co_await vitte::join();             // suspends until the forked children finished
//     co_return a.result() + b;
//   }
//   long x = vitte::sync_wait(sched, fib(30));   // from any thread
//   sched.start(server_loop());                  // detached; join_all() waits for it
//   sched.start(serve(req), {.group = ide});     // under options (task_options.hpp)
//
// Inside a task, co_await works on:
//   - another task<T> (runs it now, here; its result or exception comes back);
//   - vitte::fork(t) / vitte::join(): fork-join; the children run in parallel on the same
//     deques and steals as plain tasks; join() rethrows the first child's exception;
//   - when_all(...) / when_any(...) of tasks and futures (the children run in parallel;
//     when_all rethrows the first error and asks the others to stop; when_any returns the
//     first to finish and asks the others to stop; both wait for every child to end);
//   - a vitte::Future<T> (the worker is released until the value is there);
//   - vitte::yield() (the worker runs other ready work first, then resumes us);
//   - vitte::sleep_for(d) / sleep_until(t) (the worker is released; the node's timer
//     queue resumes us on the urgent lane);
//   - vitte::schedule_on(node) (resume on a worker of that NUMA node);
//   - vitte::reschedule(options) (go on under other options: a group's level, a priority);
//   - vitte::get_stop_token() (the task's stop token).
//
// Contracts:
// - A task runs only on a scheduler's workers; it starts when first awaited, forked, or
//   handed to when_all/when_any, sync_wait or Scheduler::start. A task destroyed unstarted
//   frees its frame and arguments without running.
// - Frames come from the running worker's frame pool (no heap allocation in the common
//   case, no lock); fork() queues a 128-byte frame like vitte::spawn.
// - Exceptions propagate through co_await, join(), when_all and sync_wait.
// - Options (task_options.hpp): given to Scheduler::start or sync_wait, or taken on with
//   reschedule(), they hold for the coroutine and the tasks it awaits or forks: every
//   resumption from a queue (after a Future, a sleep, yield, when_all of futures) is routed
//   by them. Work that goes on by symmetric transfer (an awaited task that ran here, a
//   forked child that a join ran inline or a thief finished) runs inside whatever task
//   frame is running, and counts there. Forked children start on the worker's own deque.
// - Cancellation: a task inherits the stop token of whoever started it (sync_wait and
//   start take one; when_all/when_any make their own, linked to the parent's). When the
//   token is triggered, a task suspended in sleep_for/sleep_until, on a Future, in yield
//   or schedule_on resumes with vitte::Cancelled from that co_await, and the same awaits
//   throw Cancelled at once once it was triggered. Other code observes it through
//   get_stop_token(). A scheduler shutdown wakes sleeping tasks the same way (timer.hpp).
// - A forked task must be joined before its result() is read; it may outlive the coroutine
//   that forked it. Children forked and never joined (an exception between fork and join,
//   a co_return before the join) are joined when the coroutine ends: it finishes only
//   once they have, without blocking a worker; their first error becomes its error unless
//   it failed itself (its own exception wins; theirs, often the same cancellation, are
//   dropped).
// - Hazard: sync_wait() called from inside a task blocks that worker the way
//   TaskGroup::wait() does (it runs other work meanwhile); prefer co_await.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "vitte/detail/clock.hpp"
#include "vitte/detail/coro_awaits.hpp"
#include "vitte/detail/coro_promise.hpp"
#include "vitte/detail/coro_suspend.hpp"
#include "vitte/detail/timer_entry.hpp"
#include "vitte/detail/user_timer.hpp"  // add_saturated, saturated_ns
#include "vitte/future.hpp"
#include "vitte/scheduler.hpp"

namespace vitte {

namespace detail {
struct TaskAccess;
[[noreturn]] void throw_bad_start(const char* how, bool empty);
[[noreturn]] void throw_bad_result(bool not_forked);
}

template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      destroy();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { destroy(); }

  // True while the task holds a coroutine (not moved from).
  bool valid() const noexcept { return static_cast<bool>(h_); }

  // The result of a forked task after the join that followed its fork (rethrows its
  // exception). UsageError before that, or for a task that was not forked.
  T result() {
    if (!h_ || !h_.promise().forked || !h_.promise().joined()) [[unlikely]]
      detail::throw_bad_result(!h_ || !h_.promise().forked);
    return h_.promise().result();
  }

  struct Awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    template <class P>
    detail::Transfer await_suspend(std::coroutine_handle<P> parent) noexcept {
      promise_type& p = h.promise();
      p.continuation = parent;
      if (const std::stop_token* t = detail::token_of(parent)) p.token = *t;
      if constexpr (std::is_base_of_v<detail::PromiseBase, P>) p.options.inherit(parent.promise().options);
      return detail::transfer_to(h);
    }
    T await_resume() { return h.promise().result(); }
  };
  // Runs the task here and now; its result or exception is the co_await's.
  Awaiter operator co_await() & { return Awaiter{start("co_await")}; }
  Awaiter operator co_await() && { return Awaiter{start("co_await")}; }

 private:
  friend promise_type;
  template <class>
  friend class task;
  friend struct detail::TaskAccess;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

  std::coroutine_handle<promise_type> start(const char* how) {
    if (!h_ || h_.promise().started) [[unlikely]]
      detail::throw_bad_start(how, !h_);
    h_.promise().started = true;
    return h_;
  }
  void destroy() noexcept;

  std::coroutine_handle<promise_type> h_{};
};

namespace detail {

template <class T>
task<T> TaskPromise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline task<void> TaskPromise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

// Private access to a task's coroutine for the pieces below (fork, when_all, roots).
struct TaskAccess {
  template <class T>
  static std::coroutine_handle<TaskPromise<T>> start(task<T>& t, const char* how) {
    return t.start(how);
  }
  template <class T>
  static std::coroutine_handle<TaskPromise<T>> handle(const task<T>& t) noexcept {
    return t.h_;
  }
};

}  // namespace detail

template <class T>
void task<T>::destroy() noexcept {
  if (!h_) return;
  promise_type& p = h_.promise();
  // Forked and not joined: the child may be running on another worker right now. Its
  // parent's end destroys it once it finished (J6); nothing waits here.
  if (p.forked && !p.joined()) [[unlikely]] {
    p.orphaned = true;
    h_ = nullptr;
    return;
  }
  h_.destroy();
  h_ = nullptr;
}

// ---- fork / join / stop token ---------------------------------------------------------

// co_await vitte::fork(t): queues `t` on this worker's deque and goes on at once. The
// task object stays with the caller (its result() after the join).
template <class T>
detail::ForkRequest fork(task<T>& t) {
  auto h = detail::TaskAccess::start(t, "vitte::fork");
  return detail::ForkRequest{&h.promise(), h};
}
// co_await vitte::join(): suspends until every task forked since the last join finished;
// rethrows the first exception one of them threw.
inline detail::JoinRequest join() noexcept { return {}; }
// co_await vitte::get_stop_token(): the running task's stop token.
inline detail::StopTokenRequest get_stop_token() noexcept { return {}; }

// ---- roots: sync_wait and Scheduler::start ---------------------------------------------

namespace detail {

// The outermost coroutine of a sync_wait or start: awaits the user's task, keeps its
// result, and tells the waiter (sync_wait) or the scheduler's detached counter (start)
// when it is done. A root counts as one detached task of its scheduler for its whole
// life, so join_all() and shutdown wait for suspended coroutines too.
template <class T>
struct RootResult {
  std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
  std::exception_ptr error;
};

struct RootPromise;
struct Root {
  using promise_type = RootPromise;
  std::coroutine_handle<RootPromise> h;
};

// Out of line (src/coro/coro.cpp): the scheduler's books for roots.
// Counts and queues a root (with `opts`, the options its task was given; null: none);
// UsageError after shutdown.
void start_root(Scheduler& s, std::coroutine_handle<RootPromise> h, const BoundOptions* opts = nullptr);
void root_finished(SchedulerCore* core, std::exception_ptr e) noexcept;  // e: a detached root's error

// Hands a detached root's error to its final awaiter.
struct StashError {
  const std::exception_ptr* e;  // a pointer: an awaiter holding an exception_ptr was miscompiled
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<RootPromise> h) noexcept;
  void await_resume() const noexcept {}
};

struct RootPromise {
  SchedulerCore* core = nullptr;
  WaitCounter* signal = nullptr;  // sync_wait: the caller waits on it; start: null
  std::exception_ptr detached_error;

  static void* operator new(std::size_t n) { return coro_frame_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { coro_frame_free(p, n); }
  Root get_return_object() noexcept { return Root{std::coroutine_handle<RootPromise>::from_promise(*this)}; }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<RootPromise> h) noexcept {
      RootPromise& p = h.promise();
      SchedulerCore* core = p.core;
      if (p.signal != nullptr) {
        p.signal->done(nullptr);  // the caller of sync_wait destroys this frame
        root_finished(core, nullptr);
      } else {
        std::exception_ptr e = std::move(p.detached_error);
        h.destroy();
        root_finished(core, std::move(e));
      }
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() const noexcept { std::terminate(); }  // the bodies catch all
};

// Runs a task to its end without rethrowing: the root reads the child's promise itself.
// (Roots keep no try/catch around a co_await: GCC 12 miscounts the references of an
// exception caught there and later rethrown, a heap use-after-free under valgrind.)
inline bool StashError::await_suspend(std::coroutine_handle<RootPromise> h) noexcept {
  h.promise().detached_error = *e;
  return false;
}

template <class T>
struct RunToEnd {
  std::coroutine_handle<TaskPromise<T>> h;
  bool await_ready() const noexcept { return false; }
  Transfer await_suspend(std::coroutine_handle<> root) noexcept {
    h.promise().continuation = root;
    return transfer_to(h);
  }
  void await_resume() const noexcept {}
};

template <class T>
Root sync_root(task<T> t, RootResult<T>* out) {
  auto h = TaskAccess::start(t, "vitte::sync_wait");
  co_await RunToEnd<T>{h};
  TaskPromise<T>& p = h.promise();
  if (p.error)
    out->error = p.error;
  else if constexpr (std::is_void_v<T>)
    out->value.emplace();
  else
    out->value.emplace(std::move(*p.value));
}

template <class T>
Root detached_root(task<T> t) {
  auto h = TaskAccess::start(t, "Scheduler::start");
  co_await RunToEnd<T>{h};
  if (h.promise().error) co_await StashError{&h.promise().error};
}

// Owns a root frame until it ran (sync_wait) or was handed to the scheduler (start).
struct RootGuard {
  std::coroutine_handle<RootPromise> h;
  ~RootGuard() {
    if (h) h.destroy();
  }
};

}  // namespace detail

namespace detail {
template <class T>
T sync_wait_bound(Scheduler& sched, task<T> t, std::unique_ptr<OwnedOptions> opts, std::stop_token token) {
  detail::TaskAccess::handle(t).promise().token = std::move(token);
  const BoundOptions* bound = opts != nullptr ? &opts->bound : nullptr;
  if (opts != nullptr) detail::TaskAccess::handle(t).promise().options.own(std::move(opts));
  detail::RootResult<T> out;
  detail::WaitCounter signal{detail::Joins::Value};
  detail::RootGuard root{detail::sync_root(std::move(t), &out).h};
  root.h.promise().signal = &signal;
  signal.add(nullptr);
  try {
    detail::start_root(sched, root.h, bound);
  } catch (...) {
    signal.done(nullptr);
    throw;
  }
  try {
    detail::wait_for(signal, detail::core_of(sched));
  } catch (const Deadlock&) {
    // A deterministic run deadlocked with the coroutine suspended: its frame, `signal` and
    // `out` must outlive any resumption, so the run is given up (none comes) and the frame
    // is left where it is.
    root.h = {};
    detail::abandon_run(detail::core_of(sched));
    throw;
  }
  if (out.error) std::rethrow_exception(out.error);
  if constexpr (!std::is_void_v<T>) return std::move(*out.value);
}
}  // namespace detail

// Runs `t` on `sched` and blocks the calling thread until it finished; returns its result
// or rethrows its exception. From a thread that is not a worker it sleeps; from a worker
// it runs other work meanwhile (the TaskGroup::wait() hazard applies). `token` reaches the
// task and everything it starts (see Cancellation above); `opts` (task_options.hpp) hold
// for all of it, as for Scheduler::start. UsageError for options that would not apply and
// after shutdown began.
template <class T>
T sync_wait(Scheduler& sched, task<T> t, std::stop_token token = {}) {
  if (!t.valid()) throw UsageError("vitte::sync_wait() of an empty vitte::task (moved from?)");
  return detail::sync_wait_bound(sched, std::move(t), nullptr, std::move(token));
}
template <class T>
T sync_wait(Scheduler& sched, task<T> t, const TaskOptions& opts, std::stop_token token = {}) {
  if (!t.valid()) throw UsageError("vitte::sync_wait() of an empty vitte::task (moved from?)");
  return detail::sync_wait_bound(
      sched, std::move(t), detail::coroutine_options(detail::core_of(sched), opts, "vitte::sync_wait(options)"),
      std::move(token));
}

template <class T>
void Scheduler::start(task<T> t, const TaskOptions& opts, std::stop_token token) {
  if (!t.valid()) throw UsageError("Scheduler::start() of an empty vitte::task (moved from?)");
  std::unique_ptr<detail::OwnedOptions> owned =
      detail::coroutine_options(core_.get(), opts, "Scheduler::start(task, options)");
  const detail::BoundOptions* bound = owned != nullptr ? &owned->bound : nullptr;
  detail::TaskAccess::handle(t).promise().token = std::move(token);
  if (owned != nullptr) detail::TaskAccess::handle(t).promise().options.own(std::move(owned));
  detail::RootGuard root{detail::detached_root(std::move(t)).h};
  detail::start_root(*this, root.h, bound);  // the frame destroys itself when it ends
  root.h = nullptr;
}

// ---- cooperative awaits (their awaiters: detail/coro_awaits.hpp) ----------------------------

// co_await vitte::yield(): lets the worker run other ready work first (its own deque, then
// its node's queue), then resumes on this node. With nothing else ready there, a coroutine
// without options goes on at once (no queue, no hand-off); one with options (a node, a
// priority) and every yield of a deterministic run go through the queue.
inline detail::YieldAwaiter yield() noexcept { return {}; }
// co_await vitte::sleep_until(t) / sleep_for(d): releases the worker until the deadline (on
// the scheduler's clock, Scheduler::now(): virtual in deterministic mode);
// resumes on this node's urgent lane. A deadline in the past still suspends once (like
// yield, through the timer queue), so a loop of sleeps cannot starve other work.
inline detail::SleepAwaiter sleep_until(std::chrono::steady_clock::time_point t) noexcept {
  return detail::SleepAwaiter(t);
}
template <class Rep, class Period>
detail::SleepAwaiter sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  // Saturating: a huge duration (hours::max()) sleeps until cancelled, not until an
  // overflowed, past deadline.
  return detail::SleepAwaiter(detail::add_saturated(detail::steady_now(), detail::saturated_ns(d)));
}
// co_await vitte::schedule_on(node): resumes on a worker of NUMA node `node` (a node
// without CPUs: the nearest one with workers), and stays there: the coroutine's options
// (if any) keep everything but their node. UsageError for a node that does not exist.
inline detail::ScheduleOnAwaiter schedule_on(unsigned node) noexcept { return {node}; }
// co_await vitte::reschedule(opts): see detail::RescheduleAwaiter.
inline detail::RescheduleAwaiter reschedule(TaskOptions opts) { return {std::move(opts)}; }

}  // namespace vitte

#include "vitte/detail/coro_when.hpp"  // when_all, when_any, co_await Future

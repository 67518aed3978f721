// Task: one unit of work that has been made but not yet handed to a scheduler.
//
//   vitte::Task t([] { ... });                 // packs the closure, runs nothing yet
//   sched.submit(std::move(t));                // queues it; join_all() waits for it
//   sched.submit(vitte::Task(f), {.node = 1}); // with options (task_options.hpp)
//
// A Task owns its frame until submit() takes it; a Task destroyed unsubmitted destroys
// its closure without running it. Small closures (up to 96 bytes) live inside the frame;
// larger ones are boxed on the heap.
//
// A closure's destructor must not throw: closures are destroyed inside the scheduler's
// noexcept paths (after running, or unrun when a group is cancelled or a task refused),
// so a destructor that throws ends the process with std::terminate. This holds for every
// closure the API takes (submit, TaskGroup::run, async, then, graph tasks, timers).
//
// vitte::spawn(f), called from inside a task, queues a detached child on the calling
// worker's own deque (the cheapest way to fan out fire-and-forget work); the scheduler's
// join_all() waits for it too. vitte::spawn(f, options) places it as the options say.
#pragma once

#include <type_traits>
#include <utility>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

class Scheduler;

namespace detail {
[[noreturn]] void throw_spawn_outside_worker();
}

class Task {
 public:
  // Packs `fn` (callable with no arguments); nothing runs until it is submitted.
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Task> && !std::is_same_v<std::decay_t<F>, detail::TaskFrame*>)
  explicit Task(F&& fn) : frame_(detail::pack(detail::tls_worker, std::forward<F>(fn))) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>, "a task is callable with no arguments");
    // A worker counts its boxing in pack(); elsewhere the scheduler it is submitted to does.
    if constexpr (!detail::kFitsInline<std::decay_t<F>>) boxed_off_worker_ = detail::tls_worker == nullptr;
  }
  // The former spelling of Task(fn) (CHANGELOG.md: "spawn" now means only vitte::spawn).
  template <class F>
  [[deprecated("use vitte::Task(fn)")]] static Task spawn(F&& fn) {
    return Task(std::forward<F>(fn));
  }

  Task() noexcept = default;
  Task(Task&& o) noexcept
      : frame_(std::exchange(o.frame_, nullptr)), boxed_off_worker_(std::exchange(o.boxed_off_worker_, false)) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      frame_ = std::exchange(o.frame_, nullptr);
      boxed_off_worker_ = std::exchange(o.boxed_off_worker_, false);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  // True while the task holds work that has not been submitted.
  explicit operator bool() const noexcept { return frame_ != nullptr; }

 private:
  friend class Scheduler;
  explicit Task(detail::TaskFrame* f) noexcept : frame_(f) {}
  detail::TaskFrame* release() noexcept {
    boxed_off_worker_ = false;
    return std::exchange(frame_, nullptr);
  }
  void reset() noexcept {
    if (frame_ != nullptr) {
      frame_->op(frame_, detail::FrameOp::Discard);
      detail::free_frame(frame_);
      frame_ = nullptr;
      boxed_off_worker_ = false;
    }
  }

  detail::TaskFrame* frame_ = nullptr;
  // The closure was boxed by a thread that is not a worker, where no worker's metrics count
  // it: the scheduler that takes the task does (metrics().total.boxed).
  bool boxed_off_worker_ = false;
};

// Queues `fn` as a detached child of the running task: on this worker's own deque, or
// where `opts` say (task_options.hpp: another node's queue, a group's level). The
// scheduler's join_all() waits for it. UsageError when called outside a worker thread (use
// Scheduler::submit there) and for options that would not apply.
template <class F>
void spawn(F&& fn) {
  detail::WorkerLocal* w = detail::tls_worker;
  if (w == nullptr) detail::throw_spawn_outside_worker();
  detail::TaskFrame* f = detail::pack(w, std::forward<F>(fn));
  f->counter = w->detached;
  w->detached->add(w);
  detail::route(w->core, w, f);
}
template <class F>
void spawn(F&& fn, const TaskOptions& opts) {
  detail::WorkerLocal* w = detail::tls_worker;
  if (w == nullptr) detail::throw_spawn_outside_worker();
  const detail::BoundOptions b = detail::bind_options(w->core, opts, "vitte::spawn(fn, options)");
  detail::TaskFrame* f = detail::pack(w, std::forward<F>(fn));
  f->counter = w->detached;
  w->detached->add(w);
  detail::route(w->core, w, f, detail::Route{.opts = &b});
}

}  // namespace vitte

// TaskGroup: fork-join over any number of tasks.
//
//   vitte::TaskGroup g;            // inside a task: binds to the running scheduler
//   g.run([&] { left(); });        // queued on this worker's deque, no heap allocation
//   right();
//   g.wait();                      // runs other work meanwhile; rethrows the first error
//
// Contract:
// - wait() returns when every task run() on this group has finished. On a worker it keeps
//   executing other tasks meanwhile (so fork-join never blocks a worker); on any other
//   thread it sleeps.
// - The first exception thrown by a task of the group is rethrown by wait(); tasks of
//   the group that have not started yet are then skipped (the group is cancelled), as
//   are tasks after cancel(). Later exceptions are counted in the metrics (failed).
// - One thread waits at a time: for a group made on a worker, that worker (it keeps the
//   group's books without atomics). run() may be called from any thread, also while the
//   owner waits; wait() returns once it saw the count at zero, and the group may be
//   destroyed right after it returns. The destructor
//   waits for unfinished tasks; an error it cannot rethrow there is written to stderr
//   rather than lost.
#pragma once

#include <memory>
#include <utility>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

class Scheduler;

class TaskGroup {
 public:
  // Binds to the scheduler of the calling worker; throws UsageError on other threads.
  TaskGroup();
  // Binds to `sched`; usable from any thread.
  explicit TaskGroup(Scheduler& sched) noexcept
      : core_(detail::core_of(sched)), live_(detail::live_of(core_)), counter_(detail::Joins::Group, detail::own_worker(core_)) {}
  // Binds to `sched` with options (task_options.hpp) for every run(): a node's queue, a
  // group's level with its priority and a deadline (relative to each run()), a name; even
  // from a worker. UsageError for options that would not apply.
  TaskGroup(Scheduler& sched, const TaskOptions& opts);
  // The same with options already bound (parallel_for shares one binding among its groups);
  // null: none.
  TaskGroup(Scheduler& sched, std::shared_ptr<const detail::BoundOptions> opts);
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup();

  template <class F>
  void run(F&& fn) {
    detail::WorkerLocal* w = detail::tls_worker;
    // By token, not address: a newer scheduler at a destroyed one's address is not ours.
    const bool local = w != nullptr && w->core_live == live_;
    detail::TaskFrame* f = detail::pack(local ? w : nullptr, std::forward<F>(fn));
    f->counter = &counter_;
    counter_.add(local ? w : nullptr);
    if (opts_ != nullptr) [[unlikely]] {
      run_with_options(f, local ? w : nullptr);
    } else if (local) {
      detail::route(core_, w, f);
      return;
    } else {
      try {
        detail::submit_external(core_, live_, f, -1, "TaskGroup::run()");  // UsageError once it shuts down
      } catch (...) {
        f->op(f, detail::FrameOp::Discard);
        detail::delete_frame(f);
        counter_.done(nullptr);
        throw;
      }
    }
    // Boxed off the workers: no worker counted it (pack); the scheduler, alive since it
    // took the task, does.
    if constexpr (!detail::kFitsInline<std::decay_t<F>>) {
      if (!local) detail::note_external_boxed(core_);
    }
  }

  // Waits for every task of the group; rethrows the first exception one of them threw.
  // A group made on a worker is waited for on that worker (UsageError otherwise).
  // Hazard: on a worker, wait() runs other queued tasks on this thread meanwhile, on top
  // of the caller's stack. If the caller holds a mutex (or any non-reentrant state), an
  // unrelated task may try to take it here: a deadlock. Wait inside vitte::isolate() to
  // run only the region's own tasks (isolate.hpp). Each nested wait also costs the worker
  // some stack (Options::stack_size).
  // Rethrows the first error; a task that ended with vitte::Cancelled is not an error
  // (docs/errors.md) and is rethrown only with Rethrow::ErrorsAndCancellations.
  void wait(Rethrow what = Rethrow::Errors);
  // Skips the group's tasks that have not started yet.
  void cancel() noexcept { counter_.cancel(); }
  bool is_cancelled() const noexcept { return counter_.cancelled(); }

 private:
  // Queues f as the options say; on failure destroys it unrun and throws.
  void run_with_options(detail::TaskFrame* f, detail::WorkerLocal* w);

  detail::SchedulerCore* core_;
  // core_'s liveness token: run() and wait() from other threads refuse a destroyed
  // scheduler without touching it (liveness.hpp).
  std::uint64_t live_;
  // Made on one of core_'s workers, the group counts that worker's spawns and completions
  // in plain fields (no atomic RMW); see WaitCounter.
  detail::WaitCounter counter_;
  std::shared_ptr<const detail::BoundOptions> opts_;  // null: plain fork-join
};

}  // namespace vitte

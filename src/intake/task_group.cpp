// TaskGroup's out-of-line parts: binding to the calling worker's scheduler or to one given
// with options, the waits, and run() with options through the route.
#include "vitte/task_group.hpp"

#include <cstdio>
#include <string>

#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/scheduler.hpp"

namespace vitte {

namespace {
detail::SchedulerCore* core_of_this_worker() {
  if (detail::tls_worker == nullptr)
    throw UsageError("TaskGroup() outside a worker thread needs its scheduler: TaskGroup g(sched)");
  return detail::tls_worker->core;
}

bool on_owner_thread(const detail::WaitCounter& c) noexcept {
  return c.owner() == nullptr || c.owner() == detail::tls_worker;
}
}  // namespace

TaskGroup::TaskGroup()
    : core_(core_of_this_worker()), live_(detail::tls_worker->core_live), counter_(detail::Joins::Group, detail::tls_worker) {}

TaskGroup::~TaskGroup() {
  if (!on_owner_thread(counter_)) {
    std::fprintf(stderr, "vitte: a TaskGroup made on worker %u was destroyed on another thread; aborting\n",
                 counter_.owner()->index);
    std::abort();
  }
  detail::wait_for_noexcept(counter_, core_);
  std::uint64_t others = 0;
  if (std::exception_ptr e = counter_.take_error(&others)) [[unlikely]]
    detail::report_unjoined(std::move(e), others, "a TaskGroup was destroyed without wait()");
}

void TaskGroup::wait(Rethrow what) {
  const bool with_cancellations = what == Rethrow::ErrorsAndCancellations;
  // Only a thread that is not a worker can be in a fork() child (the child's thread is
  // never a worker, see after_fork_in_child), and the check stays off the fork-join path.
  if (detail::tls_worker == nullptr) {
    // A destroyed scheduler ran every task of the group before it went (shutdown drains):
    // nothing to wait for, and the scheduler must not be touched.
    if (!detail::alive(live_)) {
      VITTE_ASSERT(counter_.finished(), "a TaskGroup outlived its scheduler with tasks pending");
      if (std::exception_ptr e = counter_.take_error(nullptr, with_cancellations)) std::rethrow_exception(e);
      return;
    }
    core_->check_not_inherited("TaskGroup::wait()");
  }
  if (!on_owner_thread(counter_))
    throw UsageError("TaskGroup::wait() on a thread other than the worker that made the group (worker " +
                     std::to_string(counter_.owner()->index) + ")");
  detail::wait_for(counter_, core_);
  if (std::exception_ptr e = counter_.take_error(nullptr, with_cancellations)) std::rethrow_exception(e);
}

TaskGroup::TaskGroup(Scheduler& sched, const TaskOptions& opts)
    : TaskGroup(sched, detail::share_options(detail::core_of(sched), opts, "TaskGroup(sched, options)")) {}

TaskGroup::TaskGroup(Scheduler& sched, std::shared_ptr<const detail::BoundOptions> opts)
    : core_(detail::core_of(sched)),
      live_(detail::live_of(core_)),
      counter_(detail::Joins::Group, detail::own_worker(core_)),
      opts_(std::move(opts)) {}

void TaskGroup::run_with_options(detail::TaskFrame* f, detail::WorkerLocal* w) {
  try {
    if (w == nullptr) {
      detail::check_alive(live_, "TaskGroup::run()");
      core_->check_not_inherited("TaskGroup::run()");
    }
    detail::route(core_, w, f, detail::Route{.opts = opts_.get(), .source = detail::Source::Submission});
  } catch (...) {
    f->op(f, detail::FrameOp::Discard);
    w != nullptr ? w->pool.put(f) : detail::delete_frame(f);
    counter_.done(w);
    throw;
  }
}

}  // namespace vitte

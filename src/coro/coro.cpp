// The out-of-line parts of vitte::task (coro.hpp): roots' books, errors, checks.
#include "vitte/coro.hpp"

#include <string>

#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "scheduler_core.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

void throw_not_on_worker(const char* what) {
  throw UsageError(std::string(what) + " outside a worker thread: a vitte::task runs on a scheduler's workers "
                   "(start it with vitte::sync_wait or Scheduler::spawn)");
}

WorkerLocal& require_worker(const char* what) {
  WorkerLocal* w = tls_worker;
  if (w == nullptr) throw_not_on_worker(what);
  return *w;
}

void throw_bad_start(const char* how, bool empty) {
  if (empty) throw UsageError(std::string(how) + " of an empty vitte::task (moved from?)");
  throw UsageError(std::string(how) + " of a vitte::task that was started already (awaited, forked or handed to "
                   "when_all/when_any/sync_wait/spawn); a task runs once");
}

void throw_bad_result(bool not_forked) {
  if (not_forked)
    throw UsageError("task::result() is for forked tasks; co_await a task to run it and get its result");
  throw UsageError("task::result() before the co_await vitte::join() that follows its fork");
}

void check_node(const WorkerLocal& w, unsigned node) {
  const std::size_t n = w.core->topo.nodes().size();
  if (node >= n)
    throw UsageError("vitte::schedule_on(" + std::to_string(node) + "): the topology has " + std::to_string(n) +
                     " nodes (0.." + std::to_string(n - 1) + ")");
}

bool nothing_else_ready(const WorkerLocal& w) noexcept {
  const SchedulerCore& core = *w.core;
  if (core.det) return false;  // every yield is a turn the explorer may reorder
  const unsigned n = w.node;
  return w.deque.empty() && core.urgent_queues[n]->empty() && core.inject_queues[n]->empty() &&
         core.ready_queues[n]->empty();
}

void throw_cancelled(Interruptible::Outcome o, const char* what) {
  if (o == Interruptible::Outcome::ShutDown)
    throw Cancelled(std::string(what) + ": the scheduler shut down while the task was suspended; pending timers "
                    "are dropped at shutdown");
  throw Cancelled(std::string(what) + ": the task's stop token was triggered");
}

void start_root(Scheduler& sched, std::coroutine_handle<RootPromise> h, const BoundOptions* opts) {
  SchedulerCore* core = core_of(sched);
  h.promise().core = core;
  // The root is one detached task for its whole life (until root_finished).
  core->detached.add(nullptr);
  try {
    WorkerLocal* w = own_worker(core);
    if (w == nullptr) core->check_not_inherited("Scheduler::start()");
    TaskFrame* f = pack(w, ResumeFn{h});
    f->counter = &core->detached;  // the first run, as a submitted task
    core->detached.add(w);
    try {
      route(core, w, f, Route{.opts = opts, .source = Source::Submission});
    } catch (...) {
      core->detached.done(w);
      f->op(f, FrameOp::Discard);  // a ResumeFn: destroys nothing (the RootGuard has the frame)
      free_frame(f);
      throw;
    }
  } catch (...) {
    core->detached.done(nullptr);
    throw;
  }
}

std::unique_ptr<OwnedOptions> coroutine_options(SchedulerCore* core, const TaskOptions& o, const char* what) {
  if (o.deadline)
    throw UsageError(std::string(what) + ": TaskOptions::deadline does not apply to a coroutine (a deadline is "
                     "for one task's run, and a coroutine runs as many; give it to the tasks it submits)");
  if (o.empty()) return nullptr;
  return std::unique_ptr<OwnedOptions>(new OwnedOptions{bind_options(core, o, what), nullptr});
}

void root_finished(SchedulerCore* core, std::exception_ptr e) noexcept {
  WorkerLocal* w = tls_worker;
  if (e) {
    // Counted where the coroutine threw (PromiseBase::unhandled_exception).
    (void)core->detached.record_exception(std::move(e));
  }
  core->detached.done(w);
}

}  // namespace vitte::detail

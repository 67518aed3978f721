// The route's out-of-line part (vitte/detail/route.hpp): admission of threads that are not
// the scheduler's workers, then the choice of the queue.
//
// Admission, by source, for a thread that is not one of the scheduler's workers:
//   Submission    the external bracket (SchedulerCore::begin_external/end_external): refused
//                 with UsageError once shutdown began; shutdown waits for the brackets it
//                 did not refuse, so every accepted submission is queued before it drains.
//                 In bounded mode a slot of the node's backlog first (BacklogFull).
//   Continuation  the continuations' handshake (continuations_open / _in_flight): accepted
//                 until shutdown has drained, then refused (the caller fails its future).
//   Resumption, Timer, Requeue: never refused, never bounded.
// A worker of the scheduler is never refused: it only runs while work is pending, so
// shutdown has not drained.
#include "intake/wrap.hpp"
#include "policy/group_tree.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/route.hpp"

namespace vitte::detail {

namespace {

// Keeps a submission bracketed even when the push throws (std::bad_alloc, BacklogFull).
struct SubmissionBracket {
  explicit SubmissionBracket(SchedulerCore& c) : core(c) {
    if (!core.begin_external())
      throw UsageError("submission after the scheduler began shutting down; the task was not queued");
  }
  ~SubmissionBracket() { core.end_external(); }
  SchedulerCore& core;
};

// The continuations' half of the handshake with SchedulerCore::shutdown(): seq_cst RMW
// then seq_cst load, against shutdown's store of continuations_open then its load of the
// count. Either we see the close (and refuse), or shutdown sees us in flight and waits for
// our push, whose frame its second drain runs.
struct ContinuationBracket {
  explicit ContinuationBracket(SchedulerCore& c) : core(c) {
    core.continuations_in_flight.fetch_add(1, std::memory_order_seq_cst);
    open = core.continuations_open.load(std::memory_order_seq_cst);
  }
  // release: our push happens-before shutdown's acquire load that sees the count drop.
  ~ContinuationBracket() { core.continuations_in_flight.fetch_sub(1, std::memory_order_release); }
  SchedulerCore& core;
  bool open;
};

// The queue, once admitted. `ext`: new work from a thread that is not a worker (its
// latency is measured, it counts against the backlog bound, and the arena's policy orders
// it when that is not Fifo).
void place(SchedulerCore& core, WorkerLocal* w, TaskFrame* f, const Route& r, bool ext) {
  const int want = r.node >= 0 ? r.node : r.opts != nullptr ? r.opts->node : -1;
  const unsigned n = want < 0 && w != nullptr ? w->node : core.arena_for(want);
  if (r.opts != nullptr && r.opts->policy()) {
    core.queue_policy(f, *r.opts, n, ext, r.due_ns);
    return;
  }
  // The arena's level orders external work when its policy is not Fifo; and plain work a
  // task inside vitte::isolate() gives another node waits in that node's ReadyQueue, where
  // the region's wait finds it by matching (Worker::find_work_isolated) while that node's
  // workers may all be in regions of their own.
  if ((ext && core.arena_policy != Policy::Fifo) ||
      (w != nullptr && w->isolation != 0 && n != w->node && r.source != Source::Requeue &&
       r.source != Source::Resumption)) [[unlikely]] {
    BoundOptions arena;
    arena.group = core.groups->root();
    core.queue_policy(f, arena, n, ext);
    return;
  }
  if (r.lane == Lane::Urgent) {
    core.urgent_queues[n]->push(f);
    core.wake_for_injection(n);
    return;
  }
  if (r.lane == Lane::Local && w != nullptr && n == w->node) {
    push_local(w, f);
    return;
  }
  InjectionQueue& q = *core.inject_queues[n];
  if (!ext) {
    q.push(f);
  } else {
    // The submission time, for its submit-to-start latency (NodeMetrics::submit_latency).
    const std::int64_t queued_ns = core.clock_ns();
    if (q.bounded()) {
      core.admit_external(n);
      try {
        q.push_admitted(f, queued_ns);
      } catch (...) {
        q.unadmit();
        throw;
      }
    } else {
      q.push(f, queued_ns);
    }
  }
  core.wake_for_injection(n);
}

}  // namespace

namespace {

bool admit_and_place(SchedulerCore* core, WorkerLocal* w, TaskFrame* f, const Route& r) {
  if (w != nullptr) {
    place(*core, w, f, r, /*ext=*/false);
    return true;
  }
  switch (r.source) {
    case Source::Spawn:
    case Source::Submission: {
      core->check_not_inherited("a submission");
      SubmissionBracket bracket(*core);
      place(*core, nullptr, f, r, /*ext=*/true);
      return true;
    }
    case Source::Continuation: {
      ContinuationBracket bracket(*core);
      if (!bracket.open) return false;
      place(*core, nullptr, f, r, /*ext=*/false);
      return true;
    }
    case Source::Resumption:
    case Source::Timer:
    case Source::Requeue:
      break;
  }
  place(*core, nullptr, f, r, /*ext=*/false);
  return true;
}

}  // namespace

bool route_slow(SchedulerCore* core, WorkerLocal* w, TaskFrame* f, const Route& r) {
  // Named work runs in a wrapper frame (wrap.hpp); requeues were wrapped already.
  if (r.opts == nullptr || r.opts->name == nullptr || r.source == Source::Requeue) [[likely]]
    return admit_and_place(core, w, f, r);
  TaskFrame* named = wrap_named(w, f, r.opts->name);
  bool queued = false;
  try {
    queued = admit_and_place(core, w, named, r);
  } catch (...) {
    unwrap_named(w, named);  // a refusal leaves f the caller's
    throw;
  }
  if (!queued) unwrap_named(w, named);
  return queued;
}

}  // namespace vitte::detail

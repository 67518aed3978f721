// The one route into the scheduler: every way work enters (a spawn, a submission, a task
// group's run, a continuation, a coroutine's resumption, a timer's run, a graph task)
// packs its frame, counts it where it belongs, and hands it to route() with where it may
// go. route() chooses the queue:
//
//   policy work (options with a group, a priority or a deadline; or a submission from
//   another thread when the arena's policy is not Fifo)   -> the node's ReadyQueue
//   Lane::Urgent                                          -> the node's urgent lane
//   Lane::Local from one of the scheduler's own workers,
//   for the worker's own node                             -> the worker's deque
//   anything else                                         -> the node's injection queue
//
// and, for a thread that is not one of the scheduler's workers, admits it first (one
// function, src/intake/route.cpp): a Submission is refused once shutdown began and takes
// a slot of the node's backlog in bounded mode; a Continuation is accepted until shutdown
// has drained; a Resumption, a Timer run and a Requeue are never refused.
//
// The plain local spawn (no options, Lane::Local, from a worker of the scheduler) is the
// inline line below: one compare and push_local, as before. Everything else goes out of
// line.
#pragma once

#include <cstdint>

#include "vitte/detail/worker_local.hpp"

namespace vitte::detail {

struct BoundOptions;  // bound_options.hpp

enum class Lane : unsigned char {
  Local,   // the calling worker's own deque (from other threads or for another node: Fifo)
  Fifo,    // the node's injection queue
  Urgent,  // the node's urgent lane (timers that fell due, sleeps that ended)
};

enum class Source : unsigned char {
  Spawn,         // new work from a task (a worker of the scheduler; from other threads:
                 // as a Submission)
  Submission,    // new work: from another thread refused once shutdown began, bounded
  Continuation,  // a then() link, a gather's completion: accepted until shutdown drained
  Resumption,    // a coroutine's resumption: never refused (its frame must be freed)
  Timer,         // a timer's run, queued by the timer thread
  Requeue,       // a frame a worker hands back to a node (an isolated wait, a wrong node)
};

struct Route {
  const BoundOptions* opts = nullptr;  // null: no options
  Lane lane = Lane::Local;
  Source source = Source::Spawn;
  int node = -1;            // >= 0: this node (beats opts->node); -1: opts->node, else the caller's
  std::int64_t due_ns = 0;  // policy work: an absolute deadline beating the options' (a timer's tick + deadline)

  constexpr bool plain_local() const noexcept { return opts == nullptr && lane == Lane::Local && node < 0; }
};

// Out of line: everything but the plain local spawn. `w`: the calling thread's worker when
// it is one of core's, else null. Returns false only for a Continuation refused after
// shutdown (the frame stays the caller's); throws UsageError for a Submission after
// shutdown began and BacklogFull when its backlog is full (the frame stays the caller's).
bool route_slow(SchedulerCore* core, WorkerLocal* w, TaskFrame* f, const Route& r);

// `w` as for route_slow. The frame's counter is set and counted by the caller.
[[gnu::always_inline]] inline bool route(SchedulerCore* core, WorkerLocal* w, TaskFrame* f, const Route& r = {}) {
  if (w != nullptr && r.plain_local()) {
    push_local(w, f);
    return true;
  }
  return route_slow(core, w, f, r);
}

// The calling thread's worker if it is one of `core`'s (a live scheduler), else null.
inline WorkerLocal* own_worker(const SchedulerCore* core) noexcept {
  WorkerLocal* w = tls_worker;
  return w != nullptr && w->core == core ? w : nullptr;
}

}  // namespace vitte::detail

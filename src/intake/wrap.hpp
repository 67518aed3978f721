// Named work (TaskOptions::name), src/intake/wrap.cpp: the route wraps the frame of work
// given a name in a second frame whose op labels the running task in a trace, runs the
// inner frame, and counts the run (and whether it threw) in the name's group
// (GroupMetrics::named). Only named work pays for it: one more frame from the same pool,
// one pointer chase.
#pragma once

#include "vitte/detail/worker_local.hpp"

namespace vitte::detail {

struct TaskName;

// A frame that runs `inner` (its counter, isolation and future are inner's) under `name`:
// from w's pool, or the heap when w is null.
TaskFrame* wrap_named(WorkerLocal* w, TaskFrame* inner, TaskName* name);
// Counts a run of `name` that ended failed or cancelled (Ok: nothing).
void count_named(TaskName* name, RunEnd end) noexcept;
// Frees a wrapper made by wrap_named() that was never queued (the inner frame stays the
// caller's).
void unwrap_named(WorkerLocal* w, TaskFrame* outer) noexcept;

}  // namespace vitte::detail

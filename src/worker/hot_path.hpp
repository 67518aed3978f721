// The inline part of a worker's search and run: what a fork-join step costs (own deque
// pop, execute, tell the counter). Included by the files that instantiate the loop
// (worker/loop.hpp) and by the rest of the worker's files; the cold sides are out of line
// (search.cpp: find_queued, steal; running.cpp: execute_rare, run_watched).
#pragma once

#include "vitte/detail/wait_counter.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

inline TaskFrame* Worker::find_work(unsigned failed_rounds) {
  // Due timers go before the own deque, which a busy worker never empties (UrgentLane).
  // The check is two loads and a branch; the rest is a tail call, so this stays frameless.
  if (own_urgent_->hinted()) [[unlikely]] return find_work_urgent(failed_rounds);
  return find_own(failed_rounds);
}

inline TaskFrame* Worker::find_own(unsigned failed_rounds) {
  if (TaskFrame* f = deque.pop()) {
    if (searching_) more_where_found_ = deque.size_hint() > 0;  // off the hot path
    return f;
  }
  return find_queued(failed_rounds);
}

// The common case (a group that is not cancelled, a task of the region this worker is in
// already, almost always none) is the straight line; the rest is execute_rare().
template <bool kTraced>
inline void Worker::execute(TaskFrame* f, TaskSpan* span) noexcept {
  WaitCounter* c = f->counter;
  if (c->cancelled() || f->isolation != isolation) [[unlikely]] {
    execute_rare(f, span);
    return;
  }
  const RunEnd end = f->op(f, FrameOp::Run);
  pool.put(f);
  counters.executed.bump();
  if (end != RunEnd::Ok) [[unlikely]] count_end(end, nullptr);  // failed or cancelled (errors.md)
  if constexpr (kTraced) trace_.end_task(*span);
  c->done(this);  // last: the joiner may release everything the task referenced
}

}  // namespace vitte::detail

// parallel_for: a loop over [begin, end) split recursively into halves until a piece has
// at most `grain` iterations. Halves are forked with a TaskGroup, so idle workers steal
// the largest pieces first (the top of a deque holds the oldest, biggest halves).
//
// Errors: the first exception thrown by fn stops the loop. Every piece shares one
// LoopState: the first error is kept there and the stop flag set; pieces that have not
// started are skipped, and running pieces stop within kStopCheck iterations. parallel_for
// rethrows that first error; later ones (from pieces already running) are dropped. The
// error travels in the LoopState, not through the splitting tasks, so metrics count each
// call of fn that threw once (failed), not once per level of splitting.
//
// Grain 0 is automatic: ceil(n / 512) iterations, so at most 512 leaves, a rule of the
// range alone (the same as parallel_reduce's and parallel_for_each's automatic grain);
// before it meant 1, one task per iteration, which costs more than most bodies.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {

// Iterations a running piece executes between two looks at the loop's stop flag.
inline constexpr std::size_t kStopCheck = 256;

// The automatic grain of every vitte algorithm: at most kAutoLeaves leaves, a rule of the
// range's length alone, so that a split never depends on the worker count.
inline constexpr std::size_t kAutoLeaves = 512;
inline constexpr std::size_t auto_grain(std::size_t n) noexcept {
  return n <= kAutoLeaves ? 1 : (n + kAutoLeaves - 1) / kAutoLeaves;
}

struct LoopState {
  std::atomic<bool> stop{false};
  std::atomic<bool> claimed{false}, claimed_cancel{false};
  // Written by their claimers; read after the loop's groups joined. An error wins over a
  // cancellation, whichever came first (docs/errors.md).
  std::exception_ptr first, first_cancel;
  TaskName* name = nullptr;  // the loop's TaskOptions::name (null: none)

  void fail(std::exception_ptr e) noexcept {
    const bool cancelled = is_cancellation(e);
    count_end(cancelled ? RunEnd::Cancelled : RunEnd::Failed, name);
    // acq_rel: the claimer alone writes its slot; the final reader is ordered after it by
    // the task groups' joins.
    if (!(cancelled ? claimed_cancel : claimed).exchange(true, std::memory_order_acq_rel))
      (cancelled ? first_cancel : first) = std::move(e);
    // relaxed: a hint read by the other pieces.
    stop.store(true, std::memory_order_relaxed);
  }
  const std::exception_ptr& error() const noexcept { return first ? first : first_cancel; }
};

// The loop's options, bound once and shared by every level's TaskGroup; null: none.
struct LoopOptions {
  Scheduler* sched = nullptr;
  std::shared_ptr<const BoundOptions> bound;
};

// Runs f(g) with a fresh TaskGroup g bound as `lo` says (null: the calling worker's
// scheduler, no options). Every level of every algorithm forks into one of these.
template <class F>
void with_group(const LoopOptions* lo, F&& f) {
  if (lo == nullptr) [[likely]] {
    TaskGroup g;
    f(g);
  } else {
    TaskGroup g(*lo->sched, lo->bound);
    f(g);
  }
}

// Options are checked when there is nothing to run, too: a bad option shows on every
// input, not only on the ones that make tasks.
inline void check_options_anyway(Scheduler& sched, const TaskOptions& opts, const char* what) {
  if (!opts.empty()) (void)share_options(core_of(sched), opts, what);
}

// The entry of every algorithm: runs root(lo) as its first piece, under the options if any
// (so that that piece too runs under them), inline when the caller is already one of
// `sched`'s workers, else as a task of `sched` that the caller waits for. `root` reports
// its errors to `st`, never throws; the first one is rethrown here once everything joined.
// `what` names the entry point in a UsageError about the options.
template <class Root>
void run_root(Scheduler& sched, LoopState& st, const TaskOptions& opts, const char* what, const Root& root) {
  if (!opts.empty()) {
    const LoopOptions lo{&sched, share_options(core_of(sched), opts, what)};
    if (lo.bound) st.name = lo.bound->name;
    TaskGroup g(sched, lo.bound);
    g.run([&] { root(&lo); });
    g.wait();
  } else if (Scheduler::current() == &sched) {
    root(static_cast<const LoopOptions*>(nullptr));
  } else {
    TaskGroup g(sched);
    g.run([&] { root(static_cast<const LoopOptions*>(nullptr)); });
    g.wait();
  }
  if (st.error()) std::rethrow_exception(st.error());
}

template <class F>
void parallel_for_split(std::size_t b, std::size_t e, std::size_t grain, const F& fn, LoopState& st,
                        const LoopOptions* lo);

// One level: forks the upper halves into `g`, runs the rest here, waits.
template <class F>
void parallel_for_level(TaskGroup& g, std::size_t b, std::size_t e, std::size_t grain, const F& fn, LoopState& st,
                        const LoopOptions* lo) {
  while (e - b > grain) {
    const std::size_t mid = b + (e - b) / 2;
    g.run([mid, e, grain, &fn, &st, lo] { parallel_for_split(mid, e, grain, fn, st, lo); });
    e = mid;
  }
  try {
    while (b < e) {
      const std::size_t chunk_end = b + std::min(e - b, kStopCheck);
      for (; b < chunk_end; ++b) fn(b);
      if (st.stop.load(std::memory_order_relaxed)) break;
    }
  } catch (...) {
    st.fail(std::current_exception());
    g.cancel();
  }
  g.wait();  // the halves forked above never throw: their errors went to `st`
}

template <class F>
void parallel_for_split(std::size_t b, std::size_t e, std::size_t grain, const F& fn, LoopState& st,
                        const LoopOptions* lo) {
  // relaxed: a hint (see LoopState).
  if (st.stop.load(std::memory_order_relaxed)) return;
  with_group(lo, [&](TaskGroup& g) { parallel_for_level(g, b, e, grain, fn, st, lo); });
}

template <class F>
void parallel_for_root(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain, const F& fn,
                       const TaskOptions& opts, const char* what) {
  if (begin >= end) return check_options_anyway(sched, opts, what);
  if (grain == 0) grain = auto_grain(end - begin);
  LoopState st;
  run_root(sched, st, opts, what,
           [&](const LoopOptions* lo) { parallel_for_split(begin, end, grain, fn, st, lo); });
}

}  // namespace detail

// Calls fn(i) for every i in [begin, end) on `sched`'s workers and waits for all of them;
// rethrows the first exception, after which the unstarted rest of the loop is skipped.
// Callable from any thread, including a worker. With `opts` (task_options.hpp) every task
// of the loop, the first piece included, runs under them (a group's level, a node, a
// name; a deadline counts for each task from when it is queued); UsageError for options
// that would not apply. grain 0: automatic (see the file comment).
template <class F>
void parallel_for(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain, const F& fn,
                  const TaskOptions& opts = {}) {
  detail::parallel_for_root(sched, begin, end, grain, fn, opts, "parallel_for(options)");
}

}  // namespace vitte

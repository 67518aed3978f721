// parallel_for: a loop over [begin, end) split recursively into halves until a piece has
// at most `grain` iterations. Halves are forked with a TaskGroup, so idle workers steal
// the largest pieces first (the top of a deque holds the oldest, biggest halves).
//
// Errors: the first exception thrown by fn stops the loop. Every piece of the loop shares
// one stop flag; pieces that have not started are skipped, and running pieces stop within
// kStopCheck iterations. That exception is rethrown by parallel_for; later ones (from
// pieces already running) are counted in the metrics (failed) and dropped.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {

// Iterations a running piece executes between two looks at the loop's stop flag.
inline constexpr std::size_t kStopCheck = 256;

template <class F>
void parallel_for_split(std::size_t b, std::size_t e, std::size_t grain, const F& fn,
                        std::atomic<bool>& stop) {
  // relaxed: a hint; the error itself travels through the task groups.
  if (stop.load(std::memory_order_relaxed)) return;
  TaskGroup g;
  try {
    while (e - b > grain) {
      const std::size_t mid = b + (e - b) / 2;
      g.run([mid, e, grain, &fn, &stop] { parallel_for_split(mid, e, grain, fn, stop); });
      e = mid;
    }
    while (b < e) {
      const std::size_t chunk_end = b + std::min(e - b, kStopCheck);
      for (; b < chunk_end; ++b) fn(b);
      if (stop.load(std::memory_order_relaxed)) break;
    }
    g.wait();  // a half's error lands in the handler below too, so it stops the whole loop
  } catch (...) {
    stop.store(true, std::memory_order_relaxed);
    g.cancel();
    try {
      g.wait();  // what is left of the halves forked above; later errors are dropped
    } catch (...) {
    }
    throw;
  }
}

}  // namespace detail

// Calls fn(i) for every i in [begin, end) on `sched`'s workers and waits for all of them;
// rethrows the first exception, after which the unstarted rest of the loop is skipped.
// Callable from any thread, including a worker.
template <class F>
void parallel_for(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain,
                  const F& fn) {
  if (begin >= end) return;
  if (grain == 0) grain = 1;
  std::atomic<bool> stop{false};
  if (Scheduler::current() == &sched) {
    detail::parallel_for_split(begin, end, grain, fn, stop);
    return;
  }
  TaskGroup root(sched);
  root.run([&] { detail::parallel_for_split(begin, end, grain, fn, stop); });
  root.wait();
}

}  // namespace vitte

// parallel_for: a loop over [begin, end) split recursively into halves until a piece has
// at most `grain` iterations. Halves are forked with a TaskGroup, so idle workers steal
// the largest pieces first (the top of a deque holds the oldest, biggest halves).
#pragma once

#include <cstddef>

#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {
template <class F>
void parallel_for_split(std::size_t b, std::size_t e, std::size_t grain, const F& fn) {
  TaskGroup g;
  while (e - b > grain) {
    const std::size_t mid = b + (e - b) / 2;
    g.run([mid, e, grain, &fn] { parallel_for_split(mid, e, grain, fn); });
    e = mid;
  }
  for (std::size_t i = b; i < e; ++i) fn(i);
  g.wait();
}
}  // namespace detail

// Calls fn(i) for every i in [begin, end) on `sched`'s workers and waits for all of them;
// rethrows the first exception. Callable from any thread, including a worker.
template <class F>
void parallel_for(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain,
                  const F& fn) {
  if (begin >= end) return;
  if (grain == 0) grain = 1;
  if (Scheduler::current() == &sched) {
    detail::parallel_for_split(begin, end, grain, fn);
    return;
  }
  TaskGroup root(sched);
  root.run([&] { detail::parallel_for_split(begin, end, grain, fn); });
  root.wait();
}

}  // namespace vitte

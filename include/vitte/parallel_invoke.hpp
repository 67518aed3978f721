// parallel_invoke(sched, f1, f2, ...): runs the callables in parallel on sched's workers
// and waits for all of them. On a worker of sched the last one runs on the calling thread
// (the others are forked first, so idle workers steal them); from any other thread all of
// them are queued and the thread waits. The first exception is rethrown once all have
// finished; after it, callables not yet started are skipped.
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {
template <class Tuple, std::size_t... I>
void fork_each(TaskGroup& g, Tuple& fns, std::index_sequence<I...>) {
  (g.run([&f = std::get<I>(fns)] { f(); }), ...);
}
}  // namespace detail

template <class... F>
void parallel_invoke(Scheduler& sched, F&&... fns) {
  constexpr std::size_t n = sizeof...(F);
  static_assert(n >= 1, "parallel_invoke: at least one callable");
  TaskGroup g(sched);
  auto all = std::forward_as_tuple(fns...);
  if (Scheduler::current() != &sched) {
    detail::fork_each(g, all, std::make_index_sequence<n>{});
    g.wait();
    return;
  }
  detail::fork_each(g, all, std::make_index_sequence<n - 1>{});
  try {
    std::get<n - 1>(all)();
  } catch (...) {
    g.cancel();
    try {
      g.wait();
    } catch (...) {
      // The first error is the one in flight.
    }
    throw;
  }
  g.wait();
}

}  // namespace vitte

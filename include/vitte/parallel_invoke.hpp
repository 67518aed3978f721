// parallel_invoke(sched, f1, f2, ...): runs the callables in parallel on sched's workers
// and waits for all of them. On a worker of sched the last one runs on the calling thread
// (the others are forked first, so idle workers steal them); from any other thread all of
// them are queued and the thread waits. The first exception is rethrown once all have
// finished; after it, callables not yet started are skipped. parallel_invoke(sched, opts,
// f1, ...) runs every callable under TaskOptions.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {
template <class Tuple, std::size_t... I>
void fork_each(TaskGroup& g, Tuple& fns, std::index_sequence<I...>) {
  (g.run([&f = std::get<I>(fns)] { f(); }), ...);
}
template <class... F>
void invoke_all(Scheduler& sched, TaskGroup& g, F&&... fns) {
  constexpr std::size_t n = sizeof...(F);
  auto all = std::forward_as_tuple(fns...);
  if (Scheduler::current() != &sched) {
    fork_each(g, all, std::make_index_sequence<n>{});
    g.wait();
    return;
  }
  fork_each(g, all, std::make_index_sequence<n - 1>{});
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

}  // namespace detail

template <class... F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, TaskOptions> && ...)
void parallel_invoke(Scheduler& sched, F&&... fns) {
  static_assert(sizeof...(F) >= 1, "parallel_invoke: at least one callable");
  TaskGroup g(sched);
  detail::invoke_all(sched, g, std::forward<F>(fns)...);
}

// The same, every callable run under `opts` (task_options.hpp), the last one included: it
// is then queued too, since the calling thread cannot take on a node or a group's level.
// UsageError for options that would not apply.
template <class... F>
void parallel_invoke(Scheduler& sched, const TaskOptions& opts, F&&... fns) {
  static_assert(sizeof...(F) >= 1, "parallel_invoke: at least one callable");
  if (opts.empty()) return parallel_invoke(sched, std::forward<F>(fns)...);
  TaskGroup g(sched, opts);
  auto all = std::forward_as_tuple(fns...);
  detail::fork_each(g, all, std::make_index_sequence<sizeof...(F)>{});
  g.wait();
}

}  // namespace vitte

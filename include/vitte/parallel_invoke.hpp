// parallel_invoke(sched, f1, f2, ...): runs the callables in parallel on sched's workers
// and waits for all of them. On a worker of sched the last one runs on the calling thread
// (the others are forked first, so idle workers steal them); from any other thread all of
// them are queued and the thread waits. The first exception is rethrown once all have
// finished; after it, callables not yet started are skipped. parallel_invoke(sched, opts,
// f1, ...) runs every callable under TaskOptions.
#pragma once

#include <cstddef>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vitte/parallel_for.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

namespace detail {

// Each callable reports its exception to `st` (the first one is kept, whichever callable
// it came from, and the group is cancelled so that callables not started are skipped).
template <class Tuple, std::size_t... I>
void fork_each(TaskGroup& g, Tuple& fns, LoopState& st, std::index_sequence<I...>) {
  (g.run([&f = std::get<I>(fns), &st, &g] {
     try {
       f();
     } catch (...) {
       st.fail(std::current_exception());
       g.cancel();
     }
   }),
   ...);
}

template <class... F>
void invoke_all(Scheduler& sched, TaskGroup& g, LoopState& st, F&&... fns) {
  constexpr std::size_t n = sizeof...(F);
  auto all = std::forward_as_tuple(fns...);
  if (Scheduler::current() != &sched) {
    fork_each(g, all, st, std::make_index_sequence<n>{});
  } else {
    fork_each(g, all, st, std::make_index_sequence<n - 1>{});
    try {
      std::get<n - 1>(all)();
    } catch (...) {
      st.fail(std::current_exception());
      g.cancel();
    }
  }
  g.wait();  // the callables never throw: their errors went to `st`
  if (st.error()) std::rethrow_exception(st.error());
}

}  // namespace detail

template <class... F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, TaskOptions> && ...)
void parallel_invoke(Scheduler& sched, F&&... fns) {
  static_assert(sizeof...(F) >= 1, "parallel_invoke: at least one callable");
  TaskGroup g(sched);
  detail::LoopState st;
  detail::invoke_all(sched, g, st, std::forward<F>(fns)...);
}

// The same, every callable run under `opts` (task_options.hpp), the last one included: it
// is then queued too, since the calling thread cannot take on a node or a group's level.
// UsageError for options that would not apply.
template <class... F>
void parallel_invoke(Scheduler& sched, const TaskOptions& opts, F&&... fns) {
  static_assert(sizeof...(F) >= 1, "parallel_invoke: at least one callable");
  if (opts.empty()) return parallel_invoke(sched, std::forward<F>(fns)...);
  TaskGroup g(sched, opts);
  detail::LoopState st;
  auto all = std::forward_as_tuple(fns...);
  detail::fork_each(g, all, st, std::make_index_sequence<sizeof...(F)>{});
  g.wait();
  if (st.error()) std::rethrow_exception(st.error());
}

}  // namespace vitte

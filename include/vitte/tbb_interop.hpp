// Calling oneTBB's algorithms from vitte tasks.
//
//   sched.submit(vitte::Task([&] {
//     vitte::with_tbb([&] { tbb::parallel_for(0, n, [&](int i) { a[i] *= 2; }); });
//   }), /*node=*/1);
//
// with_tbb(f) runs f inside the oneTBB task_arena of the calling worker's node: every
// oneTBB algorithm started in f (parallel_for, parallel_reduce, parallel_sort, ...) runs
// on that node's CPUs, with the calling worker taking part. One arena per arena node, made
// on first use and owned by the Scheduler (destroyed by shutdown(), after the workers are
// joined; asking for one afterwards is a UsageError). with_tbb() must be called on a vitte
// worker: inside a oneTBB algorithm it started, bodies may run on oneTBB's own threads,
// where with_tbb() throws UsageError; those threads are already in the node's arena, so
// call oneTBB directly there. An arena of a node with k workers has max_concurrency k with 1 slot reserved
// for the calling worker, so at most k - 1 oneTBB worker threads join it: the node never
// gets more than twice its workers' threads, and only while several of its workers are
// busy with vitte tasks at the same time (docs/design.md, "oneTBB interop").
//
// How the arena's threads are kept on the node (TbbPlacement, never silently):
//   NumaConstrained  oneTBB's hwloc binding (libtbbbind) is loaded and the plan pins one
//                    worker on every core of the node: the arena is made with
//                    task_arena::constraints{numa_id}, oneTBB binds its threads to the
//                    node's CPUs. numa_id is oneTBB's own node number, matched to vitte's
//                    node by the Linux node number (os_index), not assumed equal.
//   Observer         pinned workers but no tbbbind, or the plan uses only some of the
//                    node's cores (workers.cpuset / reserve), or a topology folded onto this
//                    machine: a task_scheduler_observer binds each oneTBB worker thread that
//                    enters the arena to the CPUs of the node's vitte workers, and restores
//                    its mask when it leaves.
//   Unpinned         the plan's workers are unpinned (a foreign XML/synthetic topology, or
//                    placement = "unpinned"): oneTBB's threads float as the workers do; the
//                    arena is still sized to the node's workers.
//
// This header needs no oneTBB headers and adds nothing to the link line; the callable is
// the user's, so code calling tbb:: in it links tbb itself. vitte/tbb_arena.hpp gives the
// tbb::task_arena& directly (that header includes oneTBB's).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace vitte {

class Scheduler;

enum class TbbPlacement { NumaConstrained, Observer, Unpinned };
const char* to_string(TbbPlacement p) noexcept;

// What the arena of one node is (or would be) made with.
struct TbbArenaSpec {
  unsigned node = 0;              // vitte's logical node id
  TbbPlacement placement = TbbPlacement::Unpinned;
  int tbb_numa_id = -1;           // NumaConstrained: the id given to task_arena::constraints
  int max_concurrency = 1;        // the node's vitte workers
  std::vector<unsigned> os_cpus;  // Linux CPUs the arena's threads may run on (empty: unpinned)
  std::string reason;             // one sentence a user can read
};

// The arena spec of `node` (an arena node of the scheduler: one with workers). Loads
// oneTBB's topology support on first call. Throws UsageError for a node without workers.
TbbArenaSpec tbb_arena_spec(Scheduler& sched, unsigned node);

namespace detail {
// Runs fn inside the calling worker's node's arena; UsageError on other threads.
void with_tbb_erased(const std::function<void()>& fn);
}  // namespace detail

// Runs fn() inside the oneTBB arena of the calling worker's node and returns its result;
// exceptions thrown by fn (or the oneTBB algorithms in it) propagate. Must be called from
// a task (a vitte worker): elsewhere it throws UsageError.
template <class F>
auto with_tbb(F&& fn) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    detail::with_tbb_erased([&] { fn(); });
  } else if constexpr (std::is_reference_v<R>) {
    std::remove_reference_t<R>* out = nullptr;
    detail::with_tbb_erased([&] { out = &fn(); });
    return static_cast<R>(*out);
  } else {
    std::optional<R> out;
    detail::with_tbb_erased([&] { out.emplace(fn()); });
    return std::move(*out);
  }
}

}  // namespace vitte

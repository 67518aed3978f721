// run_pipeline: a bounded pipeline on vitte's own workers, typed end to end.
//
//   vitte::run_pipeline(sched, 4 * sched.num_workers(),
//       vitte::source([&](vitte::PipelineStop& stop) -> std::string {     // read
//         std::string line;
//         if (!std::getline(in, line)) stop.done();
//         return line;
//       }),
//       vitte::stage(vitte::StageMode::Parallel, [](std::string s) { return lex(s); }),
//       vitte::stage(vitte::StageMode::Parallel, [](Tokens t) { return parse(std::move(t)); }),
//       vitte::sink(vitte::StageMode::SerialInOrder, [&](Ast a) { emit(out, a); }),
//       vitte::TaskOptions{.name = "compile"});                            // optional
//
// Stages. The source is called again and again, one call at a time, until it calls
// stop.done() (the value it returns with that call is discarded); its items are numbered
// in the order it makes them. Each middle stage takes the item the stage before made and
// returns the next one (any movable type, move-only ones included: items are moved from
// stage to stage, never copied); the sink takes the last one. A stage's mode says how its
// calls may overlap:
//   SerialInOrder     one call at a time, in the source's order (the output of a compiler
//                     written in input order);
//   SerialOutOfOrder  one call at a time, in any order;
//   Parallel          any number at once (the callable is called concurrently).
// A serial stage's calls happen one after another (each happens-before the next), so its
// callable may keep state without a lock.
//
// Bound: at most max_in_flight items exist at once between the source's call that makes
// one and the sink's call that consumes it (that call's end). max_in_flight 0 is a
// UsageError. Memory is fixed by max_in_flight and the stage count: one slot per item in
// flight, each big enough for the largest item type (at least 64 bytes), plus 64 bytes per
// slot per serial stage, all made up front and reused for every item. So max_in_flight is
// a bound, not "unbounded": 1e6 with three serial stages is about 260 MB (measured); a few
// times the worker count is what keeps every worker busy.
//
// Errors and cancellation (as parallel_for, docs/errors.md): the first exception a stage
// throws stops the pipeline: the source is not called again, and no item starts another
// stage: an item in flight is destroyed (without calling more stages) when it reaches its
// next stage; a call already running finishes. run_pipeline returns once every item is
// gone and rethrows that first exception (an error wins over a vitte::Cancelled; later
// exceptions are counted in the metrics and dropped). With a std::stop_token, a stop
// request stops it the same way and run_pipeline throws vitte::Cancelled; items that have
// passed the sink before are all it did. (A coroutine hands on its own token:
// `run_pipeline(..., co_await vitte::get_stop_token())`. TaskGroup::cancel() on a group
// whose task calls run_pipeline does not reach into it, as for parallel_for.)
//
// Placement: the trailing TaskOptions (task_options.hpp) hold for every task the pipeline
// makes, the first included (a node, a group's level with its priority, a deadline per
// task, a name for the metrics and traces). A task carries items one after another, from
// the source through the stages, and starts at most 64 before it leaves the rest to a new
// task, so a deadline applies to that much work (docs: detail/pipeline_run.hpp). Callable from any thread: one of `sched`'s
// workers (it takes part), a coroutine running on one, or any other thread (which waits).
// Inside vitte::isolate the pipeline's waits run only its own tasks (isolate.hpp).
//
// Arguments after the sink, both optional, in this order: a TaskOptions, a std::stop_token.
// (Spelled out, `vitte::TaskOptions{.name = "x"}`: a bare braced list cannot be deduced
// into a variadic call.)
#pragma once

#include <array>
#include <cstddef>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vitte/detail/pipeline_run.hpp"
#include "vitte/scheduler.hpp"

namespace vitte {

// The filters, made by source(), stage() and sink() below.
template <class F>
struct PipelineSource {
  F fn;
};
template <class F>
struct PipelineStage {
  StageMode mode;
  F fn;
};
template <class F>
struct PipelineSink {
  StageMode mode;
  F fn;
};

// The first filter: fn(PipelineStop&) -> Item. Always serial, one call at a time.
template <class F>
PipelineSource<std::decay_t<F>> source(F&& fn) {
  return {std::forward<F>(fn)};
}
// The same, naming its mode, which must be serial (UsageError for Parallel: the source
// defines the items' order and is called one at a time).
template <class F>
PipelineSource<std::decay_t<F>> source(StageMode mode, F&& fn) {
  if (mode == StageMode::Parallel)
    throw UsageError("vitte::source(mode, fn): mode Parallel; a pipeline's source is serial (it numbers the items)");
  return {std::forward<F>(fn)};
}
// A middle filter: fn(In) -> Out.
template <class F>
PipelineStage<std::decay_t<F>> stage(StageMode mode, F&& fn) {
  return {mode, std::forward<F>(fn)};
}
// The last filter: fn(In), its result discarded.
template <class F>
PipelineSink<std::decay_t<F>> sink(StageMode mode, F&& fn) {
  return {mode, std::forward<F>(fn)};
}

namespace detail {

template <class T>
inline constexpr int kFilterKind = 0;  // 1 source, 2 stage, 3 sink
template <class F>
inline constexpr int kFilterKind<PipelineSource<F>> = 1;
template <class F>
inline constexpr int kFilterKind<PipelineStage<F>> = 2;
template <class F>
inline constexpr int kFilterKind<PipelineSink<F>> = 3;

template <class... A>
constexpr std::size_t leading_filters() {
  constexpr bool is[] = {(kFilterKind<std::remove_cvref_t<A>> != 0)..., false};
  std::size_t n = 0;
  while (is[n]) ++n;
  return n;
}

// Mode of a filter (the source: serial in order, which the gates never use).
template <class P>
StageMode mode_of(const P& f) noexcept {
  if constexpr (kFilterKind<std::remove_cvref_t<P>> == 1) {
    return StageMode::SerialInOrder;
  } else {
    return f.mode;
  }
}

template <class Src, class... Rest>
void pipeline_root(Scheduler& sched, std::size_t max_in_flight, const TaskOptions& opts, const std::stop_token& token,
                   Src& src, Rest&... rest) {
  static_assert(kFilterKind<std::remove_cv_t<Src>> == 1, "run_pipeline: the first filter is a vitte::source(...)");
  static_assert(sizeof...(Rest) >= 1, "run_pipeline: a pipeline ends with a vitte::sink(...)");
  constexpr int kinds[] = {kFilterKind<std::remove_cv_t<Rest>>...};
  static_assert(kinds[sizeof...(Rest) - 1] == 3, "run_pipeline: the last filter is a vitte::sink(...)");
  static_assert(
      [&] {
        for (std::size_t i = 0; i + 1 < sizeof...(Rest); ++i)
          if (kinds[i] != 2) return false;
        return true;
      }(),
      "run_pipeline: the filters between the source and the sink are vitte::stage(...)");
  using Src0 = decltype((src.fn));
  static_assert(std::is_invocable_v<Src0, PipelineStop&>, "run_pipeline: the source is called as fn(PipelineStop&)");
  using Item0 = std::invoke_result_t<Src0, PipelineStop&>;
  static_assert(!std::is_void_v<Item0> && !std::is_reference_v<Item0>, "run_pipeline: the source returns its item by value");
  using Items = typename PipeItems<Item0, decltype((rest.fn))...>::type;
  if (max_in_flight == 0)
    throw UsageError("run_pipeline: max_in_flight is 0; at least one item must be allowed in flight");
  using Run = PipeRun<Items, decltype((src.fn)), decltype((rest.fn))...>;
  const std::array<StageMode, sizeof...(Rest) + 1> modes{mode_of(src), mode_of(rest)...};
  Run run(max_in_flight, modes, std::tuple<decltype((src.fn)), decltype((rest.fn))...>(src.fn, rest.fn...),
          token.stop_possible() ? &token : nullptr);
  std::shared_ptr<const BoundOptions> bound;
  if (!opts.empty()) {
    bound = share_options(core_of(sched), opts, "run_pipeline(options)");
    if (bound) run.state().name = bound->name;
  }
  TaskGroup group(sched, bound);
  run.set_group(&group);
  if (!bound && Scheduler::current() == &sched) {
    run.drive({nullptr, 0, 0});  // the caller takes the first item itself
  } else {
    group.run([&run] { run.drive({nullptr, 0, 0}); });
  }
  group.wait();  // the pipeline's tasks never throw: their errors went to run.state()
  run.sweep();
  if (run.state().error()) std::rethrow_exception(run.state().error());
}

template <class Tuple, std::size_t... I>
void pipeline_call(Scheduler& sched, std::size_t max_in_flight, const TaskOptions& opts, const std::stop_token& token,
                   Tuple& args, std::index_sequence<I...>) {
  pipeline_root(sched, max_in_flight, opts, token, std::get<I>(args)...);
}

}  // namespace detail

// Runs the pipeline source, stage..., sink on `sched`'s workers and returns when every
// item is gone; see the file comment. After the sink, optionally `const TaskOptions&`,
// then optionally `std::stop_token`.
template <class... A>
void run_pipeline(Scheduler& sched, std::size_t max_in_flight, A&&... args) {
  constexpr std::size_t kFilters = detail::leading_filters<A...>();
  using Trail = std::tuple<std::remove_cvref_t<A>...>;
  constexpr std::size_t kTrail = sizeof...(A) - kFilters;
  static_assert(kTrail <= 2, "run_pipeline: after the sink come at most a TaskOptions and a std::stop_token");
  auto all = std::forward_as_tuple(args...);
  TaskOptions opts{};
  std::stop_token token;
  if constexpr (kTrail >= 1) {
    using L1 = std::tuple_element_t<kFilters, Trail>;
    static_assert(std::is_same_v<L1, TaskOptions> || (kTrail == 1 && std::is_same_v<L1, std::stop_token>),
                  "run_pipeline: after the sink come a TaskOptions, then a std::stop_token");
    if constexpr (std::is_same_v<L1, TaskOptions>) {
      opts = std::get<kFilters>(all);
    } else {
      token = std::get<kFilters>(all);
    }
  }
  if constexpr (kTrail == 2) {
    static_assert(std::is_same_v<std::tuple_element_t<kFilters + 1, Trail>, std::stop_token>,
                  "run_pipeline: the argument after the TaskOptions is a std::stop_token");
    token = std::get<kFilters + 1>(all);
  }
  detail::pipeline_call(sched, max_in_flight, opts, token, all, std::make_index_sequence<kFilters>{});
}

}  // namespace vitte

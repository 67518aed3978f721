// Running a Graph: strands, successor release, affinity, subflows, the run handle.
//
// A *strand* is one queued frame (a TaskFrame whose closure is Strand<Trace>): it runs a
// node, releases the node's successors, and keeps running the first ready successor in a
// loop on the same worker, pushing the other ready ones to its own deque (or, for a node
// with an affinity elsewhere, to that node's injection queue). It ends when a node leaves
// nothing ready, so a chain of a million nodes is one strand, one frame, no recursion,
// and stays on one worker. The run's WaitCounter counts strands (graph_state.hpp G5);
// Worker::execute calls done() after the closure returned, and skips strands queued after
// the run was cancelled, so no hook in the worker is needed and the fork-join path is
// untouched.
//
// Release (G4): a successor with in_degree 1 is ready at once (no atomic: its only
// predecessor is the current thread). Otherwise each finishing predecessor does
// join.fetch_sub(1, acq_rel); the one that reads 1 owns the successor: the release half
// publishes each predecessor's effects, the acquire half gives the owner all of them.
// It then restores join to in_degree (relaxed) for the next run; the next run's
// decrements are ordered after it by the joiner's acquire of the counter and the release
// of the push that starts that run.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include "clock/clock.hpp"
#include "graph/graph_state.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/scheduler.hpp"
#include "worker/worker.hpp"

namespace vitte {
namespace detail {

namespace {

std::int64_t ns_since(std::chrono::steady_clock::time_point t0) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

// The node `n` must run on: its affinity, else the run's node (RunOptions); -1: any.
inline int node_of(const GraphState* gs, const GraphNode* n) noexcept {
  return n->affinity >= 0 ? n->affinity : gs->run_node;
}

// True when `n` is on its node on `w` (no node, or w belongs to the arena n's node maps to).
inline bool on_its_node(const GraphState* gs, const GraphNode* n, const WorkerLocal* w) noexcept {
  const int a = node_of(gs, n);
  return a < 0 || gs->core->arena_of[static_cast<unsigned>(a)] == w->node;
}

// True when `n` may run inline on `w`'s strand: on its node, and without options of its
// own (a routed node is always queued as its own frame).
inline bool placed_here(const GraphState* gs, const GraphNode* n, const WorkerLocal* w) noexcept {
  return !n->routed && on_its_node(gs, n, w);
}

// The options a frame of `n` is routed by: its own, else the run's (null: none).
inline const BoundOptions* options_of(const GraphState* gs, const GraphNode* n) noexcept {
  return n->routed ? n->owner->bound[n->index].get() : gs->run_opts.get();
}

template <bool Trace>
void run_strand(GraphState* gs, GraphNode* n) noexcept;

template <bool Trace>
struct Strand {
  GraphState* gs;
  GraphNode* n;
  void operator()() const noexcept { run_strand<Trace>(gs, n); }
};

// Queues `n` as a new strand: on w's own deque, or on the injection queue of the node
// it must run on. A frame that cannot be allocated ends the process (std::bad_alloc in
// a noexcept strand), as a failed push_local would.
template <bool Trace>
void spawn(GraphState* gs, GraphNode* n, WorkerLocal* w) noexcept {
  TaskFrame* f = pack(w, Strand<Trace>{gs, n});
  f->counter = &gs->counter;
  gs->counter.add(w);  // before the push that publishes the frame (G5)
  const BoundOptions* o = options_of(gs, n);
  if (o == nullptr && placed_here(gs, n, w))
    route(gs->core, w, f);
  else
    route(gs->core, w, f, Route{.opts = o, .lane = on_its_node(gs, n, w) ? Lane::Local : Lane::Fifo, .node = node_of(gs, n)});
}

// Releases n's successors: the first ready one that may run here goes to `next` (if
// `next` is still empty), every other ready one is spawned.
template <bool Trace>
void release(GraphState* gs, GraphNode* n, WorkerLocal* w, GraphNode*& next) noexcept {
  for (GraphNode* s : n->succ) {
    if (s->in_degree != 1) {
      // acq_rel: see the file comment (G4).
      if (s->join.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
      s->join.store(s->in_degree, std::memory_order_relaxed);  // for the next run (G3)
    }
    if (next == nullptr && placed_here(gs, s, w))
      next = s;
    else
      spawn<Trace>(gs, s, w);
  }
}

// n finished (its body returned and its subflow, if any, finished). Releases its
// successors, and completes its parents whose subflows it was the last to finish.
// Returns the node this strand runs next, or null.
template <bool Trace>
GraphNode* finish(GraphState* gs, GraphNode* n, WorkerLocal* w) noexcept {
  GraphNode* next = nullptr;
  for (;;) {
    release<Trace>(gs, n, w, next);
    if (!n->child) return next;  // the flag, not n->parent: that is on the cold line
    GraphNode* p = n->parent;
    // acq_rel: the last child sees every sibling's effects before completing the parent,
    // and the parent's successors then see them through the release above.
    if (p->sub_pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return next;
    n = p;  // every task of p's subflow finished: p completes now
  }
}

// Runs a dynamic task's body with a fresh subflow, then starts the subflow's tasks.
// Returns the first of them to run on this strand (null if none may run here); sets
// `waits` when it added any (the task then finishes when they do, else at once). Throws
// what the body threw, or UsageError for a cycle.
template <bool Trace>
GraphNode* run_dynamic(GraphState* gs, GraphNode* n, WorkerLocal* w, bool& waits) {
  if (!n->sub) n->sub = std::make_unique<NodeList>(gs, n);
  NodeList& l = *n->sub;
  l.clear();  // the previous run's tasks, long finished (G1)
  {
    Subflow sf = GraphAccess::subflow(&l);
    n->fn(&sf);
  }
  l.sealed = true;
  if (l.nodes.empty()) return nullptr;
  if constexpr (Trace) l.trace.assign(l.nodes.size(), TraceStamp{});
  waits = true;
  l.validate();  // throws for a cycle
  if (l.max_affinity >= static_cast<int>(gs->core->topo.nodes().size()) &&
      l.rescan_affinity() >= static_cast<int>(gs->core->topo.nodes().size()))
    throw UsageError("a subflow's task asks for node " + std::to_string(l.max_affinity) + " (TaskOptions::node), but the topology has " +
                     std::to_string(gs->core->topo.nodes().size()) + " nodes");
  if (!l.options.empty()) l.bind(gs->core, "a subflow's task");
  // relaxed: published to the children by the pushes below (release) or, for the first,
  // by program order.
  n->sub_pending.store(static_cast<std::uint32_t>(l.nodes.size()), std::memory_order_relaxed);
  GraphNode* first = nullptr;
  for (GraphNode* s : l.sources) {
    if (first == nullptr && placed_here(gs, s, w))
      first = s;
    else
      spawn<Trace>(gs, s, w);
  }
  return first;
}

template <bool Trace>
void run_strand(GraphState* gs, GraphNode* n) noexcept {
  Worker* const w = this_worker();
  while (n != nullptr) {
    // An error: what has not started is skipped. `failed`, not counter.cancelled(): the
    // counter's flag shares a cache line with its count, which every strand's start and
    // end writes, so reading it per node missed whenever the other worker had just done so.
    if (gs->failed.load(std::memory_order_relaxed)) return;
    if (!on_its_node(gs, n, w)) {         // stolen across nodes: back to its own node
      spawn<Trace>(gs, n, w);
      w->handed_back(gs->core->arena_of[static_cast<unsigned>(node_of(gs, n))]);
      return;
    }
    std::int64_t start = 0;
    if constexpr (Trace) start = ns_since(gs->t0);
    // A scheduler trace (trace.hpp) records each graph task inside its strand's slice.
    TraceRecorder* tracer = w->graph_tracer();
    const std::int64_t traced_at = tracer != nullptr ? trace_ticks() : 0;
    GraphNode* child = nullptr;
    bool waits = false;  // n finishes when its subflow does
    try {
      if (!n->dynamic)
        n->fn(nullptr);
      else
        child = run_dynamic<Trace>(gs, n, w, waits);
    } catch (...) {
      gs->failed.store(true, std::memory_order_relaxed);
      // An error cancels the run; so does a task called off (vitte::Cancelled): its
      // successors cannot run without it. Counted as for other tasks.
      const RunEnd end = gs->counter.record_exception(std::current_exception());
      gs->counter.cancel();
      const BoundOptions* o = options_of(gs, n);
      count_end(end, o != nullptr ? o->name : nullptr);
      return;
    }
    if (tracer != nullptr) [[unlikely]] {
      const std::string& name = n->owner->name_of(*n);
      tracer->graph_task(traced_at, name.empty() ? gs->name : name, n->index);
    }
    if constexpr (Trace) {
      TraceStamp& t = n->owner->trace[n->index];  // sized before the list's tasks start
      t.start = start;
      t.duration = ns_since(gs->t0) - start;
      t.worker = static_cast<int>(w->index);
      t.node = static_cast<int>(w->node);
    }
    // With a subflow running, n's children may finish (and complete n) on other workers
    // from here on: n is not touched again.
    n = waits ? child : finish<Trace>(gs, n, w);
  }
}

// The run's first strand: spawns every source but the first and runs that one.
template <bool Trace>
struct Root {
  GraphState* gs;
  void operator()() const noexcept {
    WorkerLocal* w = tls_worker;
    GraphNode* first = nullptr;
    for (GraphNode* s : gs->top.sources) {
      if (first == nullptr && placed_here(gs, s, w))
        first = s;
      else
        spawn<Trace>(gs, s, w);
    }
    run_strand<Trace>(gs, first);
  }
};

template <bool Trace>
void start_run(GraphState* gs) {
  SchedulerCore* core = gs->core;
  WorkerLocal* w = tls_worker;
  const bool local = w != nullptr && w->core == core;
  TaskFrame* f = pack(local ? w : nullptr, Root<Trace>{gs});
  f->counter = &gs->counter;
  gs->counter.add(local ? w : nullptr);
  if (local && gs->run_opts == nullptr) {
    route(core, w, f);
    return;
  }
  if (local) {
    route(core, w, f, Route{.opts = gs->run_opts.get()});
    return;
  }
  try {
    // UsageError once it shuts down.
    route(core, nullptr, f, Route{.opts = gs->run_opts.get(), .source = Source::Submission});
  } catch (...) {
    f->op(f, FrameOp::Discard);
    delete_frame(f);
    gs->counter.done(nullptr);
    throw;
  }
}

// Ends a run for the joiner: sets `phase` back to kIdle last (release; pairs with the
// acquiring CAS of the next run() or editor, G6). Returns the first error.
// Errors after the first are counted in *others (they are in the metrics' failed too).
std::exception_ptr end_run(GraphState* gs, std::uint64_t* others = nullptr, bool with_cancellations = false) noexcept {
  SchedulerCore* const core = gs->core;
  wait_for_noexcept(gs->counter, core);
  if (!gs->counter.finished()) {
    // A deterministic run that deadlocked here was abandoned: none of its tasks runs again,
    // so the graph may be destroyed or left; the run reports the deadlock.
    gs->core = nullptr;
    gs->phase.store(GraphState::kIdle, std::memory_order_release);
    return std::make_exception_ptr(Deadlock(core->abandoned_why));
  }
  // A cancelled run may have stopped with join counters half-way (G3).
  if (gs->counter.cancelled()) gs->dirty = true;
  gs->failed.store(false, std::memory_order_relaxed);  // ordered before the next run's pushes
  std::exception_ptr e = gs->counter.take_error(others, with_cancellations);
  gs->traced = gs->trace;
  gs->core = nullptr;
  gs->run_opts = nullptr;  // lets go of its group
  gs->run_node = -1;
  gs->phase.store(GraphState::kIdle, std::memory_order_release);
  return e;
}

}  // namespace
}  // namespace detail

GraphRun Scheduler::run(Graph& g) { return run(g, RunOptions{}); }

GraphRun Scheduler::run(Graph& g, const RunOptions& opts) {
  detail::GraphState* gs = detail::GraphAccess::state(g);
  if (gs == nullptr) throw UsageError("Scheduler::run() of a moved-from Graph");
  detail::SchedulerCore* core = detail::core_of(*this);
  core->check_not_inherited("Scheduler::run()");
  // After shutdown() began, a thread that is not one of our workers may start no run, not
  // even of an empty graph (a non-empty one would also be refused by submit_external).
  const bool from_worker = detail::tls_worker != nullptr && detail::tls_worker->core == core;
  if (!from_worker && !core->accepting.load(std::memory_order_acquire))
    throw UsageError("Scheduler::run() of graph '" + gs->name + "' after the scheduler began shutting down");
  // G6, acq_rel: acquire orders us after the previous joiner's or editor's release (its
  // run or edit is over); an editor's CAS that sees kRunning refuses.
  std::uint8_t seen = detail::GraphState::kIdle;
  if (!gs->phase.compare_exchange_strong(seen, detail::GraphState::kRunning, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
    if (seen == detail::GraphState::kEditing)
      throw UsageError("Scheduler::run(): graph '" + gs->name +
                       "' is being edited by another thread; a graph is built by one thread at a time");
    throw UsageError("Scheduler::run(): graph '" + gs->name +
                     "' is already running; wait() for its run before running it again (a graph runs once at a "
                     "time; build a second Graph to run the same work concurrently)");
  }
  try {
    detail::NodeList& top = gs->top;
    if (!top.validated) top.validate();  // throws for a cycle
    if (gs->dirty) top.reset_joins();
    gs->dirty = false;
    if (top.max_affinity >= static_cast<int>(core->topo.nodes().size()) &&
        top.rescan_affinity() >= static_cast<int>(core->topo.nodes().size()))
      throw UsageError("Scheduler::run(): a task of graph '" + gs->name + "' asks for node " +
                       std::to_string(top.max_affinity) + " (TaskOptions::node), but the scheduler's topology has " +
                       std::to_string(core->topo.nodes().size()) + " nodes");
    gs->run_opts = detail::share_options(core, opts.options, "Scheduler::run(graph, options)");
    gs->run_node = gs->run_opts != nullptr ? gs->run_opts->node : -1;
    if (!top.options.empty()) top.bind(core, "Scheduler::run(): a task of graph '" + gs->name + "'");
    gs->core = core;
    gs->trace = opts.trace;
    gs->traced = false;
    if (top.nodes.empty()) return detail::GraphAccess::run_handle(gs);  // finished at once
    // The run is one detached task of the scheduler until its last strand finished
    // (WaitCounter I7), so join_all() and shutdown() wait for it. One counter for all
    // outstanding work: a task that starts a run or submits work adds to it before it
    // finishes itself, so the count never reads zero while anything is left to run.
    gs->counter.chain_to(&core->detached);
    core->detached.add(nullptr);
    if (opts.trace) {
      top.trace.assign(top.nodes.size(), detail::TraceStamp{});
      gs->t0 = std::chrono::steady_clock::now();
      detail::start_run<true>(gs);
    } else {
      detail::start_run<false>(gs);
    }
  } catch (...) {
    gs->core = nullptr;
    gs->run_opts = nullptr;
    gs->run_node = -1;
    gs->phase.store(detail::GraphState::kIdle, std::memory_order_release);
    throw;
  }
  return detail::GraphAccess::run_handle(gs);
}

GraphRun& GraphRun::operator=(GraphRun&& o) noexcept {
  if (this != &o) {
    if (state_ != nullptr) {
      try {
        wait();
      } catch (...) {
        std::fprintf(stderr, "vitte: a GraphRun was assigned over before wait(); its error is dropped\n");
      }
    }
    state_ = std::exchange(o.state_, nullptr);
  }
  return *this;
}

GraphRun::~GraphRun() {
  if (state_ == nullptr) return;
  const std::string name = state_->name;
  std::uint64_t others = 0;
  if (std::exception_ptr e = detail::end_run(std::exchange(state_, nullptr), &others))
    detail::report_unjoined(e, others, ("a run of graph '" + name + "' failed and was never waited for").c_str());
}

bool GraphRun::ready() const noexcept { return state_ != nullptr && state_->counter.finished(); }

void GraphRun::wait(Rethrow what) {
  if (state_ == nullptr) throw UsageError("GraphRun::wait()/get() on an empty handle (already waited for?)");
  if (std::exception_ptr e = detail::end_run(std::exchange(state_, nullptr), nullptr, what == Rethrow::ErrorsAndCancellations))
    std::rethrow_exception(e);
}

}  // namespace vitte

// Graph: a task graph (DAG) built once and run many times.
//
//   vitte::Graph g("passes");
//   auto read = g.add([&] { load(); }, "read");
//   auto lex = g.add([&] { tokenize(); }, "lex");
//   auto check = g.add([&](vitte::Subflow& sf) {    // dynamic work
//     for (auto& f : files) sf.add([&f] { analyse(f); });
//   }, "check");
//   read.precede(lex);
//   lex.precede(check);
//   check.options({.node = 1});                     // runs on a worker of NUMA node 1
//   sched.run(g).wait();                            // rethrows the first error
//   sched.run(g, {.trace = true}).wait();           // same graph again, timings kept
//   std::puts(g.trace_json().c_str());
//
// Contract:
// - A task runs after every task that precedes it has finished (its effects are visible).
//   A task that takes a `Subflow&` may add tasks (and edges among them) while it runs;
//   they start once it returns, and the task counts as finished, for its successors and
//   for the run, only when they have all finished.
// - Scheduler::run(g) starts a run and returns a GraphRun; wait() or get() waits for every
//   task of the run and rethrows the first exception one of them threw (every task that
//   threw counts in the scheduler's metrics, `failed`). The first
//   exception cancels the tasks that have not started (they are skipped); the graph may
//   be run again afterwards. A GraphRun that is destroyed unwaited waits in its
//   destructor (an error it cannot rethrow there is written to stderr).
// - A graph runs once at a time: run() of a graph whose previous run has not been waited
//   for throws UsageError, as do add(), precede() and options() on it until then. Several
//   different graphs may run at once. The graph must outlive its runs (destroying a
//   running graph aborts with a message). Shutting down or destroying the scheduler waits
//   for every run in flight to finish (nothing is dropped), even one nobody waited for.
// - run() refuses a graph with a cycle (UsageError naming a task on the cycle), and
//   precede() refuses an edge between tasks of two different graphs (or subflows).
// - An empty graph's run is finished at once. run() after shutdown() began throws
//   UsageError, for an empty graph too (from a task of the scheduler it is still allowed).
// - options({.node = n}): the task runs on a worker of node n, or of the nearest node that
//   has workers when n has none (as Scheduler::submit(task, {.node = n})). A worker of
//   another node that comes across it (by stealing) hands it back to n's queue.
// - Seeing the graph: dot() is the Graphviz DOT of the static graph; after a run made
//   with RunOptions{.trace = true}, trace_json() and trace_dot() give each task's start
//   (ns since the run began), duration, worker and node. Without .trace nothing is timed.
//
// The release protocol (atomic join counters, the last predecessor running its first
// ready successor in a loop on its own worker) is described in docs/design.md.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "vitte/error.hpp"
#include "vitte/task_options.hpp"

namespace vitte {

class Scheduler;
class Graph;
class Subflow;

namespace detail {
struct GraphNode;   // src/graph/graph_state.hpp
struct NodeList;    // the tasks of one graph or of one subflow
struct GraphState;  // a Graph's nodes plus its run state
struct GraphAccess; // the runner (src/graph/), which reaches the private parts below
}  // namespace detail

struct RunOptions {
  // Record each task's start, duration, worker and node (Graph::trace_json()).
  bool trace = false;
  // Every task of the run is placed as these say (task_options.hpp), but where its own
  // options (TaskRef::options) say otherwise: a node (a task's own node beats it), a
  // group's level with its priority and a deadline (each queued task's, from when it is
  // queued), a name counted in the group's metrics for each queued task of the run.
  TaskOptions options{};
};

// A handle to one task of a Graph (or of a Subflow). Cheap to copy. A handle to a task
// of the graph itself is valid as long as the graph lives; a handle to a task a Subflow
// added is valid only until the spawning task runs again (its subflow is cleared then,
// on the graph's next run) or the graph dies; using it afterwards is undefined.
class TaskRef {
 public:
  TaskRef() = default;
  // `this` runs before `other`. Both must belong to the same graph (or the same
  // subflow); UsageError otherwise, or while the graph runs. Returns *this.
  TaskRef& precede(TaskRef other);
  // `other` runs before `this`.
  TaskRef& succeed(TaskRef other);
  // This task's own options (task_options.hpp), bound when the graph runs (a subflow's
  // task: when its subflow starts), so errors (a node the topology lacks, a group of
  // another scheduler) come from run(), or fail the subflow's task. The node is the
  // task's affinity (see the contract above; UsageError at once above 32767); the name is
  // its name() too; a group, a priority or a deadline queue the task as policy work of its
  // own (it is never run inline on a strand). Replaces what the options set before.
  TaskRef& options(const TaskOptions& o);
  // The former spelling of options({.node = node}).
  [[deprecated("use options({.node = n})")]] TaskRef& on_node(unsigned node);
  TaskRef& name(std::string n);
  const std::string& name() const;
  bool valid() const noexcept { return node_ != nullptr; }

 private:
  friend class Graph;
  friend class Subflow;
  friend struct detail::GraphAccess;
  explicit TaskRef(detail::GraphNode* n) noexcept : node_(n) {}
  detail::GraphNode* node_ = nullptr;
};

namespace detail {
// The type-erased body of a task: `dynamic` bodies get a Subflow, the others nullptr.
struct TaskBody {
  std::function<void(Subflow*)> fn;
  bool dynamic = false;
};
// Refuses a callable that is testable as bool and false (an empty std::function, a null
// function pointer), which would only fail when the task runs.
template <class F>
TaskBody make_body(F&& fn) {
  using D = std::decay_t<F>;
  D f(std::forward<F>(fn));
  if constexpr (std::is_pointer_v<D> || (std::is_class_v<D> && std::is_constructible_v<bool, const D&> &&
                                         !std::is_convertible_v<const D&, bool>)) {
    if (!static_cast<bool>(f)) throw UsageError("add() of an empty function (an empty std::function or a null pointer)");
  }
  if constexpr (std::is_invocable_v<D&, Subflow&>) {
    return TaskBody{[f = std::move(f)](Subflow* sf) mutable { f(*sf); }, true};
  } else {
    static_assert(std::is_invocable_v<D&>, "a graph task is callable with () or with (vitte::Subflow&)");
    return TaskBody{[f = std::move(f)](Subflow*) mutable { f(); }, false};
  }
}
}  // namespace detail

// The tasks a running graph task adds (passed to a task callable with `Subflow&`). Tasks
// added here may precede one another, take a Subflow themselves, and have a node
// affinity; they start when the spawning task returns. Usable only during that call.
class Subflow {
 public:
  template <class F>
  TaskRef add(F&& fn, std::string name = {}) {
    return add_body(detail::make_body(std::forward<F>(fn)), std::move(name));
  }
  std::size_t size() const noexcept;

  Subflow(const Subflow&) = delete;
  Subflow& operator=(const Subflow&) = delete;

 private:
  friend struct detail::GraphAccess;
  explicit Subflow(detail::NodeList* list) noexcept : list_(list) {}
  TaskRef add_body(detail::TaskBody body, std::string name);
  detail::NodeList* list_;
};

class GraphRun;

class Graph {
 public:
  explicit Graph(std::string name = "graph");
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  // Aborts with a message if a run of this graph has not been waited for.
  ~Graph();

  // Adds a task; fn is callable with () or with (vitte::Subflow&). UsageError while the
  // graph runs, or for an empty callable (an empty std::function, a null pointer).
  template <class F>
  TaskRef add(F&& fn, std::string name = {}) {
    return add_body(detail::make_body(std::forward<F>(fn)), std::move(name));
  }

  std::size_t size() const noexcept;
  std::size_t edges() const noexcept;
  bool empty() const noexcept { return size() == 0; }
  const std::string& name() const noexcept;
  // True from run() until the run has been waited for.
  bool running() const noexcept;

  // Graphviz DOT of the static graph: one vertex per task, labelled with its name (or
  // its index), `node=N` for a task with an affinity.
  std::string dot() const;
  // After a run made with RunOptions{.trace = true} (UsageError otherwise, or while
  // running): every task that ran, with start and duration in ns from the run's start,
  // worker index and NUMA node; tasks added by subflows name their parent's id. Ids are
  // numbers unique within one export (the graph's own tasks: their index); subflows of
  // any depth are walked without recursion.
  std::string trace_json() const;
  // The same, as DOT: the static graph with each vertex labelled by its timings.
  std::string trace_dot() const;

 private:
  friend class Scheduler;
  friend struct detail::GraphAccess;
  TaskRef add_body(detail::TaskBody body, std::string name);
  std::unique_ptr<detail::GraphState> state_;
};

// One run of a Graph (Scheduler::run). Move-only; [[nodiscard]]: a run dropped at once
// is waited for at once.
class [[nodiscard]] GraphRun {
 public:
  GraphRun() = default;
  GraphRun(GraphRun&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  GraphRun& operator=(GraphRun&& o) noexcept;
  GraphRun(const GraphRun&) = delete;
  GraphRun& operator=(const GraphRun&) = delete;
  // Waits if nobody did; an error it cannot rethrow is written to stderr.
  ~GraphRun();

  bool valid() const noexcept { return state_ != nullptr; }
  // True once every task of the run finished (or was skipped).
  bool ready() const noexcept;
  // Waits for the run (a worker runs other tasks meanwhile, other threads sleep) and
  // rethrows the first error a task threw. A task that throws vitte::Cancelled ends the run
  // as an error does (its successors cannot run) but is not an error (docs/errors.md): it
  // is rethrown only with Rethrow::ErrorsAndCancellations. The handle is empty afterwards;
  // waiting on an empty handle throws UsageError. The same hazard as TaskGroup::wait()
  // applies when called from a task that holds a lock (see isolate.hpp).
  void wait(Rethrow what = Rethrow::Errors);
  // The same as wait(), for symmetry with Future.
  void get() { wait(); }

 private:
  friend class Scheduler;
  friend struct detail::GraphAccess;
  explicit GraphRun(detail::GraphState* s) noexcept : state_(s) {}
  detail::GraphState* state_ = nullptr;
};

}  // namespace vitte

// The private state of a Graph: its nodes, their edges and join counters, and the state
// of its one run in flight (private; the API is include/vitte/graph.hpp).
//
// Roles: the builder (one thread, while the graph is not running) adds nodes and edges;
// during a run, workers run nodes and release successors (graph_run.cpp); the joiner
// (GraphRun::wait) waits on `counter`, then clears `running`.
// Invariants:
//   G1  Nodes never move: they live in std::deque (push_back keeps addresses) and are
//       removed only with their list (a subflow's list is cleared when its parent task
//       next runs, when every node of the previous run has long finished).
//   G2  While `running` is set, the static structure (nodes, succ, in_degree, affinity,
//       names) of the graph's own list is read-only; a subflow's list is writable only
//       by its parent task's body, until `sealed`.
//   G3  Between runs every node's `join` equals its `in_degree`, unless `dirty` (a
//       cancelled run may stop half-way): then run() resets them all first.
//   G4  During a run each node becomes ready exactly once: by having no predecessors
//       (a source), by the single predecessor of an in_degree-1 node, or by the
//       predecessor whose decrement takes `join` to 0. Whoever makes it ready restores
//       `join` to `in_degree` (relaxed) for the next run, and runs or queues it.
//   G5  `counter` counts strands, not nodes: every queued frame is one unit (added
//       before the push that publishes it, done by Worker::execute after the frame's
//       closure returned). A strand's last access to the graph is inside its closure, so
//       once the joiner sees zero no worker touches the graph again (WaitCounter I4).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "vitte/detail/wait_counter.hpp"
#include "vitte/graph.hpp"

namespace vitte::detail {

class SchedulerCore;

struct GraphNode {
  GraphNode(NodeList* owner_, std::uint32_t index_, TaskBody body_, std::string name_, GraphNode* parent_)
      : body(std::move(body_)), owner(owner_), parent(parent_), name(std::move(name_)), index(index_) {}

  TaskBody body;
  std::vector<GraphNode*> succ;
  // Predecessors not yet finished in this run. acq_rel fetch_sub by each finishing
  // predecessor (release: its effects; acquire: the last one sees all of theirs). Never
  // touched for in_degree <= 1 (G4).
  std::atomic<std::uint32_t> join{0};
  std::uint32_t in_degree = 0;
  int affinity = -1;                 // NUMA node, -1: anywhere
  NodeList* owner;                   // the graph's list or a subflow's
  GraphNode* parent;                 // the task whose subflow added this one (or null)
  std::string name;
  std::uint32_t index;               // position in its list
  // Dynamic work: the subflow this task's last run added (kept until its next run), and
  // how many of those tasks have not finished. acq_rel fetch_sub by each finishing child;
  // the one that takes it to 0 completes this task (releases its successors). Set
  // (relaxed) before the children are queued, which publishes it (push: release).
  std::unique_ptr<NodeList> sub;
  std::atomic<std::uint32_t> sub_pending{0};
  // Trace of the last traced run (written by the worker that ran the task, read after
  // the joiner's wait: ordered by the counter's release/acquire). start < 0: did not run.
  std::int64_t t_start = -1;
  std::int64_t t_duration = 0;
  int t_worker = -1;
  int t_node = -1;
};

struct NodeList {
  NodeList(GraphState* g, GraphNode* parent_) : graph(g), parent(parent_) {}
  std::deque<GraphNode> nodes;
  std::size_t edges = 0;
  GraphState* graph;
  GraphNode* parent;             // null: the graph's own list
  bool sealed = false;           // a subflow's list after its task returned (G2)
  // Cached by validate() until the next edit: the sources, and the largest affinity.
  bool validated = false;
  std::vector<GraphNode*> sources;
  int max_affinity = -1;

  bool editable() const noexcept;
  // Kahn's algorithm: throws UsageError naming a node on a cycle; otherwise caches the
  // sources and resets every join counter (G3). O(nodes + edges), no allocation once the
  // cached vectors have their size.
  void validate();
  void reset_joins() noexcept;
};

struct GraphState {
  explicit GraphState(std::string n) : name(std::move(n)), top(this, nullptr) {}
  std::string name;
  NodeList top;
  // Set by run() (exchange, acq_rel: one run at a time), cleared by the joiner (release)
  // after it saw the run finish; editors read it (acquire) to refuse edits meanwhile.
  std::atomic<bool> running{false};
  WaitCounter counter{/*cancel_on_error=*/true};
  SchedulerCore* core = nullptr;      // the scheduler of the run in flight
  bool dirty = false;                 // G3
  bool trace = false;                 // this run records timings
  bool traced = false;                // the last finished run recorded timings
  std::chrono::steady_clock::time_point t0;
};

// The runner's and builder's way into the API classes' private parts.
struct GraphAccess {
  static TaskRef make(GraphNode* n) noexcept { return TaskRef(n); }
  static Subflow subflow(NodeList* l) noexcept { return Subflow(l); }
  static GraphState* state(Graph& g) noexcept { return g.state_.get(); }
  static GraphRun run_handle(GraphState* s) noexcept { return GraphRun(s); }
};

}  // namespace vitte::detail

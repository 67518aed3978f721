// The private state of a Graph: its nodes, their edges and join counters, and the state
// of its one run in flight (private; the API is include/vitte/graph.hpp).
//
// Roles: the builder (one thread, while the graph is not running) adds nodes and edges;
// during a run, workers run nodes and release successors (graph_run.cpp); the joiner
// (GraphRun::wait) waits on `counter`, then sets `phase` back to kIdle (G6).
// Invariants:
//   G1  Nodes never move: they live in std::deque (push_back keeps addresses) and are
//       removed only with their list (a subflow's list is cleared when its parent task
//       next runs, when every node of the previous run has long finished).
//   G2  While `phase` is kRunning (G6), the static structure (nodes, succ, in_degree, affinity,
//       names) of the graph's own list is read-only; a subflow's list is writable only
//       by its parent task's body, until `sealed`.
//   G3  Between runs every node's `join` equals its `in_degree` (precede() keeps them
//       equal while building), unless `dirty` (a cancelled run may stop half-way): then
//       run() resets them all first.
//   G4  During a run each node becomes ready exactly once: by having no predecessors
//       (a source), by the single predecessor of an in_degree-1 node, or by the
//       predecessor whose decrement takes `join` to 0. Whoever makes it ready restores
//       `join` to `in_degree` (relaxed) for the next run, and runs or queues it.
//   G5  `counter` counts strands, not nodes: every queued frame is one unit (added
//       before the push that publishes it, done by Worker::execute after the frame's
//       closure returned). A strand's last access to the graph is inside its closure, so
//       once the joiner sees zero no worker touches the graph again (WaitCounter I4).
//   G6  `phase` is kIdle, kRunning (from run() until the joiner saw the run finish) or
//       kEditing (one edit of the graph's own list in progress); run() and edits claim
//       it from kIdle by CAS and refuse (UsageError) when it is taken.
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

// A node's successors: up to two inline (chains, trees, grids need no allocation and no
// extra cache line), more on the heap.
class Successors {
 public:
  void push(GraphNode* s) {
    if (size_ < 2 && heap_.empty()) {
      inline_[size_] = s;
    } else {
      if (heap_.empty()) heap_.assign(inline_, inline_ + 2);
      heap_.push_back(s);
    }
    ++size_;
  }
  GraphNode* const* begin() const noexcept { return heap_.empty() ? inline_ : heap_.data(); }
  GraphNode* const* end() const noexcept { return begin() + size_; }
  std::size_t size() const noexcept { return size_; }
  GraphNode* operator[](std::size_t i) const noexcept { return begin()[i]; }

 private:
  GraphNode* inline_[2] = {nullptr, nullptr};
  std::uint32_t size_ = 0;
  std::vector<GraphNode*> heap_;
};

// Hot fields (read for every node a run executes) first: the body, the successors, the
// in-degree, the affinity, the join counter, the parent; the rest is cold.
struct alignas(64) GraphNode {
  GraphNode(NodeList* owner_, std::uint32_t index_, TaskBody body_, std::string name_, GraphNode* parent_)
      : fn(std::move(body_.fn)), dynamic(body_.dynamic), parent(parent_), owner(owner_), index(index_),
        name(std::move(name_)) {}

  std::function<void(Subflow*)> fn;  // dynamic bodies get a Subflow, the others nullptr
  Successors succ;
  std::uint32_t in_degree = 0;
  int affinity = -1;                 // NUMA node, -1: anywhere
  // Predecessors not yet finished in this run. acq_rel fetch_sub by each finishing
  // predecessor (release: its effects; acquire: the last one sees all of theirs). Never
  // touched during a run for in_degree <= 1 (G4). Kept equal to in_degree by precede()
  // while the graph is built (G3).
  std::atomic<std::uint32_t> join{0};
  bool dynamic;
  GraphNode* parent;                 // the task whose subflow added this one (or null)
  NodeList* owner;                   // the graph's list or a subflow's
  std::uint32_t index;               // position in its list
  std::uint32_t source_slot = 0;     // position in owner->sources while in_degree == 0
  std::string name;
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
  NodeList(const NodeList&) = delete;
  NodeList& operator=(const NodeList&) = delete;
  // Frees nested subflows with a work list, not recursion (they may nest deeply).
  ~NodeList() { release_subflows(); }
  void release_subflows() noexcept;
  std::deque<GraphNode> nodes;
  std::size_t edges = 0;
  GraphState* graph;
  GraphNode* parent;             // null: the graph's own list
  bool sealed = false;           // a subflow's list after its task returned (G2)
  // Kept up to date by add() and precede(): the tasks with no predecessor (each knows
  // its slot), the largest affinity ever set (run() rescans before refusing), and the
  // edges from a task to one added no later than itself. Without such back edges the
  // order of addition is a topological order, so the list cannot hold a cycle and run()
  // needs no pass over it.
  std::vector<GraphNode*> sources;
  int max_affinity = -1;
  std::size_t back_edges = 0;
  bool validated = false;        // no edit since the last cycle check

  // The cycle check: free without back edges, else Kahn's algorithm on plain scratch
  // counters, O(nodes + edges), on the first run after an edit. Throws UsageError naming
  // a node on a cycle.
  void validate();
  void reset_joins() noexcept;
  // The exact largest affinity (max_affinity only grows while building).
  int rescan_affinity() noexcept;
  void clear() noexcept;  // a subflow's list, before its task runs again
};

struct GraphState {
  explicit GraphState(std::string n) : name(std::move(n)), top(this, nullptr) {}
  std::string name;
  NodeList top;
  // G6: one word excludes runs and edits of the graph's own list. run() CASes
  // kIdle -> kRunning (acq_rel: after the previous joiner's or editor's release), the
  // joiner stores kIdle (release) after it saw the run finish; an edit (add, precede,
  // on_node, name) CASes kIdle -> kEditing and stores kIdle (release) when done. A CAS
  // that fails is refused with UsageError, so an edit never overlaps a run or another edit.
  static constexpr std::uint8_t kIdle = 0, kRunning = 1, kEditing = 2;
  std::atomic<std::uint8_t> phase{kIdle};
  bool running() const noexcept { return phase.load(std::memory_order_acquire) == kRunning; }
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

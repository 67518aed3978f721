// The private state of a Graph: its nodes, their edges and join counters, and the state
// of its one run in flight (private; the API is include/vitte/graph.hpp).
//
// Roles: the builder (one thread, while the graph is not running) adds nodes and edges;
// during a run, workers run nodes and release successors (graph_run.cpp); the joiner
// (GraphRun::wait) waits on `counter`, then sets `phase` back to kIdle (G6).
// Invariants:
//   G1  Nodes never move: they live in a NodeStore (blocks that are never reallocated) and are
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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/graph.hpp"

namespace vitte::detail {

class SchedulerCore;

// A node's successors: up to two inline (chains, trees, grids need no allocation and no
// extra cache line), more in a heap array whose capacity is the next power of two of the
// size (so no capacity field). 20 bytes, part of the node's hot line.
class Successors {
 public:
  Successors() = default;
  Successors(const Successors&) = delete;
  Successors& operator=(const Successors&) = delete;
  ~Successors() {
    if (size_ > 2) delete[] heap_;
  }
  void push(GraphNode* s) {
    if (size_ < 2) {
      inline_[size_++] = s;
      return;
    }
    if (size_ == 2 || (size_ & (size_ - 1)) == 0) {  // full: 2 inline, or a power of two
      auto* grown = new GraphNode*[std::size_t{size_} * 2];
      GraphNode* const* from = begin();
      for (std::uint32_t i = 0; i < size_; ++i) grown[i] = from[i];
      if (size_ > 2) delete[] heap_;
      heap_ = grown;
    }
    heap_[size_++] = s;
  }
  GraphNode* const* begin() const noexcept { return size_ > 2 ? heap_ : inline_; }
  GraphNode* const* end() const noexcept { return begin() + size_; }
  std::size_t size() const noexcept { return size_; }
  GraphNode* operator[](std::size_t i) const noexcept { return begin()[i]; }

 private:
  union {
    GraphNode* inline_[2] = {nullptr, nullptr};
    GraphNode** heap_;
  };
  std::uint32_t size_ = 0;
};

// Two cache lines. The first holds everything a run reads or writes for a node without
// affinity or subflow: the body, the successors, the in-degree, the join counter, the
// affinity and two flags; so walking a chain or a grid touches one line per node (the
// layout before 2026-11-24 spread these over two of its three lines, and a one-shot chain
// is bound by those misses). The second line is read only for subflows and by the
// builder; names and trace stamps live beside the nodes, in their NodeList.
struct alignas(64) GraphNode {
  GraphNode(NodeList* owner_, std::uint32_t index_, TaskBody body_, GraphNode* parent_)
      : fn(std::move(body_.fn)), dynamic(body_.dynamic), child(parent_ != nullptr), parent(parent_),
        owner(owner_), index(index_) {}
  GraphNode(const GraphNode&) = delete;
  GraphNode& operator=(const GraphNode&) = delete;

  // ---- hot line ----
  std::function<void(Subflow*)> fn;  // dynamic bodies get a Subflow, the others nullptr
  // no_unique_address: in_degree goes into the successors' tail padding (Itanium ABI).
  [[no_unique_address]] Successors succ;
  std::uint32_t in_degree = 0;
  // Predecessors not yet finished in this run. acq_rel fetch_sub by each finishing
  // predecessor (release: its effects; acquire: the last one sees all of theirs). Never
  // touched during a run for in_degree <= 1 (G4). Kept equal to in_degree by precede()
  // while the graph is built (G3).
  std::atomic<std::uint32_t> join{0};
  std::int16_t affinity = -1;        // NUMA node, -1: anywhere (options() refuses > kMaxAffinity)
  bool dynamic : 1;
  bool child : 1;                    // parent != nullptr: finishing may complete the parent
  // It has options of its own beyond a node (NodeList::options): it is queued as its own
  // frame, routed by them (NodeList::bound), never run inline on a strand.
  bool routed : 1 = false;

  // ---- cold line ----
  GraphNode* parent;                 // the task whose subflow added this one (or null)
  NodeList* owner;                   // the graph's list or a subflow's
  // Dynamic work: the subflow this task's last run added (kept until its next run), and
  // how many of those tasks have not finished. acq_rel fetch_sub by each finishing child;
  // the one that takes it to 0 completes this task (releases its successors). Set
  // (relaxed) before the children are queued, which publishes it (push: release).
  std::unique_ptr<NodeList> sub;
  std::uint32_t index;               // position in its list
  std::uint32_t source_slot = 0;     // position in owner->sources while in_degree == 0
  std::atomic<std::uint32_t> sub_pending{0};
};
static_assert(sizeof(GraphNode) == 128, "a graph node is two cache lines (one hot)");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(offsetof(GraphNode, parent) == 64, "the hot fields fill the first cache line");
#pragma GCC diagnostic pop
inline constexpr int kMaxAffinity = INT16_MAX;

// The nodes of one list, in blocks of consecutive nodes (16, 32, ... up to 8192 nodes per
// block), so nodes added one after another lie one after another in memory: a chain or a
// row of a grid is walked at a fixed stride, which the hardware prefetcher follows.
// Nodes never move (G1). Only what NodeList needs: append, iterate, clear.
class NodeStore {
 public:
  NodeStore() = default;
  NodeStore(const NodeStore&) = delete;
  NodeStore& operator=(const NodeStore&) = delete;
  ~NodeStore() { clear(); }

  template <class... A>
  GraphNode& emplace_back(A&&... a) {
    if (blocks_.empty() || used_ == blocks_.back().cap) grow();
    GraphNode* n = ::new (blocks_.back().p + used_) GraphNode(std::forward<A>(a)...);
    ++used_;
    ++size_;
    return *n;
  }
  GraphNode& back() noexcept { return blocks_.back().p[used_ - 1]; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept {
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const std::size_t n = b + 1 == blocks_.size() ? used_ : blocks_[b].cap;
      for (std::size_t i = 0; i < n; ++i) blocks_[b].p[i].~GraphNode();
      ::operator delete(blocks_[b].p, std::align_val_t{alignof(GraphNode)});
    }
    blocks_.clear();
    used_ = size_ = 0;
  }

  template <class T>
  class Iter {
   public:
    using value_type = GraphNode;
    using difference_type = std::ptrdiff_t;
    Iter() = default;
    Iter(const NodeStore* s, std::size_t b, std::size_t i) : s_(s), b_(b), i_(i) {}
    T& operator*() const noexcept { return s_->blocks_[b_].p[i_]; }
    T* operator->() const noexcept { return &**this; }
    Iter& operator++() noexcept {
      if (++i_ == s_->blocks_[b_].cap && b_ + 1 < s_->blocks_.size()) {
        ++b_;
        i_ = 0;
      }
      return *this;
    }
    Iter operator++(int) noexcept {
      Iter t = *this;
      ++*this;
      return t;
    }
    bool operator==(const Iter& o) const noexcept { return b_ == o.b_ && i_ == o.i_; }

   private:
    const NodeStore* s_ = nullptr;
    std::size_t b_ = 0, i_ = 0;
  };
  Iter<GraphNode> begin() noexcept { return {this, 0, 0}; }
  Iter<GraphNode> end() noexcept { return end_iter<GraphNode>(); }
  Iter<const GraphNode> begin() const noexcept { return {this, 0, 0}; }
  Iter<const GraphNode> end() const noexcept { return end_iter<const GraphNode>(); }

 private:
  struct Block {
    GraphNode* p;
    std::size_t cap;
  };
  template <class T>
  Iter<T> end_iter() const noexcept {
    // The position after the last node: (last block, used_), or (0, 0) when empty. A full
    // last block ends at (last, cap), which operator++ also reaches (it does not step past
    // the last block).
    return blocks_.empty() ? Iter<T>{this, 0, 0} : Iter<T>{this, blocks_.size() - 1, used_};
  }
  void grow() {
    const std::size_t cap = blocks_.empty() ? 16 : std::min<std::size_t>(blocks_.back().cap * 2, 8192);
    blocks_.reserve(blocks_.size() + 1);  // before allocating, so a throw leaks nothing
    auto* p = static_cast<GraphNode*>(::operator new(cap * sizeof(GraphNode), std::align_val_t{alignof(GraphNode)}));
    blocks_.push_back(Block{p, cap});
    used_ = 0;
  }
  std::vector<Block> blocks_;
  std::size_t used_ = 0;  // nodes in the last block
  std::size_t size_ = 0;
};

// One node's timings in the last traced run (written by the worker that ran it, read after
// the joiner's wait: ordered by the counter's release/acquire). start < 0: did not run.
struct TraceStamp {
  std::int64_t start = -1;
  std::int64_t duration = 0;
  int worker = -1;
  int node = -1;
};

struct NodeList {
  NodeList(GraphState* g, GraphNode* parent_) : graph(g), parent(parent_) {}
  NodeList(const NodeList&) = delete;
  NodeList& operator=(const NodeList&) = delete;
  // Frees nested subflows with a work list, not recursion (they may nest deeply).
  ~NodeList() { release_subflows(); }
  void release_subflows() noexcept;
  NodeStore nodes;
  // Names, by node index, as long as the last named node (most graphs name none, and
  // their nodes carry no string); trace stamps, by index, sized by a traced run.
  std::vector<std::string> names;
  std::vector<TraceStamp> trace;
  // TaskRef::options of the routed nodes, by index, as long as the last such node; and
  // those options bound to the running scheduler (graph run, or the subflow's start).
  struct KeptOptions {  // TaskOptions, owning its group and name
    std::optional<unsigned> node;
    Group group;
    std::optional<Priority> priority;
    std::optional<std::chrono::nanoseconds> deadline;
    std::string name;
  };
  std::vector<KeptOptions> options;
  std::vector<std::shared_ptr<const BoundOptions>> bound;
  // Binds `options` against `core` (UsageError naming `where`).
  void bind(SchedulerCore* core, const std::string& where);
  const std::string& name_of(const GraphNode& n) const noexcept {
    static const std::string none;
    return n.index < names.size() ? names[n.index] : none;
  }
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
  WaitCounter counter{Joins::Group};
  // Set (relaxed) by a strand whose task threw, read by every strand before each node: a
  // read-mostly line of its own, apart from the counter, whose count every strand writes.
  // Like the counter's cancel flag (also set then, and checked by Worker::execute for
  // queued strands) it is a hint: a task that read it just before it was set still starts.
  // Cleared by the joiner.
  alignas(64) std::atomic<bool> failed{false};
  SchedulerCore* core = nullptr;      // the scheduler of the run in flight (same line: read-mostly)
  // RunOptions::options of the run in flight, bound; null: none. Its node (-1: none) is the
  // affinity of every task without one (placed_here).
  std::shared_ptr<const BoundOptions> run_opts;
  int run_node = -1;
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

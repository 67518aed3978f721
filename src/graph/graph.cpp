// Graph building, validation (cycle refusal) and export (DOT, trace JSON).
// The run itself is in graph_run.cpp.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph_state.hpp"

namespace vitte {

namespace detail {

namespace {
std::string label_of(const GraphNode& n) {
  const std::string& name = n.owner->name_of(n);
  if (!name.empty()) return name;
  std::string out = "#";  // not "#" + to_string(): GCC 12 warns falsely there (-Wrestrict)
  out += std::to_string(n.index);
  return out;
}
std::string where(const NodeList& l) {
  return l.parent == nullptr ? "graph '" + l.graph->name + "'"
                             : "the subflow of task '" + label_of(*l.parent) + "' in graph '" + l.graph->name + "'";
}
std::string escaped(const std::string& s) {  // for DOT and JSON strings
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

void NodeList::reset_joins() noexcept {
  // relaxed: published to the workers by the push of the run's first frame (release).
  for (GraphNode& n : nodes) n.join.store(n.in_degree, std::memory_order_relaxed);
}

int NodeList::rescan_affinity() noexcept {
  max_affinity = -1;
  for (const GraphNode& n : nodes)
    if (n.affinity > max_affinity) max_affinity = n.affinity;
  return max_affinity;
}

void NodeList::release_subflows() noexcept {
  std::vector<std::unique_ptr<NodeList>> pending;
  for (GraphNode& n : nodes)
    if (n.sub) pending.push_back(std::move(n.sub));
  while (!pending.empty()) {
    std::unique_ptr<NodeList> l = std::move(pending.back());
    pending.pop_back();
    for (GraphNode& n : l->nodes)
      if (n.sub) pending.push_back(std::move(n.sub));
  }  // each list dies with no subflow left under it
}

void NodeList::clear() noexcept {
  release_subflows();
  nodes.clear();
  names.clear();
  options.clear();
  bound.clear();
  trace.clear();
  sources.clear();
  edges = 0;
  back_edges = 0;
  max_affinity = -1;
  validated = false;
  sealed = false;
}

void NodeList::validate() {
  if (back_edges == 0) {  // addition order is topological: no cycle possible
    validated = true;
    return;
  }
  const std::size_t count = nodes.size();
  // Kahn's algorithm over plain counters (this thread owns the graph here).
  std::vector<std::uint32_t> deg(count);
  std::vector<GraphNode*> ready(sources.begin(), sources.end());
  ready.reserve(count);
  for (const GraphNode& n : nodes) deg[n.index] = n.in_degree;
  std::size_t seen = 0;
  while (!ready.empty()) {
    GraphNode* n = ready.back();
    ready.pop_back();
    ++seen;
    for (GraphNode* s : n->succ)
      if (--deg[s->index] == 0) ready.push_back(s);
  }
  if (seen != count) {
    // Every node left (deg > 0) has a predecessor that is left too; walking such
    // predecessors from any of them must repeat, and the first node seen twice lies on a
    // cycle.
    std::vector<GraphNode*> pred(count, nullptr);
    GraphNode* v = nullptr;
    for (GraphNode& n : nodes)
      if (deg[n.index] > 0) {
        if (v == nullptr) v = &n;
        for (GraphNode* s : n.succ)
          if (deg[s->index] > 0) pred[s->index] = &n;
      }
    std::vector<char> visited(count, 0);
    while (v != nullptr && !visited[v->index]) {
      visited[v->index] = 1;
      v = pred[v->index];
    }
    const std::size_t left = count - seen;
    throw UsageError("cycle in " + where(*this) + ": task '" + (v ? label_of(*v) : "?") +
                     "' depends on itself through its predecessors (" + std::to_string(left) +
                     " task(s) on or after cycles); a task graph must be acyclic");
  }
  validated = true;
}

namespace {
// Brackets one edit (G6): for the graph's own list, claims the phase word kIdle ->
// kEditing and gives it back when the edit is done (or threw); a subflow's list is edited
// only by its parent task's body, until sealed.
class EditScope {
 public:
  EditScope(const NodeList& l, const char* what) {
    if (l.parent != nullptr) {
      if (l.sealed)
        throw UsageError(std::string(what) + " on " + where(l) +
                         " after its task returned; a subflow is built only inside its task");
      return;
    }
    std::uint8_t seen = GraphState::kIdle;
    // acq_rel: acquire pairs with the joiner's (or the last editor's) release store, so the
    // edit comes after the run's tasks; the failure load needs no order (we only report).
    if (!l.graph->phase.compare_exchange_strong(seen, GraphState::kEditing, std::memory_order_acq_rel,
                                                std::memory_order_relaxed))
      throw UsageError(std::string(what) + " on " + where(l) +
                       (seen == GraphState::kRunning
                            ? " while it runs; wait() for the run first"
                            : " while another thread edits it; a graph is built by one thread at a time"));
    gs_ = l.graph;
  }
  // release: publishes the edit to the next run() or editor (their acquiring CAS).
  ~EditScope() {
    if (gs_ != nullptr) gs_->phase.store(GraphState::kIdle, std::memory_order_release);
  }
  EditScope(const EditScope&) = delete;
  EditScope& operator=(const EditScope&) = delete;

 private:
  GraphState* gs_ = nullptr;
};
}  // namespace

TaskRef add_to(NodeList& l, TaskBody body, std::string name, GraphNode* parent) {
  EditScope edit(l, "add()");
  if (!body.fn) throw UsageError("add() of an empty function to " + where(l));
  const auto index = static_cast<std::uint32_t>(l.nodes.size());
  if (!name.empty()) {
    l.names.resize(index + std::size_t{1});
    l.names[index] = std::move(name);
  }
  GraphNode& n = l.nodes.emplace_back(&l, index, std::move(body), parent);
  n.source_slot = static_cast<std::uint32_t>(l.sources.size());
  l.sources.push_back(&n);
  l.validated = false;
  return GraphAccess::make(&l.nodes.back());
}

void NodeList::bind(SchedulerCore* core, const std::string& where) {
  bound.assign(options.size(), nullptr);
  for (GraphNode& n : nodes)
    if (n.routed) {
      const KeptOptions& k = options[n.index];
      // name() may have renamed it since.
      const TaskOptions o{.group = k.group, .priority = k.priority, .deadline = k.deadline,
                          .name = k.name.empty() ? std::string_view() : std::string_view(name_of(n))};
      const std::string what = where + ", task '" + label_of(n) + "'";  // names the culprit
      bound[n.index] = std::make_shared<const BoundOptions>(bind_options(core, o, what.c_str()));
    }
}

}  // namespace detail

// ---- TaskRef ------------------------------------------------------------------------------

namespace {
detail::GraphNode* checked(detail::GraphNode* n, const char* what) {
  if (n == nullptr) throw UsageError(std::string(what) + " on an empty TaskRef");
  return n;
}
}  // namespace

TaskRef& TaskRef::precede(TaskRef other) {
  detail::GraphNode* a = checked(node_, "precede()");
  detail::GraphNode* b = checked(other.node_, "precede() with an empty TaskRef as argument; it");
  if (a->owner != b->owner)
    throw UsageError("precede(): task '" + detail::label_of(*a) + "' belongs to " + detail::where(*a->owner) +
                     " and task '" + detail::label_of(*b) + "' to " + detail::where(*b->owner) +
                     "; a dependency between two graphs (or subflows) is not allowed");
  detail::EditScope edit(*a->owner, "precede()");
  detail::NodeList& l = *a->owner;
  a->succ.push(b);
  if (b->in_degree++ == 0) {  // b is no longer a source: swap it out of the list
    detail::GraphNode* last = l.sources.back();
    l.sources[b->source_slot] = last;
    last->source_slot = b->source_slot;
    l.sources.pop_back();
  }
  // relaxed: the builder's own field until run() publishes the graph (G3).
  b->join.store(b->in_degree, std::memory_order_relaxed);
  if (a->index >= b->index) ++l.back_edges;
  ++l.edges;
  l.validated = false;
  return *this;
}

TaskRef& TaskRef::succeed(TaskRef other) {
  other.precede(*this);
  return *this;
}

TaskRef& TaskRef::options(const TaskOptions& o) {
  detail::GraphNode* a = checked(node_, "options()");
  if (o.node && *o.node > static_cast<unsigned>(detail::kMaxAffinity))
    throw UsageError("options({.node = " + std::to_string(*o.node) + "}): NUMA node numbers above " +
                     std::to_string(detail::kMaxAffinity) + " are not supported");
  if (o.deadline && o.deadline->count() <= 0)
    throw UsageError("options(): task '" + detail::label_of(*a) + "': TaskOptions::deadline = " +
                     std::to_string(o.deadline->count()) + " ns; a deadline is above zero (leave it unset for none)");
  detail::EditScope edit(*a->owner, "options()");
  detail::NodeList& l = *a->owner;
  a->affinity = o.node ? static_cast<std::int16_t>(*o.node) : std::int16_t{-1};
  if (a->affinity > l.max_affinity) l.max_affinity = a->affinity;
  if (!o.name.empty()) {
    if (l.names.size() <= a->index) l.names.resize(a->index + std::size_t{1});
    l.names[a->index] = std::string(o.name.view());
  }
  TaskOptions rest = o;
  rest.node.reset();  // the affinity carries it
  a->routed = !rest.empty();
  if (a->routed || a->index < l.options.size()) {
    if (l.options.size() <= a->index) l.options.resize(a->index + std::size_t{1});
    l.options[a->index] = a->routed ? detail::NodeList::KeptOptions{o.node, o.group ? o.group.group() : Group(),
                                                                     o.priority, o.deadline, std::string(o.name.view())}
                                    : detail::NodeList::KeptOptions{};
  }
  return *this;
}

TaskRef& TaskRef::on_node(unsigned node) { return options({.node = node}); }

TaskRef& TaskRef::name(std::string n) {
  detail::GraphNode* a = checked(node_, "name()");
  detail::EditScope edit(*a->owner, "name()");
  std::vector<std::string>& names = a->owner->names;
  if (names.size() <= a->index) {
    if (n.empty()) return *this;
    names.resize(a->index + std::size_t{1});
  }
  names[a->index] = std::move(n);
  return *this;
}

const std::string& TaskRef::name() const {
  const detail::GraphNode* a = checked(node_, "name()");
  return a->owner->name_of(*a);
}

// ---- Subflow ------------------------------------------------------------------------------

TaskRef Subflow::add_body(detail::TaskBody body, std::string name) {
  return detail::add_to(*list_, std::move(body), std::move(name), list_->parent);
}
std::size_t Subflow::size() const noexcept { return list_->nodes.size(); }

// ---- Graph --------------------------------------------------------------------------------

Graph::Graph(std::string name) : state_(std::make_unique<detail::GraphState>(std::move(name))) {}
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&& o) noexcept {
  if (this != &o) {
    if (state_ && state_->running()) {
      std::fprintf(stderr, "vitte: graph '%s' was assigned over while a run of it was in flight; aborting\n",
                   state_->name.c_str());
      std::abort();
    }
    state_ = std::move(o.state_);
  }
  return *this;
}
Graph::~Graph() {
  // acquire: pairs with the joiner's release; a finished run is fully done with us.
  if (state_ && state_->running()) {
    std::fprintf(stderr,
                 "vitte: graph '%s' was destroyed while a run of it was in flight (wait() for the run "
                 "first); aborting\n",
                 state_->name.c_str());
    std::abort();
  }
}

TaskRef Graph::add_body(detail::TaskBody body, std::string name) {
  if (!state_) throw UsageError("add() on a moved-from Graph");
  return detail::add_to(state_->top, std::move(body), std::move(name), nullptr);
}

std::size_t Graph::size() const noexcept { return state_ ? state_->top.nodes.size() : 0; }
std::size_t Graph::edges() const noexcept { return state_ ? state_->top.edges : 0; }
const std::string& Graph::name() const noexcept {
  static const std::string none;
  return state_ ? state_->name : none;
}
bool Graph::running() const noexcept {
  return state_ && state_->running();
}

namespace {

// The exports walk nested subflows with an explicit stack (they may nest 20,000 deep) and
// number the tasks with one running counter per export: each list gets a base when it is
// entered, and a task's id is its list's base plus its index, so ids stay short and a
// successor (same list) is named before it is reached. The top list's ids are its indices.
struct ExportFrame {
  const detail::NodeList* l;
  std::size_t pos;   // next task of l to write
  std::size_t base;  // id of l's task 0
  decltype(l->nodes.begin()) it;  // l's task number pos
};
// Indentation stops growing after this depth (20,000 levels would make the text quadratic).
constexpr std::size_t kMaxIndentDepth = 16;

void dot_list(std::string& out, const detail::NodeList& top, bool trace) {
  std::vector<ExportFrame> stack{{&top, 0, 0, top.nodes.begin()}};
  std::size_t next_id = top.nodes.size();
  auto indent = [](std::size_t depth) {
    return std::string(2 + 2 * (depth < kMaxIndentDepth ? depth : kMaxIndentDepth), ' ');
  };
  auto id_of = [](std::size_t id) { return "n" + std::to_string(id); };
  while (!stack.empty()) {
    const ExportFrame f = stack.back();
    if (f.pos == f.l->nodes.size()) {  // a subflow done: close its cluster in its parent
      stack.pop_back();
      if (stack.empty()) break;
      const std::string in = indent(stack.size() - 1);
      const std::string pid = id_of(stack.back().base + f.l->parent->index);
      out += in + "}\n";
      for (const detail::GraphNode& c : f.l->nodes)
        if (c.in_degree == 0) out += in + pid + " -> " + id_of(f.base + c.index) + " [style=dashed];\n";
      continue;
    }
    ++stack.back().pos;
    const detail::GraphNode& n = *stack.back().it++;
    const std::string in = indent(stack.size() - 1);
    const std::string id = id_of(f.base + n.index);
    std::string label = detail::escaped(detail::label_of(n));
    if (trace) {
      char buf[128];
      const detail::TraceStamp t = n.index < f.l->trace.size() ? f.l->trace[n.index] : detail::TraceStamp{};
      if (t.start >= 0)
        std::snprintf(buf, sizeof buf, "\\nstart %.1f us, %.1f us\\nworker %d, node %d", t.start / 1e3,
                      t.duration / 1e3, t.worker, t.node);
      else
        std::snprintf(buf, sizeof buf, "\\n(did not run)");
      label += buf;
    }
    out += in + id + " [label=\"" + label + "\"";
    if (n.affinity >= 0) out += ", xlabel=\"node=" + std::to_string(n.affinity) + "\"";
    if (n.dynamic) out += ", shape=box";
    out += "];\n";
    for (const detail::GraphNode* s : n.succ) out += in + id + " -> " + id_of(f.base + s->index) + ";\n";
    if (trace && n.sub && !n.sub->nodes.empty()) {
      out += in + "subgraph cluster_" + id + " {\n" + in + "  label=\"subflow of " + label + "\";\n";
      stack.push_back({n.sub.get(), 0, next_id, std::as_const(n.sub->nodes).begin()});
      next_id += n.sub->nodes.size();
    }
  }
}

void json_list(std::string& out, const detail::NodeList& top) {
  std::vector<ExportFrame> stack{{&top, 0, 0, top.nodes.begin()}};
  std::size_t next_id = top.nodes.size();
  bool first = true;
  while (!stack.empty()) {
    const ExportFrame f = stack.back();
    if (f.pos == f.l->nodes.size()) {
      stack.pop_back();
      continue;
    }
    ++stack.back().pos;
    const detail::GraphNode& n = *stack.back().it++;
    const std::string id = std::to_string(f.base + n.index);
    out += first ? "\n    " : ",\n    ";
    first = false;
    char buf[160];
    const detail::TraceStamp t = n.index < f.l->trace.size() ? f.l->trace[n.index] : detail::TraceStamp{};
    std::snprintf(buf, sizeof buf, "\"start_ns\": %" PRId64 ", \"duration_ns\": %" PRId64 ", \"worker\": %d, \"node\": %d",
                  t.start, t.duration, t.worker, t.node);
    const std::string parent =
        stack.size() < 2 ? "null" : "\"" + std::to_string(stack[stack.size() - 2].base + f.l->parent->index) + "\"";
    out += "{\"id\": \"" + id + "\", \"name\": \"" + detail::escaped(f.l->name_of(n)) + "\", \"ran\": " +
           (t.start >= 0 ? "true" : "false") + ", " + buf + ", \"affinity\": " + std::to_string(n.affinity) +
           ", \"parent\": " + parent + ", \"successors\": [";
    for (std::size_t i = 0; i < n.succ.size(); ++i)
      out += (i ? ", \"" : "\"") + std::to_string(f.base + n.succ[i]->index) + "\"";
    out += "]}";
    if (n.sub && !n.sub->nodes.empty()) {
      stack.push_back({n.sub.get(), 0, next_id, std::as_const(n.sub->nodes).begin()});
      next_id += n.sub->nodes.size();
    }
  }
}

void check_traced(const detail::GraphState* s, const char* what) {
  if (!s) throw UsageError(std::string(what) + " on a moved-from Graph");
  if (s->running())
    throw UsageError(std::string(what) + " on graph '" + s->name + "' while it runs; wait() for the run first");
  if (!s->traced)
    throw UsageError(std::string(what) + ": the last run of graph '" + s->name +
                     "' recorded no timings; run it with vitte::RunOptions{.trace = true}");
}

}  // namespace

std::string Graph::dot() const {
  std::string out = "digraph \"" + detail::escaped(name()) + "\" {\n";
  if (state_) dot_list(out, state_->top, false);
  return out + "}\n";
}

std::string Graph::trace_dot() const {
  check_traced(state_.get(), "trace_dot()");
  std::string out = "digraph \"" + detail::escaped(name()) + "\" {\n";
  dot_list(out, state_->top, true);
  return out + "}\n";
}

std::string Graph::trace_json() const {
  check_traced(state_.get(), "trace_json()");
  std::string out = "{\n  \"graph\": \"" + detail::escaped(name()) + "\",\n  \"tasks\": [";
  json_list(out, state_->top);
  return out + "\n  ]\n}\n";
}

}  // namespace vitte

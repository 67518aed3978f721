#include "policy/group_tree.hpp"

#include <cmath>

#include "vitte/error.hpp"
#include "vitte/task_options.hpp"

namespace vitte::detail {

namespace {
// All node locks, in order (GroupNode G2).
class AllNodes {
 public:
  AllNodes(std::mutex* mu, std::size_t n) : mu_(mu), n_(n) {
    for (std::size_t i = 0; i < n_; ++i) mu_[i].lock();
  }
  ~AllNodes() {
    for (std::size_t i = n_; i > 0; --i) mu_[i - 1].unlock();
  }
  AllNodes(const AllNodes&) = delete;
  AllNodes& operator=(const AllNodes&) = delete;

 private:
  std::mutex* mu_;
  std::size_t n_;
};

std::string quoted(const std::string& s) { return "\"" + s + "\""; }
}  // namespace

GroupNode::GroupNode(std::shared_ptr<GroupTree> tree, std::shared_ptr<GroupNode> parent_node, const GroupSpec& spec,
                     std::size_t nodes, std::uint64_t id_)
    : id(id_),
      name(spec.name),
      weight(spec.weight),
      policy(spec.policy),
      parent(parent_node.get()),
      priority_path(spec.policy == Policy::Priority && (parent_node == nullptr || parent_node->priority_path)),
      wants_counters(spec.counters),
      tree_(std::move(tree)),
      parent_ref_(std::move(parent_node)),
      levels_(nodes) {}

GroupNode::~GroupNode() {
  if (parent != nullptr && tree_ != nullptr) tree_->unlink(this);
}

TaskName* GroupNode::intern_name(std::string_view name) {
  std::lock_guard<std::mutex> lock(names_mu_);
  for (TaskName& n : names_)
    if (n.name == name) return &n;
  if (names_.size() >= GroupMetrics::kMaxNames) {
    for (TaskName& n : names_)
      if (n.name == GroupMetrics::kOtherNames) return &n;
    return &names_.emplace_back(GroupMetrics::kOtherNames);
  }
  return &names_.emplace_back(std::string(name));
}

std::vector<GroupMetrics::Named> GroupNode::named() const {
  std::lock_guard<std::mutex> lock(names_mu_);
  std::vector<GroupMetrics::Named> out;
  out.reserve(names_.size());
  // relaxed: statistics.
  for (const TaskName& n : names_) {
    GroupMetrics::Named x{n.name, n.runs.load(std::memory_order_relaxed), n.failed.load(std::memory_order_relaxed),
                          n.cancelled.load(std::memory_order_relaxed)};
    // A name whose work never ran (refused, or queued still) has nothing to show yet.
    if (x.runs != 0 || x.failed != 0 || x.cancelled != 0) out.push_back(std::move(x));
  }
  return out;
}

GroupTree::GroupTree(std::size_t nodes, Policy root_policy)
    : nodes_(nodes), node_mu_(std::make_unique<std::mutex[]>(nodes)) {
  GroupSpec spec;
  spec.policy = root_policy;
  // The root holds no reference to the tree: the tree owns it (no cycle).
  root_ = std::make_shared<GroupNode>(nullptr, nullptr, spec, nodes, 0);
}

std::shared_ptr<GroupTree> make_tree(std::size_t nodes, Policy root_policy) {
  return std::make_shared<GroupTree>(nodes, root_policy);
}

std::shared_ptr<GroupNode> GroupTree::make(const GroupSpec& spec, bool weight_given) {
  const std::string what = "make_group(" + (spec.name.empty() ? std::string("anonymous") : quoted(spec.name)) + ")";
  if (spec.name.size() > 64) throw UsageError(what + ": a group name has at most 64 bytes");
  for (unsigned char ch : spec.name)
    if (ch < 0x20 || ch == 0x7f) throw UsageError(what + ": the name contains a control character");
  if (detail::invalid_utf8(spec.name) != spec.name.size())
    throw UsageError(what + ": the name is not UTF-8 (it is written into JSON and Prometheus labels)");
  if (!(spec.weight >= GroupSpec::kMinWeight && spec.weight <= GroupSpec::kMaxWeight))  // NaN fails too
    throw UsageError(what + ": weight = " + std::to_string(spec.weight) + " (a share is from 0.001 to 1e6)");
  if (static_cast<unsigned>(spec.policy) > static_cast<unsigned>(Policy::Fair))
    throw UsageError(what + ": policy " + std::to_string(static_cast<unsigned>(spec.policy)) + " is not a Policy");
  // Declared before the lock: if linking it fails, the lock is released before the level's
  // destructor takes it again (unlink).
  std::shared_ptr<GroupNode> g;
  std::lock_guard<std::mutex> lock(mu_);
  if (!spec.name.empty() && named_.count(spec.name) != 0) throw UsageError(what + ": a group of that name exists");
  std::shared_ptr<GroupNode> parent = root_;
  if (!spec.parent.empty()) {
    const auto it = named_.find(spec.parent);
    if (it == named_.end()) throw UsageError(what + ": parent " + quoted(spec.parent) + " is not a group of this scheduler");
    parent = it->second;
  }
  if ((weight_given || spec.weight != 1.0) && parent->policy != Policy::Fair)
    throw UsageError(what + ": weight = " + std::to_string(spec.weight) + " would not apply: its parent (" +
                     (parent->is_root() ? std::string("the arena") : quoted(parent->name)) + ") has policy " +
                     to_string(parent->policy) + "; weights share a \"fair\" level");
  g = std::make_shared<GroupNode>(shared_from_this(), parent, spec, nodes_, next_id_++);
  {
    AllNodes all(node_mu_.get(), nodes_);
    parent->children.push_back(g.get());
  }
  if (!spec.name.empty()) named_.emplace(spec.name, g);
  return g;
}

std::shared_ptr<GroupNode> GroupTree::find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = named_.find(name);
  return it == named_.end() ? nullptr : it->second;
}

void GroupTree::unlink(GroupNode* g) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  AllNodes all(node_mu_.get(), nodes_);
  auto& c = g->parent->children;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i] == g) {
      c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
}

std::vector<GroupMetrics> GroupTree::metrics(std::size_t events) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GroupMetrics> out;
  if (root_ == nullptr) return out;
  std::vector<const GroupNode*> todo{root_.get()};
  while (!todo.empty()) {
    const GroupNode* g = todo.front();
    todo.erase(todo.begin());
    GroupMetrics m;
    m.id = g->id;
    m.name = g->name;
    m.parent = g->parent != nullptr ? g->parent->name : std::string();
    m.weight = g->weight;
    // relaxed: statistics.
    m.tasks = g->tasks.load(std::memory_order_relaxed);
    m.cpu_ns = g->cpu_ns.load(std::memory_order_relaxed);
    m.deadlines_missed = g->deadlines_missed.load(std::memory_order_relaxed);
    if (g->wants_counters)
      for (std::size_t i = 0; i < events; ++i) m.counters.push_back(g->counters[i].load(std::memory_order_relaxed));
    m.named = g->named();
    out.push_back(std::move(m));
    for (const GroupNode* c : g->children) todo.push_back(c);
  }
  return out;
}

void GroupTree::release() noexcept {
  std::map<std::string, std::shared_ptr<GroupNode>, std::less<>> named;
  std::shared_ptr<GroupNode> root;
  {
    std::lock_guard<std::mutex> lock(mu_);
    named.swap(named_);
    root.swap(root_);
  }
  // Destroyed here, outside mu_: a level's destructor takes it (unlink).
}

}  // namespace vitte::detail

// GroupNode: one level of the scheduling tree (the arena's root level, or a Group), and
// Entry: one task waiting in a node's ReadyQueue (policy.hpp has the model).
//
// A level is scheduler-wide; what it holds on each NUMA node (its queued tasks, the time
// it has used there) is a Level, one per node, guarded by that node's ReadyQueue lock.
// Invariants:
//   G1  name, weight, policy, parent and priority_path never change after construction.
//   G2  children changes only while the tree's registry lock and every node lock are held
//       (GroupTree::link/unlink); a reader holds one node lock (or the registry lock).
//   G3  Level::queued = the tasks queued in this level and below on that node; a child
//       with queued == 0 is never picked, and is re-activated (vtime raised to its
//       parent's floor) when its first task arrives.
//   G4  a level lives while a handle, a child or an Entry holds it (shared_ptr); the root
//       and named groups are held by the tree until the scheduler ends.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vitte/detail/task_frame.hpp"
#include "vitte/policy.hpp"

namespace vitte::detail {

class GroupTree;

// A name given to work (TaskOptions::name) in one group: its runs, counted by the frame
// that carries it (src/intake/named.cpp). Never moves once made (GroupNode keeps them).
struct TaskName {
  explicit TaskName(std::string n) : name(std::move(n)) {}
  const std::string name;
  // relaxed: statistics, added to by every worker that runs work of that name.
  std::atomic<std::uint64_t> runs{0}, failed{0}, cancelled{0};
};

struct Entry {
  TaskFrame* frame = nullptr;
  std::shared_ptr<GroupNode> group;    // the level it was queued at (G4)
  std::uint64_t seq = 0;               // submission order on its node
  std::int64_t queued_ns = 0;          // steady clock at submission
  std::int64_t deadline_ns = 0;        // absolute, steady clock; 0: none
  double charged_ns = 0;               // charged to the shares when picked (finish corrects it)
  Priority priority = Priority::Normal;
  bool hinted = false;                 // counted in the node's hint (preferred work)
  bool admitted = false;               // holds a backlog slot of its node's injection queue
  bool external = false;               // submitted by a thread that is not a worker
};

class GroupNode {
 public:
  // One node's view of the level (G3).
  struct Level {
    std::deque<Entry> own[3];   // the level's own tasks, by Priority (only Normal unless Priority)
    std::uint64_t queued = 0;   // G3
    double vtime = 0;           // used time / weight, compared in the parent's Fair level
    double own_vtime = 0;       // used time of the level's own tasks (a child of weight 1)
    double floor = 0;           // Fair: the largest vtime picked at this level so far
    double est_ns = 0;          // recent task duration here: the charge at pick time
    bool own_empty() const noexcept { return own[0].empty() && own[1].empty() && own[2].empty(); }
  };

  GroupNode(std::shared_ptr<GroupTree> tree, std::shared_ptr<GroupNode> parent, const GroupSpec& spec,
            std::size_t nodes, std::uint64_t id);
  ~GroupNode();
  GroupNode(const GroupNode&) = delete;
  GroupNode& operator=(const GroupNode&) = delete;

  Level& at(unsigned node) noexcept { return levels_[node]; }
  const GroupTree* tree() const noexcept { return tree_.get(); }  // null for the root
  bool is_root() const noexcept { return parent == nullptr; }

  const std::uint64_t id;  // unique in its tree; 0: the root
  const std::string name;
  const double weight;
  const Policy policy;
  GroupNode* const parent;        // null for the root
  // This level and every level above it are Priority levels: its High tasks go ahead of
  // the workers' own deques (the node's hint).
  const bool priority_path;
  std::vector<GroupNode*> children;  // G2

  // Statistics (relaxed atomics: read by metrics snapshots while workers add to them).
  std::atomic<std::uint64_t> tasks{0}, cpu_ns{0}, deadlines_missed{0};
  // GroupSpec::counters: the event counters summed over its tasks (the scheduler's events).
  const bool wants_counters;
  std::array<std::atomic<std::uint64_t>, 16> counters{};

  // The TaskName of `name` in this group, made on first use; past GroupMetrics::kMaxNames
  // names, the one of kOtherNames. Takes names_mu_ (once per binding of options).
  TaskName* intern_name(std::string_view name);
  // Its names' counts (GroupMetrics::named), in the order they were made.
  std::vector<GroupMetrics::Named> named() const;

 private:
  std::shared_ptr<GroupTree> tree_;
  std::shared_ptr<GroupNode> parent_ref_;
  std::vector<Level> levels_;
  mutable std::mutex names_mu_;
  std::deque<TaskName> names_;  // a deque: a TaskName never moves (BoundOptions point at it)
};

}  // namespace vitte::detail

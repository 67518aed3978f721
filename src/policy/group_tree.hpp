// GroupTree: the scheduling tree of one scheduler (the arena's root level and its Groups),
// the registry of named groups, and the per-node locks that the ReadyQueues take.
//
// Lock order: the registry lock (mu_), then node locks in increasing node order. Structure
// changes (link, unlink) take all of them (GroupNode G2); a ReadyQueue takes only its own
// node's lock, so queues of different nodes never contend.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policy/group_node.hpp"

namespace vitte::detail {

class GroupTree : public std::enable_shared_from_this<GroupTree> {
 public:
  // Make it with make_tree(): the levels hold the tree through shared_ptr.
  GroupTree(std::size_t nodes, Policy root_policy);

  const std::shared_ptr<GroupNode>& root() const noexcept { return root_; }
  // A new level below spec.parent (a named group, or the root for ""). UsageError for a
  // name in use, a name too long or with control characters, an unknown parent, a weight
  // that is not positive and finite, or a weight other than 1 (any weight, when
  // `weight_given`: a config file named it) under a parent that is not Fair (a setting
  // that would not apply).
  std::shared_ptr<GroupNode> make(const GroupSpec& spec, bool weight_given = false);
  // The named group, or null.
  std::shared_ptr<GroupNode> find(std::string_view name) const;
  // Every group still alive, parents before children (the root first, as "").
  // `events`: how many event counters the scheduler counts (listed for groups that ask).
  std::vector<GroupMetrics> metrics(std::size_t events) const;
  std::mutex& node_lock(unsigned node) noexcept { return node_mu_[node]; }
  // Drops the tree's own references (root and named groups), so that the levels and the
  // tree can go; called when the scheduler ends.
  void release() noexcept;

  // ~GroupNode: takes `g` out of its parent's children.
  void unlink(GroupNode* g) noexcept;

 private:
  const std::size_t nodes_;
  mutable std::mutex mu_;  // registry and structure (G2)
  std::unique_ptr<std::mutex[]> node_mu_;
  std::shared_ptr<GroupNode> root_;
  std::map<std::string, std::shared_ptr<GroupNode>, std::less<>> named_;
  std::uint64_t next_id_ = 1;  // under mu_
};

std::shared_ptr<GroupTree> make_tree(std::size_t nodes, Policy root_policy);

}  // namespace vitte::detail

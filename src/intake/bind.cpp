// bind_options(): TaskOptions checked against one scheduler, once per submission (or once
// per TaskGroup, graph run, coroutine or then() link made with them), into what the route
// reads per task (vitte/detail/bound_options.hpp).
#include <string>

#include "policy/group_tree.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/bound_options.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

namespace {
std::string level_name(const GroupNode& g) {
  return g.is_root() ? std::string("the arena") : g.name.empty() ? std::string("an anonymous group")
                                                                 : "group \"" + g.name + "\"";
}
}  // namespace

BoundOptions bind_options(SchedulerCore* core, const TaskOptions& o, const char* what) {
  BoundOptions b;
  const std::string api(what);
  static const std::shared_ptr<GroupNode> kNone;
  const std::shared_ptr<GroupNode>& g = o.group ? PolicyAccess::node(o.group.group()) : kNone;
  if (g != nullptr && g->tree() != core->groups.get())
    throw UsageError(api + ": TaskOptions::group \"" + g->name + "\" belongs to another scheduler");
  if (o.node && *o.node >= core->topo.nodes().size())
    throw UsageError(api + ": node " + std::to_string(*o.node) + " (TaskOptions::node), but the topology has " +
                     std::to_string(core->topo.nodes().size()) + " node(s) (0.." +
                     std::to_string(core->topo.nodes().size() - 1) + ")");
  if (o.deadline && o.deadline->count() <= 0)
    throw UsageError(api + ": TaskOptions::deadline = " + std::to_string(o.deadline->count()) +
                     " ns; a deadline is above zero (leave it unset for none)");
  const bool policy = g != nullptr || o.priority || o.deadline;
  if (policy) b.group = g != nullptr ? g : core->groups->root();
  if (o.priority) {
    if (static_cast<unsigned>(*o.priority) > static_cast<unsigned>(Priority::High))
      throw UsageError(api + ": TaskOptions::priority " + std::to_string(static_cast<unsigned>(*o.priority)) +
                       " is not a Priority");
    if (*o.priority != Priority::Normal && b.group->policy != Policy::Priority)
      throw UsageError(api + ": TaskOptions::priority " + to_string(*o.priority) + " would not apply: " +
                       level_name(*b.group) + " has policy " + to_string(b.group->policy) +
                       " (priorities order a \"priority\" level)");
    b.priority = *o.priority;
  }
  b.deadline_ns = o.deadline ? o.deadline->count() : 0;
  b.node = o.node ? static_cast<int>(*o.node) : -1;
  b.hinted = policy && (b.deadline_ns != 0 || (b.priority == Priority::High && b.group->priority_path));
  if (!o.name.empty()) b.name = (policy ? *b.group : *core->groups->root()).intern_name(o.name);
  return b;
}

std::shared_ptr<const BoundOptions> share_options(SchedulerCore* core, const TaskOptions& o, const char* what) {
  if (o.empty()) return nullptr;
  return std::make_shared<const BoundOptions>(bind_options(core, o, what));
}

}  // namespace vitte::detail

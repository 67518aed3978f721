// bind_options(): TaskOptions checked against one scheduler, once per submission (or once
// per TaskGroup, graph run or coroutine made with them), into what the route reads per
// task (vitte/detail/bound_options.hpp).
#include <string>

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
  const std::shared_ptr<GroupNode>& g = PolicyAccess::node(o.group);
  if (g != nullptr && g->tree() != core->groups.get())
    throw UsageError(std::string(what) + ": group \"" + g->name + "\" belongs to another scheduler");
  b.group = g != nullptr ? g : core->groups->root();
  if (static_cast<unsigned>(o.priority) > static_cast<unsigned>(Priority::High))
    throw UsageError(std::string(what) + ": priority " + std::to_string(static_cast<unsigned>(o.priority)) +
                     " is not a Priority");
  if (o.priority != Priority::Normal && b.group->policy != Policy::Priority)
    throw UsageError(std::string(what) + ": priority " + to_string(o.priority) + " would not apply: " +
                     level_name(*b.group) + " has policy " + to_string(b.group->policy) +
                     " (priorities order a \"priority\" level)");
  if (o.deadline.count() < 0)
    throw UsageError(std::string(what) + ": deadline = " + std::to_string(o.deadline.count()) +
                     " ns; a deadline is positive (0: none)");
  if (o.node >= 0 && static_cast<std::size_t>(o.node) >= core->topo.nodes().size())
    throw UsageError(std::string(what) + ": node " + std::to_string(o.node) + ", but the topology has " +
                     std::to_string(core->topo.nodes().size()) + " nodes");
  if (o.node < -1) throw UsageError(std::string(what) + ": node " + std::to_string(o.node) + " (-1: the caller's)");
  b.priority = o.priority;
  b.deadline_ns = o.deadline.count();
  b.node = o.node;
  b.hinted = b.deadline_ns != 0 || (b.priority == Priority::High && b.group->priority_path);
  return b;
}


}  // namespace vitte::detail

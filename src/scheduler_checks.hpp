// What a Scheduler checks before it starts anything, in one place: its constructor calls
// check_options(), and so does the dry run (vitte-sched topo --config), so that the two
// refuse the same settings with the same messages, a check added here included.
#pragma once

#include <memory>
#include <utility>

#include "vitte/config.hpp"
#include "vitte/plan.hpp"
#include "vitte/policy.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/topology.hpp"

namespace vitte::detail {

class GroupTree;

// The settings a Scheduler made from some Options runs with, and what they make.
struct CheckedOptions {
  CheckedOptions(Options o, Topology t, Plan p) : opts(std::move(o)), topo(std::move(t)), plan(std::move(p)) {}
  CheckedOptions(CheckedOptions&&) = default;
  CheckedOptions& operator=(CheckedOptions&&) = delete;
  // Lets go of a tree nobody took: its named groups hold it (GroupTree::release).
  ~CheckedOptions();

  Options opts;  // code, config (or VITTE_CONFIG) and environment resolved; stack_size in whole pages
  Topology topo;
  Plan plan;
  bool counting = false;  // event counters asked for (MetricsOptions, [metrics])
  Policy arena_policy = Policy::Fifo;
  std::shared_ptr<GroupTree> groups;  // the arena's level and the config's [[groups]]
};

// Resolves `o` as a Scheduler does (Options, the config or VITTE_CONFIG, VITTE_DETERMINISTIC)
// and makes every check its constructor makes before it starts anything: no thread, no
// counter, no queue. Throws ConfigError, PlanError or UsageError naming the culprit; a
// setting the config made is named by its file, line and key.
CheckedOptions check_options(Options o);

// UsageError for a group that asks for event counters when none are counted (`counting`).
void check_group_counters(const GroupSpec& spec, bool counting);

}  // namespace vitte::detail

// PolicyBinding: TaskOptions checked against one scheduler, as a TaskGroup made with them
// keeps it, and the one entry point that queues policy work (src/policy/submit.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "vitte/detail/task_frame.hpp"
#include "vitte/policy.hpp"

namespace vitte::detail {

class SchedulerCore;

struct PolicyBinding {
  std::shared_ptr<GroupNode> group;  // the level (never null: the root for the arena)
  Priority priority = Priority::Normal;
  std::int64_t deadline_ns = 0;      // relative; 0: none
  int node = -1;
  bool hinted = false;               // High on a priority path, or a deadline
};

// Checks `o` against `core`: a group of another scheduler, a priority other than Normal at
// a level whose policy is not Priority, a negative deadline and a node that does not exist
// are UsageErrors naming what was asked (`what`: the calling API).
PolicyBinding bind_policy(SchedulerCore* core, const TaskOptions& o, const char* what);
// Queues a packed frame (its counter set and counted) as policy work: from one of core's
// workers on that worker's node (or b.node), from any other thread through the external
// path (UsageError once shutdown began, BacklogFull in bounded mode); the frame stays the
// caller's when it throws.
void submit_policy(SchedulerCore* core, TaskFrame* f, const PolicyBinding& b);

}  // namespace vitte::detail

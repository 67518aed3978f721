// BoundOptions: TaskOptions checked against one scheduler (bind_options,
// src/intake/bind.cpp), as the route (route.hpp) reads them per task and as a TaskGroup,
// a graph run or a coroutine made with options keeps them.
#pragma once

#include <cstdint>
#include <memory>

#include "vitte/task_options.hpp"

namespace vitte::detail {

class SchedulerCore;
struct TaskName;  // src/policy/group_node.hpp: a name's runs in its group's metrics

struct BoundOptions {
  // The level policy work queues at; null: the options make no policy work (no group,
  // priority or deadline was given), only a node and/or a name.
  std::shared_ptr<GroupNode> group;
  Priority priority = Priority::Normal;
  std::int64_t deadline_ns = 0;      // relative; 0: none
  int node = -1;                     // a node of the topology; -1: the caller's
  bool hinted = false;               // High on a priority path, or a deadline
  // TaskOptions::name, interned in its group (the arena without one), which outlives every
  // frame that carries it; null: unnamed.
  TaskName* name = nullptr;

  bool policy() const noexcept { return group != nullptr; }
};

// Checks `o` against `core`: a group of another scheduler, a priority other than Normal at
// a level whose policy is not Priority, a deadline that is not positive and a node that
// does not exist are UsageErrors naming what was asked (`what`: the calling API).
BoundOptions bind_options(SchedulerCore* core, const TaskOptions& o, const char* what);
// The same, shared: kept by what runs many tasks under one set of options (a TaskGroup, a
// coroutine, a then() link, a graph run, a parallel_for). Null for empty options.
std::shared_ptr<const BoundOptions> share_options(SchedulerCore* core, const TaskOptions& o, const char* what);

}  // namespace vitte::detail

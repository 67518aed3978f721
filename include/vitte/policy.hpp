// Scheduling policies: how a node's workers choose among ready work that waits in queues.
//
//   vitte::Options o;
//   o.policy = vitte::Policy::Fair;                       // the arena's own level
//   vitte::Scheduler sched(o);
//   vitte::Group build = sched.make_group({.name = "build", .weight = 1});
//   vitte::Group ide   = sched.make_group({.name = "ide", .weight = 3, .policy = vitte::Policy::Priority});
//   vitte::TaskGroup req(sched, {.group = ide, .priority = vitte::Priority::High});
//   req.run([] { answer(); });                             // ahead of ide's other work
//   sched.submit(vitte::Task(tick), {.deadline = 2ms});    // earliest deadline first
//
// The model (docs/design.md, "Policies"):
// - Plain fork-join work (spawn, TaskGroup, parallel_for, coroutines, without a group, a
//   priority or a deadline) never meets a policy: it rides the workers' deques and pays
//   nothing for this module.
// - Policy work is every task given a group, a priority or a deadline (TaskOptions,
//   task_options.hpp: any entry point takes them), and every external submission when the
//   arena's policy is not Fifo. It waits in its node's ReadyQueue, in a tree of levels: the arena
//   (the root level, Options::policy) and the Groups below it. Each level orders its own
//   tasks and its child groups by its own policy:
//     Fifo      oldest first (by submission order, across the subtree);
//     Lifo      newest first;
//     Priority  High before Normal before Low, oldest first within a class; a task that has
//               waited longer than Options::aging counts as High, one such task per aging
//               interval and node (the starvation bound: every node starts one of its
//               starving tasks per interval, and an old backlog never overtakes fresh High);
//     Fair      weighted fair share: each child group, and the level's own tasks as one
//               more child of weight 1, gets CPU time (the worker thread's CPU clock)
//               in proportion to its weight (the
//               child that has used the least time per weight goes next). Shares compose:
//               a child's share is a fraction of its parent's.
// - Deadline work (TaskOptions::deadline; a timer's from its tick) goes ahead of all of
//   that: earliest deadline first. A task that finishes after its deadline is counted
//   (MetricsSnapshot::deadlines_missed) and reported to Options::on_deadline_miss.
// - Between two tasks a worker takes, in order: due timers, deadline work, High tasks
//   whose every level up to the arena is a Priority level, its own deque, its node's
//   queued work, steals within its node, Low tasks, then other nodes. No task is preempted:
//   a worker finishes the task it runs, and picks the preferred work next.
// - Shares and orders are per node: each node's workers divide their own time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vitte {

namespace detail {
class GroupNode;  // src/policy/group_tree.hpp
struct PolicyAccess;
}

enum class Policy : unsigned char { Fifo, Lifo, Priority, Fair };
enum class Priority : unsigned char { Low, Normal, High };

// "fifo", "lifo", "priority", "fair" (the config file's spelling).
const char* to_string(Policy p) noexcept;
std::optional<Policy> parse_policy(std::string_view s) noexcept;
// "low", "normal", "high".
const char* to_string(Priority p) noexcept;
std::optional<Priority> parse_priority(std::string_view s) noexcept;

// A level of the scheduling tree below the arena (Scheduler::make_group, or [[groups]] in
// the config file).
struct GroupSpec {
  // A weight is a share: at least kMinWeight (smaller ones would make a level's virtual
  // time overflow into infinity), at most kMaxWeight.
  static constexpr double kMinWeight = 1e-3;
  static constexpr double kMaxWeight = 1e6;
  std::string name{};          // unique in its scheduler; "" for an anonymous group
  std::string parent{};        // a named group; "": the arena
  double weight = 1.0;         // its share under a Fair parent: kMinWeight..kMaxWeight
  Policy policy = Policy::Fifo;  // how it orders its own tasks and its child groups
  // Read the event counters (Options::metrics) around each of its tasks and sum them per
  // group (GroupMetrics::counters). Costs two counter reads per task (docs/metrics.md).
  bool counters = false;
};

// A handle to a group of the scheduling tree (cheap to copy). The group lives while a
// handle, a child group or a queued task refers to it; an anonymous group leaves the tree
// then. Named groups stay until the scheduler ends (Scheduler::group finds them).
class Group {
 public:
  // Refers to no group: in TaskOptions it means the arena's own level. It does not know
  // which scheduler it will be used with: name() is "", weight() 1, policy() Fifo; the
  // arena's policy is Scheduler::policy().
  Group() noexcept = default;
  const std::string& name() const noexcept;
  double weight() const noexcept;
  Policy policy() const noexcept;
  // False for the arena (a default-constructed handle).
  explicit operator bool() const noexcept { return node_ != nullptr; }
  bool operator==(const Group& o) const noexcept { return node_ == o.node_; }

 private:
  friend class Scheduler;
  friend struct detail::PolicyAccess;
  explicit Group(std::shared_ptr<detail::GroupNode> n) noexcept : node_(std::move(n)) {}
  std::shared_ptr<detail::GroupNode> node_;
};

// Given to Options::on_deadline_miss when a deadline task finishes late (on the worker that
// ran it, right after the task; exceptions thrown by the handler go to stderr).
struct DeadlineMiss {
  std::string group;                                 // "" for the arena or an anonymous group
  unsigned node = 0;                                 // the node that ran it
  std::chrono::steady_clock::time_point deadline;
  std::chrono::steady_clock::time_point finished;
  std::chrono::nanoseconds lateness() const noexcept { return finished - deadline; }
};

// CPU time and tasks of one group (MetricsSnapshot::groups): what the shares measure.
struct GroupMetrics {
  std::uint64_t id = 0;      // unique in its scheduler (0: the arena); what snapshots subtract by
  std::string name;          // "" for the arena's own tasks
  std::string parent;
  double weight = 1.0;
  std::uint64_t tasks = 0;           // tasks of the group finished (its own level only)
  // CPU time its tasks used on workers (the thread's CPU clock), its own level only; time a
  // task spent running other work inside a wait is charged to that work when it is policy
  // work itself, and to the waiting task otherwise.
  std::uint64_t cpu_ns = 0;
  std::uint64_t deadlines_missed = 0;
  // GroupSpec::counters: CounterInfo::events summed over its tasks (its own level only);
  // empty otherwise.
  std::vector<std::uint64_t> counters;
  // Work given a name (TaskOptions::name) and this group (the arena: work given a name and
  // no group): per name, its runs, those that threw an error and those that ended by
  // throwing vitte::Cancelled. Up to kMaxNames names per group; later ones count under
  // kOtherNames.
  struct Named {
    std::string name;
    std::uint64_t runs = 0;
    std::uint64_t failed = 0;
    std::uint64_t cancelled = 0;
  };
  static constexpr std::size_t kMaxNames = 1024;
  static constexpr const char* kOtherNames = "(other names)";
  std::vector<Named> named;
};

namespace detail {
struct PolicyAccess {
  static const std::shared_ptr<GroupNode>& node(const Group& g) noexcept { return g.node_; }
  static Group make(std::shared_ptr<GroupNode> n) noexcept { return Group(std::move(n)); }
};
}  // namespace detail

}  // namespace vitte

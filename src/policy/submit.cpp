// The policy module's entry points: options checked against a scheduler, policy work
// queued on a node's ReadyQueue, the groups API, and the names of policies.
#include <cstdint>
#include <cstdio>
#include <optional>

#include "policy/group_tree.hpp"
#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "scheduler_checks.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/error.hpp"
#include "vitte/scheduler.hpp"

namespace vitte {

const char* to_string(Policy p) noexcept {
  switch (p) {
    case Policy::Fifo: return "fifo";
    case Policy::Lifo: return "lifo";
    case Policy::Priority: return "priority";
    case Policy::Fair: return "fair";
  }
  return "?";
}

std::optional<Policy> parse_policy(std::string_view s) noexcept {
  for (Policy p : {Policy::Fifo, Policy::Lifo, Policy::Priority, Policy::Fair})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

const char* to_string(Priority p) noexcept {
  switch (p) {
    case Priority::Low: return "low";
    case Priority::Normal: return "normal";
    case Priority::High: return "high";
  }
  return "?";
}

std::optional<Priority> parse_priority(std::string_view s) noexcept {
  for (Priority p : {Priority::Low, Priority::Normal, Priority::High})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

namespace {
const std::string kArena;
}  // namespace

const std::string& Group::name() const noexcept { return node_ != nullptr ? node_->name : kArena; }
double Group::weight() const noexcept { return node_ != nullptr ? node_->weight : 1.0; }
Policy Group::policy() const noexcept { return node_ != nullptr ? node_->policy : Policy::Fifo; }

namespace detail {

void SchedulerCore::queue_policy(TaskFrame* f, const BoundOptions& b, unsigned n, bool ext,
                                 std::int64_t deadline_at_ns) {
  Entry e;
  e.frame = f;
  e.group = b.group;
  e.priority = b.priority;
  e.queued_ns = clock_ns();  // this scheduler's clock, whoever submits
  // Saturates: a deadline beyond the clock's range is never missed.
  e.deadline_ns = deadline_at_ns != 0  ? deadline_at_ns
                  : b.deadline_ns == 0 ? 0
                  : b.deadline_ns > INT64_MAX - e.queued_ns ? INT64_MAX
                                                            : e.queued_ns + b.deadline_ns;
  e.hinted = b.hinted;
  e.external = ext;
  InjectionQueue& q = *inject_queues[n];
  if (ext && q.bounded()) {  // external policy work shares the node's backlog bound
    admit_external(n);
    e.admitted = true;
  }
  try {
    ready_queues[n]->push(std::move(e));
  } catch (...) {
    if (e.admitted) q.unadmit();
    throw;
  }
  wake_for_injection(n);
}

void SchedulerCore::deadline_missed(const Entry& e, std::int64_t end_ns, unsigned node) noexcept {
  if (!opts.on_deadline_miss) return;
  try {
    DeadlineMiss m;
    m.group = e.group->name;
    m.node = node;
    m.deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(e.deadline_ns));
    m.finished = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(end_ns));
    opts.on_deadline_miss(m);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "vitte: on_deadline_miss threw: %s (ignored)\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "vitte: on_deadline_miss threw (ignored)\n");
  }
}

}  // namespace detail

Group Scheduler::make_group(const GroupSpec& spec) {
  core_->check_not_inherited("make_group()");
  detail::check_group_counters(spec, core_->events.info.requested);
  return detail::PolicyAccess::make(core_->groups->make(spec));
}

Group Scheduler::group(std::string_view name) const {
  core_->check_not_inherited("group()");
  std::shared_ptr<detail::GroupNode> g = core_->groups->find(name);
  if (g == nullptr) throw UsageError("group(\"" + std::string(name) + "\"): no group of that name");
  return detail::PolicyAccess::make(std::move(g));
}

Policy Scheduler::policy() const noexcept { return core_->arena_policy; }

}  // namespace vitte

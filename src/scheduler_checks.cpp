// The checks a Scheduler makes before it starts anything (scheduler_checks.hpp).
#include "scheduler_checks.hpp"

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "deterministic/options.hpp"
#include "metrics/event_counters.hpp"
#include "policy/group_tree.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

namespace {
// "config 'FILE' line N", where the config sets `key`.
std::string config_at(const Config& c, const std::string& key) {
  const auto line = c.lines.find(key);
  return "config '" + c.source + "'" + (line != c.lines.end() ? " line " + std::to_string(line->second) : std::string());
}

[[noreturn]] void conflict_at(const Config& c, const std::string& key, const std::string& code, const std::string& file) {
  throw ConfigError(config_at(c, key) + ": conflicting settings: " + key + " = " + file + " but the code asks for " +
                    code);
}

// Reads VITTE_CONFIG once (when Options::config is unset) and takes the runtime settings
// a config may make: set in one place they are taken from there; set in both they must
// agree (the rule of Config::merged_with).
Options resolved_config(Options o);
// The deterministic mode: Options, else the config's [deterministic], else VITTE_DETERMINISTIC
// (a default for schedulers that do not choose).
Options resolved(Options o) {
  o = resolved_config(std::move(o));
  if (!o.deterministic) o.deterministic = deterministic_from_environment();
  check_deterministic_fits(o);  // before anything is made
  return o;
}

Options resolved_config(Options o) {
  if (!o.config) o.config = Config::from_environment();
  if (!o.config) return o;
  const Config& c = *o.config;
  if (c.deterministic) {  // set in both: they must agree, and the code's (stall_report too) stays
    if (o.deterministic && !same_deterministic(*o.deterministic, *c.deterministic))
      conflict_at(c, "deterministic.seed", "other Options::deterministic settings", "its [deterministic] table");
    if (!o.deterministic) o.deterministic = c.deterministic;
  }
  auto conflict = [&](const std::string& key, const std::string& code, const std::string& file) {
    conflict_at(c, key, code, file);
  };
  if (c.stack_size != 0) {
    if (o.stack_size != 0 && o.stack_size != c.stack_size)
      conflict("workers.stack_size", "Options::stack_size = " + std::to_string(o.stack_size),
               std::to_string(c.stack_size));
    o.stack_size = c.stack_size;
  }
  if (c.max_backlog != 0) {
    if (o.max_backlog != 0 && o.max_backlog != c.max_backlog)
      conflict("scheduling.max_backlog", "Options::max_backlog = " + std::to_string(o.max_backlog),
               std::to_string(c.max_backlog));
    o.max_backlog = c.max_backlog;
  }
  if (!c.on_backlog_full.empty()) {
    const auto action = c.on_backlog_full == "fail" ? Options::BacklogFullAction::Fail : Options::BacklogFullAction::Block;
    if (o.on_backlog_full != Options::BacklogFullAction::Block && o.on_backlog_full != action)
      conflict("scheduling.on_backlog_full", "BacklogFullAction::Fail", "\"" + c.on_backlog_full + "\"");
    o.on_backlog_full = action;
  }
  if (c.sets_policy) {
    const Policy p = *parse_policy(c.policy);
    if (o.policy && *o.policy != p)
      conflict("scheduling.policy", std::string("Options::policy = ") + to_string(*o.policy), "\"" + c.policy + "\"");
    o.policy = p;
  }
  if (c.aging.count() != 0) {
    if (o.aging && *o.aging != c.aging)
      conflict("scheduling.aging", "Options::aging = " + std::to_string(o.aging->count()) + " ns",
               std::to_string(c.aging.count()) + " ns");
    o.aging = c.aging;
  }
  if (c.counters) {
    if (o.metrics.counters && *o.metrics.counters != *c.counters)
      conflict("metrics.counters", std::string("MetricsOptions::counters = ") + (*o.metrics.counters ? "true" : "false"),
               *c.counters ? "true" : "false");
    o.metrics.counters = c.counters;
  }
  if (c.events) {
    if (o.metrics.events && *o.metrics.events != *c.events)
      conflict("metrics.events", "other MetricsOptions::events", "a different list");
    o.metrics.events = c.events;
  }
  if (c.sample_interval.count() != 0) {
    if (o.metrics.sample_interval && o.metrics.sample_interval->count() != 0 &&
        *o.metrics.sample_interval != c.sample_interval)
      conflict("metrics.sample_interval",
               "MetricsOptions::sample_interval = " + std::to_string(o.metrics.sample_interval->count()) + " ns",
               std::to_string(c.sample_interval.count()) + " ns");
    o.metrics.sample_interval = c.sample_interval;
  }
  return o;
}

// Checks MetricsOptions; returns whether event counters are on.
bool check_metrics_options(MetricsOptions& m) {
  if (m.events) {
    if (m.counters && !*m.counters)
      throw UsageError("MetricsOptions::events names " + std::to_string(m.events->size()) +
                       " event(s) but MetricsOptions::counters = false: counting is off, so they would not apply");
    if (m.events->size() > kMaxEvents)
      throw UsageError("MetricsOptions::events names " + std::to_string(m.events->size()) + " events; at most " +
                       std::to_string(kMaxEvents) + " can be counted at once");
    for (const std::string& e : *m.events)
      if (e.empty() || e.size() > 128 || e.find_first_of(" \t\n\r") != std::string::npos)
        throw UsageError("MetricsOptions::events: '" + e + "' is not an event name (PAPI preset such as PAPI_TOT_INS, "
                         "or a native name such as perf::CONTEXT-SWITCHES)");
    m.counters = true;
  }
  if (m.sample_interval && m.sample_interval->count() < 0)
    throw UsageError("MetricsOptions::sample_interval = " + std::to_string(m.sample_interval->count()) +
                     " ns: an interval cannot be negative (0 or unset: no sampling)");
  if (m.sample_interval && *m.sample_interval > std::chrono::hours(1))
    throw UsageError("MetricsOptions::sample_interval = " + std::to_string(m.sample_interval->count()) +
                     " ns: at most 1 hour (as the config's [metrics] sample_interval)");
  if (m.sample_interval && m.sample_interval->count() > 0 && *m.sample_interval < std::chrono::microseconds(100))
    throw UsageError("MetricsOptions::sample_interval = " + std::to_string(m.sample_interval->count()) +
                     " ns: at least 100 us (a sampler that wakes more often costs a core)");
  return m.counters.value_or(false);
}

Plan plan_of(const Topology& topo, const Options& o) {
  const std::optional<Config>& config = o.config;  // resolved() read VITTE_CONFIG already
  // Deterministic: never pinned (check_deterministic_fits refused an explicit pin).
  const Placement placement = o.deterministic ? Placement::Unpinned : o.placement;
  Plan plan;
  if (config) {
    PlanOptions merged = config->merged_with(o.workers, o.placement);
    if (o.deterministic) merged.placement = Placement::Unpinned;
    plan = config->make_plan(topo, merged);
  } else {
    PlanOptions p;
    p.workers = o.workers;
    p.placement = placement;
    plan = Plan::make(topo, p);
  }
  if (o.deterministic) plan.binding_reason = "deterministic mode, the workers take turns";
  return plan;
}

// `bytes` rounded up to whole pages. `name`: where it was set ("Options::stack_size", or the
// config's file, line and key).
std::size_t checked_stack_size(std::size_t bytes, const std::string& name) {
  constexpr std::size_t kMin = 64 * 1024;
  if (bytes == 0) return 0;
  if (bytes < kMin)
    throw PlanError(name + " = " + std::to_string(bytes) + " bytes is below the minimum of " + std::to_string(kMin) +
                    " (64 KiB)");
  constexpr std::size_t kMax = std::size_t{1} << 40;  // 1 TiB: far beyond any real stack
  if (bytes > kMax)
    throw PlanError(name + " = " + std::to_string(bytes) + " bytes is above the maximum of " + std::to_string(kMax) +
                    " (1 TiB)");
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

Topology topology_of(Options& o) {
  if (o.topology) return std::move(*o.topology);
  return Topology::this_machine();
}

// Makes the config's [[groups]] in `tree`; an error names the file and line.
void make_config_groups(GroupTree& tree, const Config& c, bool counting) {
  for (const Config::GroupDecl& d : c.groups) {
    GroupSpec spec;
    spec.name = d.name;
    spec.parent = d.parent;
    spec.weight = d.weight;
    spec.policy = parse_policy(d.policy).value_or(Policy::Fifo);
    spec.counters = d.counters;
    try {
      check_group_counters(spec, counting);
      // The parser checks the weight rule where it can; the arena's policy may come from
      // the code, so make() checks it again, an explicit weight of 1 included.
      tree.make(spec, /*weight_given=*/d.sets_weight);
    } catch (const UsageError& ex) {
      throw ConfigError("config '" + c.source + "' line " + std::to_string(d.line) + ": [[groups]] " + ex.what());
    }
  }
}
}  // namespace

CheckedOptions::~CheckedOptions() {
  if (groups != nullptr) groups->release();
}

CheckedOptions check_options(Options o) {
  o = resolved(std::move(o));
  Topology topo = topology_of(o);
  Plan plan = plan_of(topo, o);
  CheckedOptions c(std::move(o), std::move(topo), std::move(plan));
  Options& opts = c.opts;
  // Named by the config's key when the size came from there (resolved_config took it).
  const std::string stack_size = opts.config && opts.config->stack_size != 0
                                     ? config_at(*opts.config, "workers.stack_size") + ": workers.stack_size"
                                     : "Options::stack_size";
  opts.stack_size = checked_stack_size(opts.stack_size, stack_size);
  if (opts.aging && opts.aging->count() <= 0)
    throw UsageError("Options::aging = " + std::to_string(opts.aging->count()) + " ns: the aging bound must be positive");
  c.counting = check_metrics_options(opts.metrics);
  c.arena_policy = opts.policy.value_or(Policy::Fifo);
  c.groups = make_tree(c.topo.nodes().size(), c.arena_policy);
  if (opts.config) make_config_groups(*c.groups, *opts.config, c.counting);
  return c;
}

void check_group_counters(const GroupSpec& spec, bool counting) {
  if (spec.counters && !counting)
    throw UsageError("group '" + spec.name + "' asks for event counters (GroupSpec::counters) but this scheduler "
                     "counts none: set Options::metrics.counters or [metrics] counters = true");
}

}  // namespace vitte::detail

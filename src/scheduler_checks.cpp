// The checks a Scheduler makes before it starts anything (scheduler_checks.hpp).
#include "scheduler_checks.hpp"

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/merge.hpp"
#include "deterministic/options.hpp"
#include "metrics/event_counters.hpp"
#include "policy/group_tree.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

namespace {
// The deterministic mode: Options, else the config's [deterministic], else VITTE_DETERMINISTIC
// (a default for schedulers that do not choose).
Options resolved(Options o) {
  o = merged_with_config(std::move(o));
  if (!o.deterministic) o.deterministic = deterministic_from_environment();
  check_deterministic_fits(o);  // before anything is made
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
  // Named by the config's key when the size came from there (merged_with_config took it).
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

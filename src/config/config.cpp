// Config parsing and validation (toml++ lives here only).
#include "vitte/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <queue>
#include <set>
#include <sstream>

#include "config/merge.hpp"
#include "config/reader.hpp"
#include "io/regular_file.hpp"
#include <limits>

#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"
#include "vitte/policy.hpp"

namespace vitte {

using detail::GroupReader;
using detail::Reader;
using detail::kMaxConfigEvents;

Config Config::parse(std::string_view text, const std::string& source) {
  Config c;
  c.source = source;
  Reader r(source);
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError("config '" + source + "' line " + std::to_string(e.source().begin.line) + " column " +
                      std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
  r.only_keys(root, "", {"workers", "scheduling", "memory", "groups", "metrics", "deterministic"});
  for (auto&& [name, table] : root)
    if (const toml::table* t = table.as_table())
      for (auto&& [k, v] : *t)
        c.lines[std::string(name.str()) + "." + std::string(k.str())] = v.source().begin.line;

  if (const toml::table* w = r.table(root, "workers")) {
    r.only_keys(*w, "workers.", {"nodes", "per_node", "total", "unit", "cpuset", "reserve", "placement", "stack_size",
                                      "jobserver"});
    if (w->contains("stack_size")) {
      c.stack_size = r.bytes(*w, "stack_size", "workers.stack_size");
      if (c.stack_size == 0) r.fail(w->get("stack_size"), "workers.stack_size = 0: leave the key out for the default");
    }
    if (w->contains("jobserver")) c.jobserver = r.choice(*w, "jobserver", "workers.jobserver", {"auto", "off", "on"});
    if (w->contains("per_node") && w->contains("total"))
      r.fail(w->get("total"), "conflicting settings: workers.per_node and workers.total; give one of them");
    if (w->contains("nodes")) c.plan.nodes = r.nodes(*w, "workers.nodes");
    if (w->contains("per_node")) c.plan.workers_per_node = r.count(*w, "per_node", "workers.per_node", 4096);
    if (w->contains("total")) c.plan.workers = r.count(*w, "total", "workers.total", 65536);
    c.sets_worker_count = w->contains("per_node") || w->contains("total");
    if (w->contains("unit")) {
      if (c.sets_worker_count)
        r.fail(w->get("unit"), "conflicting settings: workers.unit only chooses the default count, but "
                               "workers." + std::string(w->contains("total") ? "total" : "per_node") +
                               " already sets it");
      c.plan.use_smt = r.choice(*w, "unit", "workers.unit", {"core", "pu"}) == "pu";
    }
    if (w->contains("cpuset")) c.plan.cpus = r.cpus(*w, "cpuset", "workers.cpuset");
    if (w->contains("reserve")) c.plan.reserve = r.cpus(*w, "reserve", "workers.reserve");
    if (!c.plan.cpus.empty() && !c.plan.reserve.empty()) {
      bool left = false;
      for (unsigned cpu : c.plan.cpus)
        left = left || std::find(c.plan.reserve.begin(), c.plan.reserve.end(), cpu) == c.plan.reserve.end();
      if (!left) r.fail(w->get("reserve"), "conflicting settings: workers.reserve leaves none of workers.cpuset");
    }
    if (w->contains("placement")) {
      const std::string p = r.choice(*w, "placement", "workers.placement", {"auto", "pin", "unpinned"});
      c.plan.placement = p == "pin" ? Placement::Pin : p == "unpinned" ? Placement::Unpinned : Placement::Auto;
      c.sets_placement = true;
    }
  }
  if (const toml::table* s = r.table(root, "scheduling")) {
    r.only_keys(*s, "scheduling.", {"steal_scope", "policy", "aging", "max_backlog", "on_backlog_full"});
    if (s->contains("max_backlog")) {
      const toml::node* n = s->get("max_backlog");
      if (!n->is_integer() || n->as_integer()->get() < 1)
        r.fail(n, "scheduling.max_backlog = " + Reader::show(*n) + ": expected a whole number of tasks, at least 1");
      c.max_backlog = static_cast<std::size_t>(n->as_integer()->get());
    }
    if (s->contains("on_backlog_full")) {
      if (c.max_backlog == 0)
        r.fail(s->get("on_backlog_full"), "scheduling.on_backlog_full needs scheduling.max_backlog (there is no bound to be full)");
      c.on_backlog_full = r.choice(*s, "on_backlog_full", "scheduling.on_backlog_full", {"block", "fail"});
    }
    if (s->contains("steal_scope"))
      c.plan.cross_node_steals = r.choice(*s, "steal_scope", "scheduling.steal_scope", {"node", "cross-node"}) != "node";
    if (s->contains("policy")) {
      c.policy = r.choice(*s, "policy", "scheduling.policy", {"fifo", "lifo", "priority", "fair"});
      c.sets_policy = true;
    }
    if (s->contains("aging")) c.aging = r.duration(*s, "aging", "scheduling.aging", std::chrono::hours(1));
  }
  if (const toml::table* m = r.table(root, "metrics")) {
    r.only_keys(*m, "metrics.", {"counters", "events", "sample_interval"});
    if (const toml::node* n = m->get("counters")) {
      if (!n->is_boolean()) r.fail(n, "metrics.counters = " + Reader::show(*n) + ": expected true or false");
      c.counters = n->as_boolean()->get();
    }
    if (const toml::node* n = m->get("events")) {
      const toml::array* a = n->as_array();
      if (a == nullptr) r.fail(n, "metrics.events = " + Reader::show(*n) + ": expected a list of event names");
      if (a->size() > kMaxConfigEvents)
        r.fail(n, "metrics.events lists " + std::to_string(a->size()) + " events; at most " +
                      std::to_string(kMaxConfigEvents) + " can be counted at once");
      std::vector<std::string> names;
      for (const toml::node& e : *a) {
        if (!e.is_string() || e.as_string()->get().empty() ||
            e.as_string()->get().find_first_of(" \t\r\n") != std::string::npos)
          r.fail(&e, "metrics.events: " + Reader::show(e) + " is not an event name (a PAPI preset such as "
                     "\"PAPI_TOT_INS\", or a native name such as \"perf::CONTEXT-SWITCHES\")");
        names.emplace_back(e.as_string()->get());
      }
      if (names.empty()) r.fail(n, "metrics.events = []: leave the key out for the default set");
      if (c.counters && !*c.counters)
        r.fail(n, "conflicting settings: metrics.events names events but metrics.counters = false");
      c.events = std::move(names);
      c.counters = true;
    }
    if (m->contains("sample_interval"))
      c.sample_interval = r.duration(*m, "sample_interval", "metrics.sample_interval", std::chrono::hours(1));
    if (c.sample_interval.count() != 0 && c.sample_interval < std::chrono::microseconds(100))
      r.fail(m->get("sample_interval"), "metrics.sample_interval = " + Reader::show(*m->get("sample_interval")) +
                                            ": at least 100us (a sampler that wakes more often costs a core)");
  }
  if (const toml::table* d = r.table(root, "deterministic")) {
    r.only_keys(*d, "deterministic.",
                {"seed", "strategy", "pct_depth", "pct_turns", "task_cost", "max_turns", "record", "replay",
                 "spawn_turns"});
    if (!d->contains("seed"))
      r.fail(d, "[deterministic] needs a seed (deterministic.seed = 42): the seed is what makes a run reproducible");
    DeterministicOptions o;
    auto whole = [&](const char* key, std::int64_t min, std::int64_t max) {
      const toml::node* n = d->get(key);
      const std::string full = std::string("deterministic.") + key;
      if (!n->is_integer()) r.fail(n, full + " = " + Reader::show(*n) + ": expected a whole number");
      const std::int64_t v = n->as_integer()->get();
      if (v < min || v > max)
        r.fail(n, full + " = " + std::to_string(v) + ": expected " + std::to_string(min) + " to " + std::to_string(max));
      return v;
    };
    o.seed = static_cast<std::uint64_t>(whole("seed", 0, std::numeric_limits<std::int64_t>::max()));
    if (d->contains("strategy"))
      o.strategy = *parse_strategy(r.choice(*d, "strategy", "deterministic.strategy", {"random", "pct"}));
    if (d->contains("pct_depth")) o.pct_depth = static_cast<unsigned>(whole("pct_depth", 1, 64));
    if (d->contains("pct_turns"))
      o.pct_turns = static_cast<std::uint64_t>(whole("pct_turns", 1, std::numeric_limits<std::int64_t>::max()));
    if (d->contains("max_turns"))
      o.max_turns = static_cast<std::uint64_t>(whole("max_turns", 0, std::numeric_limits<std::int64_t>::max()));
    if (const toml::node* n = d->get("spawn_turns")) {
      if (!n->is_boolean()) r.fail(n, "deterministic.spawn_turns = " + Reader::show(*n) + ": expected true or false");
      o.spawn_turns = n->as_boolean()->get();
    }
    if (d->contains("task_cost"))
      o.task_cost = r.duration(*d, "task_cost", "deterministic.task_cost", std::chrono::hours(1));
    for (const char* key : {"record", "replay"})
      if (const toml::node* n = d->get(key)) {
        if (!n->is_string() || n->as_string()->get().empty())
          r.fail(n, std::string("deterministic.") + key + " = " + Reader::show(*n) + ": expected a file path");
        (std::string(key) == "record" ? o.record : o.replay) = n->as_string()->get();
      }
    c.deterministic = std::move(o);
  }
  if (const toml::node* g = root.get("groups")) GroupReader(r, c).read(*g);
  if (const toml::table* m = r.table(root, "memory")) {
    r.only_keys(*m, "memory.", {"allocator"});
    if (m->contains("allocator")) {
      const toml::node* n = m->get("allocator");
      if (!n->is_string()) r.fail(n, "memory.allocator = " + Reader::show(*n) + ": expected a string");
      c.allocator = std::string(n->as_string()->get());
      if (c.allocator != "auto" && c.allocator != "system" && c.allocator != "node-local")
        r.fail(n, "memory.allocator = \"" + c.allocator + "\": expected \"auto\", \"system\" or \"node-local\"");
      c.plan.malloc = c.allocator == "node-local" ? PlanOptions::Malloc::NodeLocal
                      : c.allocator == "system"   ? PlanOptions::Malloc::System
                                                  : PlanOptions::Malloc::Auto;
    }
  }
  return c;
}

Config Config::from_file(const std::string& path) {
  std::string text, why;
  if (!detail::read_regular_file(path, kMaxBytes, &text, &why))
    throw ConfigError("config '" + path + "' " + why + " (expected a TOML file of at most " +
                      std::to_string(kMaxBytes >> 10) + " KiB)");
  return parse(text, path);
}

std::optional<Config> Config::from_environment() {
  const char* path = std::getenv("VITTE_CONFIG");
  if (path == nullptr || *path == '\0') return std::nullopt;
  try {
    return from_file(path);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " (named by VITTE_CONFIG)");
  }
}

namespace {
const char* placement_name(Placement p) {
  return p == Placement::Pin ? "\"pin\"" : p == Placement::Unpinned ? "\"unpinned\"" : "\"auto\"";
}
}  // namespace

PlanOptions Config::merged_with(std::size_t code_workers, Placement code_placement) const {
  PlanOptions p = plan;
  if (code_workers != 0) {
    // Equal totals agree; a different total, or per_node (a count of another shape), is a conflict.
    const bool same = plan.workers_per_node == 0 && plan.workers == code_workers;
    if (sets_worker_count && !same) {
      const std::string key = plan.workers_per_node != 0 ? "workers.per_node" : "workers.total";
      detail::config_conflict(*this, key, std::to_string(code_workers) + " workers",
                              std::to_string(plan.workers_per_node != 0 ? plan.workers_per_node : plan.workers));
    }
    p.workers = code_workers;
  }
  if (code_placement != Placement::Auto) {
    if (sets_placement && plan.placement != code_placement)
      detail::config_conflict(*this, "workers.placement",
                              std::string("Options::placement = ") + placement_name(code_placement),
                              placement_name(plan.placement));
    p.placement = code_placement;
  }
  return p;
}

Plan Config::make_plan(const Topology& topo, const PlanOptions& merged) const {
  try {
    return Plan::make(topo, merged);
  } catch (const PlanError& e) {
    const auto at = lines.find(e.key());
    if (e.key().empty() || at == lines.end()) throw;
    throw PlanError("config '" + source + "' line " + std::to_string(at->second) + ": " + e.what(), e.key());
  }
}

}  // namespace vitte

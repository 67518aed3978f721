#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "build_config.hpp"
#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "jobserver/client.hpp"
#include "scheduler_checks.hpp"
#include "vitte/error.hpp"
#include "vitte/memory.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

Topology load_topology(const TopologyArgs& a) {
  if (!a.xml.empty()) return Topology::from_xml(a.xml);
  if (!a.synthetic.empty()) return Topology::from_synthetic(a.synthetic);
  try {
    return Topology::this_machine();
  } catch (const TopologyError& e) {
    throw Failure(kExitRuntime, e.what());  // nothing the user gave is wrong
  }
}

Placement parse_placement(const std::string& s) {
  if (s == "auto") return Placement::Auto;
  if (s == "pin") return Placement::Pin;
  if (s == "unpinned") return Placement::Unpinned;
  throw UsageError("--placement '" + s + "': expected auto, pin or unpinned");
}

std::optional<Config> load_config(const TopologyArgs& a) {
  if (!a.config.empty()) return Config::from_file(a.config);
  return Config::from_environment();
}

MetricsOptions metrics_options(const MetricsArgs& a, const std::optional<Config>& config, bool live) {
  MetricsOptions o;
  if (a.counters) o.counters = true;
  if (!a.events.empty()) {
    std::vector<std::string> events;
    std::size_t start = 0;
    while (start <= a.events.size()) {
      std::size_t end = a.events.find(',', start);
      if (end == std::string::npos) end = a.events.size();
      std::string e = a.events.substr(start, end - start);
      e.erase(0, e.find_first_not_of(" \t"));
      e.erase(e.find_last_not_of(" \t") + 1);
      if (e.empty())
        throw Failure(kExitUsage, "--events '" + a.events +
                                      "': an empty event name (a comma-separated list, e.g. PAPI_TOT_INS,PAPI_L1_DCM)");
      events.push_back(std::move(e));
      start = end + 1;
    }
    o.counters = true;
    o.events = std::move(events);
  }
  // The live view shows queue depths: sample them ten times per refresh, unless the config
  // chose its own interval (a different one here would be a ConfigError).
  if (live && !(config && config->sample_interval.count() > 0)) o.sample_interval = std::chrono::milliseconds(100);
  return o;
}

namespace {

// "20ms", "500us", "1500us": the largest unit that divides the duration.
std::string duration_text(std::chrono::nanoseconds d) {
  const std::int64_t ns = d.count();
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  if (ns % 1000 == 0) return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

// The groups as a tree below the arena: each followed by its children, indented one more
// step per level, siblings in Config::groups order (which holds parents before children).
// Past kMaxIndent levels the depth is written instead (a 1 MiB config can nest 25,000 deep).
void print_groups(const Config& c) {
  constexpr std::size_t kMaxIndent = 16;
  std::map<std::string, std::vector<const Config::GroupDecl*>> children;  // parent -> children
  for (const Config::GroupDecl& g : c.groups) children[g.parent].push_back(&g);
  std::vector<std::pair<const Config::GroupDecl*, std::size_t>> stack;  // group, depth
  const auto push_children = [&](const std::string& parent, std::size_t depth) {
    const auto it = children.find(parent);
    if (it == children.end()) return;
    for (auto g = it->second.rbegin(); g != it->second.rend(); ++g) stack.emplace_back(*g, depth);
  };
  push_children("", 1);
  while (!stack.empty()) {
    const auto [g, depth] = stack.back();
    stack.pop_back();
    std::cout << std::string(2 * std::min(depth, kMaxIndent), ' ')
              << (depth > kMaxIndent ? "(level " + std::to_string(depth) + ") " : "") << g->name << ": weight " << g->weight
              << (g->sets_weight ? "" : " (default)") << ", policy \"" << g->policy << "\""
              << (g->counters ? ", counters" : "") << "\n";
    push_children(g->name, depth + 1);
  }
}

void print_config(const Config& c, const Plan& p) {
  std::cout << "config: " << c.source << "; steal scope " << (p.cross_node_steals ? "cross-node" : "node")
            << "; arena policy \"" << c.policy << "\"" << (c.sets_policy ? "" : " (default)");
  if (c.aging.count() > 0) std::cout << "; aging " << duration_text(c.aging);
  std::cout << "; allocator \"" << c.allocator << "\"\n";
  if (c.counters || c.sample_interval.count() > 0) {
    std::cout << "metrics: event counters " << (c.counters.value_or(false) ? "on" : "off");
    if (c.events) {
      std::cout << " (";
      for (std::size_t i = 0; i < c.events->size(); ++i) std::cout << (i ? ", " : "") << (*c.events)[i];
      std::cout << ")";
    } else if (c.counters.value_or(false)) {
      std::cout << " (the default set)";
    }
    if (c.sample_interval.count() > 0) std::cout << "; queue depth sampled every " << duration_text(c.sample_interval);
    std::cout << "\n";
  }
  if (c.groups.empty()) return;
  std::cout << "groups (" << c.groups.size() << ", below the arena):\n";
  print_groups(c);
}

nlohmann::json config_json(const Config& c, const Plan& p) {
  nlohmann::json groups = nlohmann::json::array();
  for (const Config::GroupDecl& g : c.groups)
    groups.push_back(
        {{"name", g.name}, {"parent", g.parent}, {"weight", g.weight}, {"policy", g.policy}, {"counters", g.counters}});
  nlohmann::json j = {{"source", c.source},
                      {"steal_scope", p.cross_node_steals ? "cross-node" : "node"},
                      {"policy", c.policy},
                      {"policy_applied", true},
                      {"groups", std::move(groups)},
                      {"allocator", c.allocator}};
  if (c.aging.count() > 0) j["aging_ns"] = c.aging.count();
  nlohmann::json m = {{"counters", c.counters.value_or(false)}};
  if (c.events) m["events"] = *c.events;
  if (c.sample_interval.count() > 0) m["sample_interval_ns"] = c.sample_interval.count();
  j["metrics"] = std::move(m);
  return j;
}

}  // namespace

int topo_command(const TopoArgs& args) {
  const std::optional<Config> config = load_config(args.topo);
  // The dry run: what a Scheduler made from these options would check before it starts
  // anything, by the same code, and the plan it would make.
  Options o;
  o.topology = load_topology(args.topo);
  o.config = config;
  o.workers = args.topo.workers;
  o.placement = parse_placement(args.topo.placement);
  const detail::CheckedOptions checked = detail::check_options(std::move(o));
  const Topology& t = checked.topo;
  const Plan& p = checked.plan;
  const bool papi = VITTE_HAVE_PAPI;
  if (args.json) {
    nlohmann::json j = with_schema({});
    j["topology"] = to_json(t);
    j["plan"] = to_json(p, t);
    if (t.is_this_machine()) {
      const MallocRouting m = malloc_routing(p);
      j["plan"]["malloc"] = {{"node_local", m.node_local}, {"reason", m.reason}};
    }
    j["build"] = {{"version", VITTE_VERSION}, {"jemalloc_found", static_cast<bool>(VITTE_HAVE_JEMALLOC)}, {"papi_found", papi},
                  {"node_memory", memory_backend()}};
    if (config) j["config"] = config_json(*config, p);
    const JobserverInfo js = detail::JobserverClient::probe(checked.opts.jobserver.value_or(JobserverMode::Auto));
    j["jobserver"] = {{"in_use", js.in_use}, {"kind", js.kind}, {"option", js.option}, {"note", js.note}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << describe(t);
  if (config) print_config(*config, p);
  std::cout << describe(p, t);
  if (t.is_this_machine()) {
    const MallocRouting m = malloc_routing(p);
    std::cout << "workers' malloc/new: " << (m.node_local ? "their node's arena" : "the system allocator") << " ("
              << m.reason << ")\n";
  }
  const JobserverInfo js = detail::JobserverClient::probe(checked.opts.jobserver.value_or(JobserverMode::Auto));
  if (js.in_use)
    std::cout << "jobserver: in use (" << js.kind << ", " << js.option << "): beyond the process's own job slot, a "
              << "worker runs tasks only while it holds one of make's tokens\n";
  else
    std::cout << "jobserver: none (" << js.note << ")\n";
  std::cout << "build: vitte-scheduler " << VITTE_VERSION << "; node memory: " << memory_backend() << "; PAPI "
            << (papi ? "found" : "not found (Linux's software events still count)") << "\n";
  return 0;
}

}  // namespace vitte::cli

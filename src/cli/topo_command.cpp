#include <cstdio>
#include <iostream>

#include "build_config.hpp"
#include "cli/commands.hpp"
#include "cli/report.hpp"
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

PlanOptions plan_options(const TopologyArgs& a, const std::optional<Config>& config) {
  if (config) return config->merged_with(a.workers, parse_placement(a.placement));
  PlanOptions p;
  p.workers = a.workers;
  p.placement = parse_placement(a.placement);
  return p;
}

int topo_command(const TopoArgs& args) {
  const std::optional<Config> config = load_config(args.topo);
  const Topology t = load_topology(args.topo);
  const PlanOptions o = plan_options(args.topo, config);
  const Plan p = config ? config->make_plan(t, o) : Plan::make(t, o);
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
    if (config)
      j["config"] = {{"source", config->source},
                     {"steal_scope", p.cross_node_steals ? "cross-node" : "node"},
                     {"policy", config->policy},
                     {"policy_applied", false},
                     {"allocator", config->allocator}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << describe(t);
  if (config)
    std::cout << "config: " << config->source << "; steal scope " << (p.cross_node_steals ? "cross-node" : "node")
              << "; policy \"" << config->policy << "\" (recorded, not applied: the policy module is not built yet)"
              << "; allocator \"" << config->allocator << "\"\n";
  std::cout << describe(p, t);
  if (t.is_this_machine()) {
    const MallocRouting m = malloc_routing(p);
    std::cout << "workers' malloc/new: " << (m.node_local ? "their node's arena" : "the system allocator") << " ("
              << m.reason << ")\n";
  }
  std::cout << "build: vitte-scheduler " << VITTE_VERSION << "; node memory: " << memory_backend() << "; PAPI "
            << (papi ? "found, counters not wired in yet" : "not found") << "\n";
  return 0;
}

}  // namespace vitte::cli

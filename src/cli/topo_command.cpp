#include <cstdio>
#include <iostream>

#include "build_config.hpp"
#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "vitte/error.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

Topology load_topology(const TopologyArgs& a) {
  if (!a.xml.empty()) return Topology::from_xml(a.xml);
  if (!a.synthetic.empty()) return Topology::from_synthetic(a.synthetic);
  return Topology::this_machine();
}

Placement parse_placement(const std::string& s) {
  if (s == "auto") return Placement::Auto;
  if (s == "pin") return Placement::Pin;
  if (s == "unpinned") return Placement::Unpinned;
  throw UsageError("--placement '" + s + "': expected auto, pin or unpinned");
}

PlanOptions plan_options(const TopologyArgs& a) {
  PlanOptions p;
  p.workers = a.workers;
  p.placement = parse_placement(a.placement);
  return p;
}

int topo_command(const TopoArgs& args) {
  const Topology t = load_topology(args.topo);
  const Plan p = Plan::make(t, plan_options(args.topo));
  const bool jemalloc = VITTE_HAVE_JEMALLOC, papi = VITTE_HAVE_PAPI;
  if (args.json) {
    nlohmann::json j;
    j["topology"] = to_json(t);
    j["plan"] = to_json(p, t);
    j["build"] = {{"version", VITTE_VERSION}, {"jemalloc_found", jemalloc}, {"papi_found", papi}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << describe(t) << describe(p, t);
  std::cout << "build: vitte-scheduler " << VITTE_VERSION << "; jemalloc " << (jemalloc ? "found" : "not found")
            << ", PAPI " << (papi ? "found" : "not found")
            << " (node-local allocators and hardware counters are not wired in yet)\n";
  return 0;
}

}  // namespace vitte::cli

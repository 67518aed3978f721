// The subcommands of vitte-sched. Each returns the process exit status.
#pragma once

#include <cstddef>
#include <string>

#include <optional>

#include "vitte/config.hpp"
#include "vitte/plan.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

// Where the topology comes from, shared by every subcommand.
struct TopologyArgs {
  std::string config;     // --config FILE (default: $VITTE_CONFIG)
  std::string xml;        // --topology FILE
  std::string synthetic;  // --synthetic DESC
  std::size_t workers = 0;
  std::string placement = "auto";
};

struct TopoArgs {
  TopologyArgs topo;
  bool json = false;
};

struct RunArgs {
  TopologyArgs topo;
  std::string dir = "/usr/include";
  bool json = false;
  bool skip_baseline = false;
};

int topo_command(const TopoArgs& args);
int run_command(const RunArgs& args);

// Helpers shared by the commands.
Topology load_topology(const TopologyArgs& a);
Placement parse_placement(const std::string& s);
// The config to use (--config, else VITTE_CONFIG) and the plan options it yields.
std::optional<Config> load_config(const TopologyArgs& a);
PlanOptions plan_options(const TopologyArgs& a, const std::optional<Config>& config);

}  // namespace vitte::cli

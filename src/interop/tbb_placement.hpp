// The decision behind each node's oneTBB arena, as a pure function of the topology, the
// plan and what oneTBB reports, so that it can be tested on topologies of other machines.
#pragma once

#include <utility>
#include <vector>

#include "vitte/plan.hpp"
#include "vitte/tbb_interop.hpp"
#include "vitte/topology.hpp"

namespace vitte::detail {

struct TbbEnvironment {
  bool tbbbind = false;  // oneTBB loaded its hwloc binding (libtbbbind)
  // Linux node number -> oneTBB's numa id, as tbbbind numbers the nodes (hwloc logical
  // index in the topology restricted to the process's binding).
  std::vector<std::pair<unsigned, int>> numa_ids;
  std::vector<int> tbb_nodes;  // tbb::info::numa_nodes()
};

// The spec of `node`'s arena; `node` must have workers in `plan`.
TbbArenaSpec plan_tbb_arena(const Topology& topo, const Plan& plan, unsigned node, const TbbEnvironment& env);

// What oneTBB reports on this machine (loads oneTBB's topology support).
const TbbEnvironment& tbb_environment();

}  // namespace vitte::detail

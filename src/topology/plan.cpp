// Plan::make: spreads workers over the nodes, gives each one a PU, decides binding, and
// precomputes every worker's steal order. Pure function of (topology, options).
//
// Spread: workers go one at a time to the node with the fewest workers per core, among
// the nodes that still have a free PU (ties: lowest id), so nodes fill in proportion to
// their cores. Within a node, workers take the first PU of each core in core order, then
// the second PU of each core (SMT siblings last).
#include "vitte/plan.hpp"

#include <algorithm>
#include <map>

#include "vitte/error.hpp"

namespace vitte {

const char* to_string(Binding b) noexcept {
  switch (b) {
    case Binding::Pinned: return "pinned";
    case Binding::Unpinned: return "unpinned";
    case Binding::Folded: return "folded";
  }
  return "?";
}

const char* to_string(StealLevel::Kind k) noexcept {
  switch (k) {
    case StealLevel::Kind::SameL3: return "same-l3";
    case StealLevel::Kind::SameNode: return "same-node";
    case StealLevel::Kind::Remote: return "remote";
  }
  return "?";
}

namespace {

std::vector<unsigned> pu_slots(const Topology& topo, const NumaNode& node) {
  std::vector<unsigned> slots;
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (unsigned c : node.cores) {
      const Core& core = topo.cores()[c];
      if (round < core.pus.size()) {
        slots.push_back(core.pus[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return slots;
}

}  // namespace

Plan Plan::make(const Topology& topo, const PlanOptions& opts) {
  Plan plan;
  plan.topology_source = topo.source();
  const std::size_t total_pus = topo.pus().size();
  const std::size_t n = opts.workers == 0 ? topo.cores().size() : opts.workers;
  const std::string src = "'" + topo.source() + "'";

  // Binding.
  std::vector<unsigned> fold_cpus;
  if (opts.placement == Placement::Unpinned) {
    plan.binding = Binding::Unpinned;
    plan.binding_reason = "unpinned by request";
  } else if (topo.is_this_machine()) {
    if (n <= total_pus) {
      plan.binding = Binding::Pinned;
      plan.binding_reason = "each worker is bound to its own PU of this machine";
    } else if (opts.placement == Placement::Pin) {
      throw PlanError("pinned placement of " + std::to_string(n) + " workers needs " + std::to_string(n) +
                      " PUs, but " + src + " has only " + std::to_string(total_pus) +
                      " PUs this process may use");
    } else {
      plan.binding = Binding::Unpinned;
      plan.binding_reason = std::to_string(n) + " workers for " + std::to_string(total_pus) +
                            " PUs: oversubscribed, so the threads are not pinned";
    }
  } else if (opts.placement == Placement::Pin) {
    if (n > total_pus)
      throw PlanError("pinned placement of " + std::to_string(n) + " workers needs " + std::to_string(n) +
                      " PUs, but " + src + " has only " + std::to_string(total_pus) + " PUs");
    const Topology real = Topology::this_machine();
    for (const Pu& p : real.pus()) fold_cpus.push_back(p.os_index);
    plan.binding = Binding::Folded;
    plan.binding_reason = "topology " + src + " is not this machine: its workers keep its node structure and are "
                          "bound round-robin onto this machine's " + std::to_string(fold_cpus.size()) + " PUs";
  } else {
    plan.binding = Binding::Unpinned;
    plan.binding_reason = "topology " + src +
                          " is not this machine: workers keep its node structure and steal order, unpinned";
  }

  // Spread over the nodes.
  const std::vector<unsigned> cpu_nodes = topo.nodes_with_cpus();
  std::map<unsigned, std::size_t> count;
  for (std::size_t k = 0; k < n; ++k) {
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; ++pass) {
      double best_ratio = 0;
      for (unsigned id : cpu_nodes) {
        const NumaNode& node = topo.nodes()[id];
        std::size_t pus = 0;
        for (unsigned c : node.cores) pus += topo.cores()[c].pus.size();
        if (pass == 0 && count[id] >= pus) continue;  // first pass: nodes with a free PU
        const double ratio = static_cast<double>(count[id] + 1) / static_cast<double>(node.cores.size());
        if (best < 0 || ratio < best_ratio) {
          best = static_cast<int>(id);
          best_ratio = ratio;
        }
      }
    }
    ++count[static_cast<unsigned>(best)];
  }

  plan.arenas.assign(topo.nodes().size(), {});
  for (unsigned id : cpu_nodes) {
    const std::vector<unsigned> slots = pu_slots(topo, topo.nodes()[id]);
    for (std::size_t j = 0; j < count[id]; ++j) {
      WorkerSlot w;
      w.index = static_cast<unsigned>(plan.workers.size());
      w.node = id;
      w.pu = slots[j % slots.size()];
      w.core = topo.pus()[w.pu].core;
      w.l3 = topo.cores()[w.core].l3;
      if (plan.binding == Binding::Pinned) w.os_cpu = static_cast<int>(topo.pus()[w.pu].os_index);
      if (plan.binding == Binding::Folded) w.os_cpu = static_cast<int>(fold_cpus[w.index % fold_cpus.size()]);
      plan.arenas[id].push_back(w.index);
      plan.workers.push_back(w);
    }
  }

  // Steal orders.
  plan.steal_order.resize(plan.workers.size());
  for (const WorkerSlot& w : plan.workers) {
    std::vector<StealLevel>& levels = plan.steal_order[w.index];
    StealLevel l3{StealLevel::Kind::SameL3, topo.distance(w.node, w.node), {}, {}};
    StealLevel node{StealLevel::Kind::SameNode, topo.distance(w.node, w.node), {}, {}};
    for (unsigned v : plan.arenas[w.node]) {
      if (v == w.index) continue;
      (plan.workers[v].l3 == w.l3 ? l3 : node).workers.push_back(v);
    }
    if (!l3.workers.empty()) levels.push_back(std::move(l3));
    if (!node.workers.empty()) levels.push_back(std::move(node));
    for (unsigned other : topo.nodes_by_distance(w.node)) {
      if (plan.arenas[other].empty()) continue;
      const unsigned d = topo.distance(w.node, other);
      if (levels.empty() || levels.back().kind != StealLevel::Kind::Remote || levels.back().distance != d)
        levels.push_back(StealLevel{StealLevel::Kind::Remote, d, {}, {}});
      levels.back().nodes.push_back(other);
      for (unsigned v : plan.arenas[other]) levels.back().workers.push_back(v);
    }
  }
  return plan;
}

}  // namespace vitte

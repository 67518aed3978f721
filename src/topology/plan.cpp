// Plan::make: spreads workers over the nodes, gives each one a PU, decides binding, and
// precomputes every worker's steal order. Pure function of (topology, options).
//
// Spread: workers go one at a time to the node with the fewest workers per core, among
// the nodes that still have a free PU (ties: lowest id), so nodes fill in proportion to
// their cores. Within a node, workers take the first PU of each core in core order, then
// the second PU of each core (SMT siblings last).
#include "vitte/plan.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

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

std::string cpu_list(const std::vector<unsigned>& v) {
  std::string s;
  for (unsigned x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// Checks that every Linux CPU in `cpus` belongs to the topology and may be used.
void check_cpus(const Topology& topo, const std::vector<unsigned>& cpus, const char* what) {
  std::set<unsigned> known;
  for (const Pu& p : topo.pus()) known.insert(p.os_index);
  const std::set<unsigned> unusable(topo.unusable_os_cpus().begin(), topo.unusable_os_cpus().end());
  for (unsigned c : cpus) {
    if (known.count(c) != 0) continue;
    if (unusable.count(c) != 0)
      throw PlanError(std::string(what) + " names CPU " + std::to_string(c) + ", which this process may not use (" +
                      topo.restriction() + ")", what);
    throw PlanError(std::string(what) + " names CPU " + std::to_string(c) + ", which '" + topo.source() +
                    "' does not have (its CPUs: " + std::to_string(topo.pus().size()) + " PUs, Linux numbers " +
                    cpu_list([&] {
                      std::vector<unsigned> v(known.begin(), known.end());
                      return v;
                    }()) + ")", what);
  }
}

// The PUs (logical ids) workers may take on a node, in the order they are handed out:
// first PU of every core, then the second PU of every core (SMT siblings), and so on.
// *cores receives the number of cores with at least one usable PU.
std::vector<unsigned> pu_slots(const Topology& topo, const NumaNode& node, const PlanOptions& opts,
                               std::size_t* cores) {
  const std::set<unsigned> only(opts.cpus.begin(), opts.cpus.end());
  const std::set<unsigned> reserve(opts.reserve.begin(), opts.reserve.end());
  auto usable = [&](unsigned pu) {
    const unsigned os = topo.pus()[pu].os_index;
    return (only.empty() || only.count(os) != 0) && reserve.count(os) == 0;
  };
  std::vector<std::vector<unsigned>> per_core;
  for (unsigned c : node.cores) {
    std::vector<unsigned> pus;
    for (unsigned pu : topo.cores()[c].pus)
      if (usable(pu)) pus.push_back(pu);
    if (!pus.empty()) per_core.push_back(std::move(pus));
  }
  *cores = per_core.size();
  std::vector<unsigned> slots;
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (const auto& pus : per_core)
      if (round < pus.size()) {
        slots.push_back(pus[round]);
        any = true;
      }
    if (!any) break;
  }
  return slots;
}

}  // namespace

std::size_t Plan::max_workers(const Topology& topo) noexcept {
  const std::size_t per_pu = kMaxWorkersPerPu * std::max<std::size_t>(topo.pus().size(), 1);
  return std::min(per_pu, kMaxWorkers);
}

std::vector<unsigned> Plan::victims(const StealLevel& l) const {
  std::vector<unsigned> v;
  v.reserve(l.count);
  for (unsigned k = 0; k < l.count; ++k) v.push_back(victim(l, k));
  return v;
}

Plan Plan::make(const Topology& topo, const PlanOptions& opts) {
  Plan plan;
  plan.topology_source = topo.source();
  plan.cross_node_steals = opts.cross_node_steals;
  plan.malloc = opts.malloc;
  const std::string src = "'" + topo.source() + "'";
  if (opts.workers != 0 && opts.workers_per_node != 0)
    throw PlanError("conflicting settings: " + std::to_string(opts.workers) + " workers in all and " +
                    std::to_string(opts.workers_per_node) + " per node; give one of them");
  // Bounds first: everything below is linear in the workers, but a count such as
  // size_t(-1) must not even start the loops.
  const std::size_t limit = max_workers(topo);
  const std::string why_limit = "the limit for " + src + " is " + std::to_string(limit) + " (" +
                                std::to_string(kMaxWorkersPerPu) + " per PU x " + std::to_string(topo.pus().size()) +
                                " PUs, never more than " + std::to_string(kMaxWorkers) + ")";
  const auto negative = [](std::size_t n) {
    return n > SIZE_MAX / 2 ? std::string(" (a negative number converted to size_t?)") : std::string();
  };
  if (opts.workers > limit)
    throw PlanError(std::to_string(opts.workers) + " workers asked" + negative(opts.workers) + ": too many; " +
                        why_limit, "workers.total");
  if (opts.workers_per_node > limit)
    throw PlanError(std::to_string(opts.workers_per_node) + " workers per node asked" +
                        negative(opts.workers_per_node) + ": too many; " + why_limit,
                    "workers.per_node");
  check_cpus(topo, opts.cpus, "workers.cpuset");
  check_cpus(topo, opts.reserve, "workers.reserve");

  // Nodes and their slots.
  std::vector<unsigned> chosen;
  if (!opts.nodes.empty()) {
    for (unsigned n : opts.nodes) {
      if (n >= topo.nodes().size())
        throw PlanError("workers.nodes names node " + std::to_string(n) + ", which does not exist: " + src +
                        " has nodes 0.." +
                        std::to_string(topo.nodes().size() - 1), "workers.nodes");
      if (!topo.nodes()[n].has_cpus())
        throw PlanError("workers.nodes names node " + std::to_string(n) + ", which has no CPUs" +
                        (topo.nodes()[n].subtype.empty() ? "" : " (" + topo.nodes()[n].subtype + " memory)") +
                        ": workers cannot run there", "workers.nodes");
      if (std::find(chosen.begin(), chosen.end(), n) != chosen.end())
        throw PlanError("workers.nodes names node " + std::to_string(n) + " twice", "workers.nodes");
      chosen.push_back(n);
    }
    std::sort(chosen.begin(), chosen.end());
  } else {
    chosen = topo.nodes_with_cpus();
  }
  std::map<unsigned, std::vector<unsigned>> slots;
  std::map<unsigned, std::size_t> cores;
  for (unsigned n : chosen) {
    slots[n] = pu_slots(topo, topo.nodes()[n], opts, &cores[n]);
    if (slots[n].empty() && !opts.nodes.empty())
      throw PlanError("node " + std::to_string(n) + " has no CPU left for workers after cpuset" +
                      (opts.cpus.empty() ? "" : " '" + cpu_list(opts.cpus) + "'") + " and reserve" +
                      (opts.reserve.empty() ? "" : " '" + cpu_list(opts.reserve) + "'"),
                      opts.reserve.empty() ? "workers.cpuset" : "workers.reserve");
  }
  std::erase_if(chosen, [&](unsigned n) { return slots[n].empty(); });
  if (chosen.empty())
    throw PlanError("no CPU is left for workers in " + src + " (cpuset '" + cpu_list(opts.cpus) + "', reserve '" +
                    cpu_list(opts.reserve) + "')");
  std::size_t total_slots = 0;
  for (unsigned n : chosen) total_slots += slots[n].size();

  // How many workers on each node.
  std::map<unsigned, std::size_t> count;
  std::size_t n = 0;
  if (opts.workers_per_node != 0) {
    for (unsigned id : chosen) count[id] = opts.workers_per_node;
    n = opts.workers_per_node * chosen.size();  // no overflow: both are bounded above
    if (n > limit)
      throw PlanError(std::to_string(opts.workers_per_node) + " workers per node on " + std::to_string(chosen.size()) +
                          " nodes make " + std::to_string(n) + " workers: too many; " + why_limit,
                      "workers.per_node");
  } else if (opts.workers != 0) {
    n = opts.workers;
    for (std::size_t k = 0; k < n; ++k) {
      int best = -1;
      for (int pass = 0; pass < 2 && best < 0; ++pass) {
        double best_ratio = 0;
        for (unsigned id : chosen) {
          if (pass == 0 && count[id] >= slots[id].size()) continue;  // first pass: nodes with a free slot
          const double ratio = static_cast<double>(count[id] + 1) / static_cast<double>(slots[id].size());
          if (best < 0 || ratio < best_ratio) {
            best = static_cast<int>(id);
            best_ratio = ratio;
          }
        }
      }
      ++count[static_cast<unsigned>(best)];
    }
  } else {
    for (unsigned id : chosen) {
      count[id] = opts.use_smt ? slots[id].size() : cores[id];
      n += count[id];
    }
  }
  std::string crowded;  // the first node with more workers than slots
  for (unsigned id : chosen)
    if (count[id] > slots[id].size() && crowded.empty())
      crowded = "node " + std::to_string(id) + " gets " + std::to_string(count[id]) + " workers for " +
                std::to_string(slots[id].size()) + " usable PUs";

  // A CPU restriction (cpuset, reserve) is never dropped silently: workers that float
  // (more of them than the allowed PUs, or unpinned by request) could run on the very CPUs
  // the config excluded, so such a plan is refused rather than quietly unpinned.
  const bool restricted = !opts.cpus.empty() || !opts.reserve.empty();
  std::string restriction;
  if (!opts.cpus.empty()) restriction = "workers.cpuset '" + cpu_list(opts.cpus) + "'";
  if (!opts.reserve.empty())
    restriction += (restriction.empty() ? "" : " and ") + std::string("workers.reserve '") + cpu_list(opts.reserve) + "'";
  const std::string restriction_key = opts.reserve.empty() ? "workers.cpuset" : "workers.reserve";
  if (restricted && !crowded.empty())
    throw PlanError(std::to_string(n) + " workers need " + std::to_string(n) + " PUs, but " + restriction +
                        " leave(s) " + std::to_string(total_slots) + " usable PU(s) in " + src + " (" + crowded +
                        "): unpinned workers would run on the excluded CPUs; ask for at most " +
                        std::to_string(total_slots) + " workers or widen the restriction",
                    restriction_key);
  if (restricted && opts.placement == Placement::Unpinned && topo.is_this_machine())
    throw PlanError("placement \"unpinned\" with " + restriction +
                        ": unpinned workers would run on the excluded CPUs; pin them (placement \"auto\" or "
                        "\"pin\") or drop the restriction",
                    restriction_key);

  // Binding.
  std::vector<unsigned> fold_cpus;
  const std::string unit = " PUs";
  if (opts.placement == Placement::Unpinned) {
    plan.binding = Binding::Unpinned;
    plan.binding_reason = "unpinned by request";
  } else if (!crowded.empty()) {
    const std::string what = "placement of " + std::to_string(n) + " workers needs " + std::to_string(n) +
                             unit + ", but " + src + " offers " + std::to_string(total_slots) + " (" + crowded + ")";
    if (opts.placement == Placement::Pin || opts.workers_per_node != 0)
      throw PlanError("pinned " + what, opts.placement == Placement::Pin ? "workers.placement" : "workers.per_node");
    plan.binding = Binding::Unpinned;
    plan.binding_reason = std::to_string(n) + " workers for " + std::to_string(total_slots) + unit +
                          ": oversubscribed, so the threads are not pinned";
  } else if (topo.is_this_machine()) {
    plan.binding = Binding::Pinned;
    plan.binding_reason = "each worker is bound to its own PU of this machine";
  } else if (opts.placement == Placement::Pin) {
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

  if (opts.malloc == PlanOptions::Malloc::NodeLocal && plan.binding != Binding::Pinned)
    throw PlanError("memory.allocator = \"node-local\" needs workers pinned to this machine's nodes, but this plan is " +
                    std::string(to_string(plan.binding)) + " (" + plan.binding_reason + ")",
                    "memory.allocator");

  plan.arenas.assign(topo.nodes().size(), {});
  for (unsigned id : chosen) {
    const std::vector<unsigned>& sl = slots[id];
    for (std::size_t j = 0; j < count[id]; ++j) {
      WorkerSlot w;
      w.index = static_cast<unsigned>(plan.workers.size());
      w.node = id;
      w.pu = sl[j % sl.size()];
      w.core = topo.pus()[w.pu].core;
      w.l3 = topo.cores()[w.core].l3;
      if (plan.binding == Binding::Pinned) w.os_cpu = static_cast<int>(topo.pus()[w.pu].os_index);
      if (plan.binding == Binding::Folded) w.os_cpu = static_cast<int>(fold_cpus[w.index % fold_cpus.size()]);
      plan.arenas[id].push_back(w.index);
      plan.workers.push_back(w);
    }
  }

  // Steal orders, from shared lists (memory linear in the workers). Each node's list holds
  // its workers ordered by L3 group, so a worker's same-L3 level is the window of its own
  // group (itself skipped) and its same-node level the rest of the ring.
  const std::size_t nw = plan.workers.size();
  std::vector<unsigned> node_list(topo.nodes().size(), 0);
  std::vector<unsigned> pos(nw), group_begin(nw), group_size(nw);
  for (unsigned id : chosen) {
    VictimList vl;
    vl.nodes = {id};
    vl.workers = plan.arenas[id];
    std::stable_sort(vl.workers.begin(), vl.workers.end(),
                     [&](unsigned a, unsigned b) { return plan.workers[a].l3 < plan.workers[b].l3; });
    for (std::size_t i = 0; i < vl.workers.size();) {
      std::size_t j = i;
      while (j < vl.workers.size() && plan.workers[vl.workers[j]].l3 == plan.workers[vl.workers[i]].l3) ++j;
      // An inferred group (no L3 in the topology) is no cache level: its workers get no
      // same-L3 level, only same-node (each is a group of one).
      const bool inferred = topo.l3s()[plan.workers[vl.workers[i]].l3].inferred;
      for (std::size_t k = i; k < j; ++k) {
        pos[vl.workers[k]] = static_cast<unsigned>(k);
        group_begin[vl.workers[k]] = static_cast<unsigned>(inferred ? k : i);
        group_size[vl.workers[k]] = static_cast<unsigned>(inferred ? 1 : j - i);
      }
      i = j;
    }
    node_list[id] = static_cast<unsigned>(plan.victim_lists.size());
    plan.victim_lists.push_back(std::move(vl));
  }
  // Remote levels: one shared list per (node, distance), nearest first.
  std::vector<std::vector<StealLevel>> remote(topo.nodes().size());
  if (opts.cross_node_steals)
    for (unsigned id : chosen)
      for (unsigned other : topo.nodes_by_distance(id)) {
        if (plan.arenas[other].empty()) continue;
        const unsigned d = topo.distance(id, other);
        if (remote[id].empty() || remote[id].back().distance != d) {
          remote[id].push_back(StealLevel{StealLevel::Kind::Remote, d,
                                          static_cast<unsigned>(plan.victim_lists.size()), 0, 0, 0, 0});
          plan.victim_lists.emplace_back();
        }
        VictimList& vl = plan.victim_lists[remote[id].back().list];
        vl.nodes.push_back(other);
        vl.workers.insert(vl.workers.end(), plan.arenas[other].begin(), plan.arenas[other].end());
        remote[id].back().size = remote[id].back().count = static_cast<unsigned>(vl.workers.size());
      }
  plan.steal_order.resize(nw);
  for (const WorkerSlot& w : plan.workers) {
    std::vector<StealLevel>& levels = plan.steal_order[w.index];
    const unsigned list = node_list[w.node];
    const unsigned n = static_cast<unsigned>(plan.arenas[w.node].size());
    const unsigned local = topo.distance(w.node, w.node);
    const unsigned gb = group_begin[w.index], gs = group_size[w.index], p = pos[w.index];
    if (gs > 1)
      levels.push_back(StealLevel{StealLevel::Kind::SameL3, local, list, gb, gs, (p - gb + 1) % gs, gs - 1});
    if (n > gs) levels.push_back(StealLevel{StealLevel::Kind::SameNode, local, list, 0, n, (gb + gs) % n, n - gs});
    levels.insert(levels.end(), remote[w.node].begin(), remote[w.node].end());
  }
  return plan;
}

}  // namespace vitte

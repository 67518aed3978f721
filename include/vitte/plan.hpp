// Plan: where each worker runs and in which order it looks for work.
//
// Built from a Topology before any thread starts, so a bad request fails without side
// effects, and so `vitte-sched topo` can print the exact plan a Scheduler would use.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vitte/topology.hpp"

namespace vitte {

enum class Placement {
  Auto,      // pin on this machine when every worker gets its own PU, else run unpinned
  Pin,       // pin or fail; a topology of another machine is folded onto this one's PUs
  Unpinned,  // never pin
};

// How the worker threads are bound, stated in the plan (never silently).
enum class Binding {
  Pinned,    // each worker is bound to the PU the plan names
  Unpinned,  // threads float; the plan's PUs only describe the node structure
  Folded,    // a foreign topology's workers bound round-robin onto this machine's PUs
};

// Which workers to start and where. The defaults give one worker per core on every node
// that has CPUs. A Config (config.hpp) fills these from a file.
struct PlanOptions {
  std::size_t workers = 0;           // total, spread over the nodes (0: see workers_per_node)
  Placement placement = Placement::Auto;
  std::size_t workers_per_node = 0;  // exactly this many on each chosen node (0: unset)
  std::vector<unsigned> nodes;       // nodes to use, logical ids (empty: all with CPUs)
  bool use_smt = false;              // default count: one worker per PU instead of per core
                                     // (extra workers always go to SMT siblings last)
  std::vector<unsigned> cpus;        // Linux CPUs workers may use (empty: all usable)
  std::vector<unsigned> reserve;     // Linux CPUs to leave free
  bool cross_node_steals = true;     // false: workers never steal from other nodes
  // Where workers' plain malloc/new come from: Auto decides at start-up (see
  // vitte::malloc_routing), NodeLocal insists (pinned workers, jemalloc as the malloc).
  enum class Malloc { Auto, System, NodeLocal } malloc = Malloc::Auto;
};

struct WorkerSlot {
  unsigned index = 0;
  unsigned node = 0;
  unsigned core = 0;
  unsigned pu = 0;       // logical PU in the plan's topology
  unsigned l3 = 0;
  int os_cpu = -1;       // Linux CPU the thread is bound to; -1 when unpinned
};

// A list of steal victims shared by the steal orders of many workers, so that a plan's
// memory grows linearly with its workers: the workers of one node ordered by L3 group
// (every same-L3 and same-node level is a window of it), or the workers of the nodes at
// one distance from a node (shared by all of that node's workers).
struct VictimList {
  std::vector<unsigned> workers;
  std::vector<unsigned> nodes;  // whose workers these are; Remote levels try their injection queues too
};

// One step of a worker's steal order: a window of a shared VictimList seen as a ring.
// Victim k (0 <= k < count) is list.workers[base + (first + k) % size]; the thief itself is
// never in its window. Victims of one level are tried in random order.
struct StealLevel {
  enum class Kind { SameL3, SameNode, Remote };
  Kind kind = Kind::SameL3;
  unsigned distance = 10;  // NUMA distance of the level's nodes
  unsigned list = 0;       // index into Plan::victim_lists
  unsigned base = 0;       // the ring: list.workers[base, base + size)
  unsigned size = 0;
  unsigned first = 0;      // offset in the ring of victim 0
  unsigned count = 0;      // victims in the window (<= size)
};

struct Plan {
  // Worker counts are bounded by the machine: at most kMaxWorkersPerPu workers per PU of
  // the topology, and never more than kMaxWorkers (docs/design.md, "Bounds").
  static constexpr std::size_t kMaxWorkersPerPu = 4;
  static constexpr std::size_t kMaxWorkers = 16384;
  static std::size_t max_workers(const Topology& topo) noexcept;

  static Plan make(const Topology& topo, const PlanOptions& opts);

  std::vector<WorkerSlot> workers;
  std::vector<std::vector<unsigned>> arenas;       // node id -> its workers (empty: no arena)
  std::vector<VictimList> victim_lists;            // shared by the steal orders
  std::vector<std::vector<StealLevel>> steal_order;  // worker index -> levels, nearest first
  Binding binding = Binding::Unpinned;
  std::string binding_reason;  // one sentence a user can read
  std::string topology_source;
  bool cross_node_steals = true;
  PlanOptions::Malloc malloc = PlanOptions::Malloc::Auto;

  // Victim k of a level (k < l.count).
  unsigned victim(const StealLevel& l, unsigned k) const noexcept {
    const unsigned r = l.first + k;
    return victim_lists[l.list].workers[l.base + (r >= l.size ? r - l.size : r)];
  }
  // All victims of a level, in ring order (for reports and tests; allocates).
  std::vector<unsigned> victims(const StealLevel& l) const;
  // The nodes of a level's list (Remote: those whose injection queues are tried).
  const std::vector<unsigned>& nodes(const StealLevel& l) const noexcept { return victim_lists[l.list].nodes; }
};

const char* to_string(Binding b) noexcept;
const char* to_string(StealLevel::Kind k) noexcept;

}  // namespace vitte

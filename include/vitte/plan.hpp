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

struct PlanOptions {
  std::size_t workers = 0;  // 0: one per core
  Placement placement = Placement::Auto;
};

struct WorkerSlot {
  unsigned index = 0;
  unsigned node = 0;
  unsigned core = 0;
  unsigned pu = 0;       // logical PU in the plan's topology
  unsigned l3 = 0;
  int os_cpu = -1;       // Linux CPU the thread is bound to; -1 when unpinned
};

// One step of a worker's steal order. Victims of one level are tried in random order.
struct StealLevel {
  enum class Kind { SameL3, SameNode, Remote };
  Kind kind = Kind::SameL3;
  unsigned distance = 10;          // NUMA distance of the level's nodes
  std::vector<unsigned> workers;   // victims' worker indexes
  std::vector<unsigned> nodes;     // Remote: nodes whose injection queues are tried too
};

struct Plan {
  static Plan make(const Topology& topo, const PlanOptions& opts);

  std::vector<WorkerSlot> workers;
  std::vector<std::vector<unsigned>> arenas;       // node id -> its workers (empty: no arena)
  std::vector<std::vector<StealLevel>> steal_order;  // worker index -> levels, nearest first
  Binding binding = Binding::Unpinned;
  std::string binding_reason;  // one sentence a user can read
  std::string topology_source;
};

const char* to_string(Binding b) noexcept;
const char* to_string(StealLevel::Kind k) noexcept;

}  // namespace vitte

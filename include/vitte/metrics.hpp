// Metrics: what each worker and each node did, read as a snapshot.
//
// Counting stays on in release builds: every counter is written by its own worker alone
// (no shared atomics on the hot path) and a snapshot sums them without stopping anyone.
#pragma once

#include <cstdint>
#include <vector>

#include "vitte/memory.hpp"
#include "vitte/policy.hpp"

namespace vitte {

struct Counts {
  std::uint64_t executed = 0;        // tasks run
  std::uint64_t skipped = 0;         // tasks of a cancelled group (or failed loop), not run
  std::uint64_t failed = 0;          // tasks that threw
  std::uint64_t spawned = 0;         // tasks pushed to a worker's own deque
  std::uint64_t injected_taken = 0;  // tasks taken from the own node's injection queue
  std::uint64_t steals_l3 = 0;       // successful steals within the same L3
  std::uint64_t steals_node = 0;     // ... within the same NUMA node, other L3
  std::uint64_t steals_remote = 0;   // ... from another node (deque or injection queue)
  std::uint64_t failed_steal_rounds = 0;  // passes over all victims that found nothing
  std::uint64_t parks = 0;           // times a worker went to sleep
  std::uint64_t wakeups = 0;         // times a producer woke a sleeping worker
  std::uint64_t boxed = 0;           // closures too big for a task frame (heap-boxed)
  std::uint64_t policy_taken = 0;    // policy work (policy.hpp) taken from a node's ReadyQueue

  std::uint64_t steals() const noexcept { return steals_l3 + steals_node + steals_remote; }
  // Remote steals over all steals; 0 when nothing was stolen.
  double remote_steal_fraction() const noexcept {
    const std::uint64_t s = steals();
    return s == 0 ? 0.0 : static_cast<double>(steals_remote) / static_cast<double>(s);
  }
  Counts& operator+=(const Counts& o) noexcept;
};

// Timers of one node's queue (or all of them): every entry armed there, user timers and
// sleeping coroutines alike, ends fired, cancelled or dropped (by shutdown). Kept by the
// node's timer queue under its lock, so a scheduler that arms no timer pays nothing.
struct TimerCounts {
  std::uint64_t armed = 0;      // entries queued (a periodic timer: once per run)
  std::uint64_t fired = 0;      // fell due and were handed to the workers
  std::uint64_t cancelled = 0;  // taken out before they fell due
  std::uint64_t dropped = 0;    // still pending at shutdown
  // Armed and not yet fired, cancelled or dropped (a snapshot).
  std::uint64_t pending() const noexcept { return armed - fired - cancelled - dropped; }
  TimerCounts& operator+=(const TimerCounts& o) noexcept;
};

struct WorkerMetrics {
  unsigned worker = 0;
  unsigned node = 0;
  Counts counts;
};

struct NodeMetrics {
  unsigned node = 0;
  unsigned workers = 0;
  Counts counts;
  TimerCounts timers;
};

struct MetricsSnapshot {
  std::vector<WorkerMetrics> workers;
  std::vector<NodeMetrics> nodes;  // nodes with an arena only
  Counts total;
  TimerCounts timers;  // all nodes
  // Task frames held from the system allocator (pooled, queued or running; 128 bytes
  // each) by this scheduler's workers plus every thread that is not a worker. Bounded by
  // the peak of live tasks plus the pools' caps (4096 per worker); it does not grow with
  // the number of finished tasks.
  std::int64_t frames_live = 0;
  // Node-local allocations (vitte::allocate_on_node and friends), process-wide, one entry
  // per NUMA node of this machine.
  std::vector<NodeMemoryStats> memory;
  // The scheduling tree (policy.hpp): the arena's own level first (name ""), then every
  // live group, parents before children. A difference of snapshots subtracts by
  // GroupMetrics::id (a group new since the earlier snapshot keeps its totals).
  std::vector<GroupMetrics> groups;
  // Deadline work (TaskOptions::deadline, TimerOptions::deadline) that finished in time,
  // and late.
  std::uint64_t deadlines_met = 0;
  std::uint64_t deadlines_missed = 0;
};

// Counts accumulated between two snapshots of the same scheduler (later - earlier).
MetricsSnapshot operator-(const MetricsSnapshot& later, const MetricsSnapshot& earlier);

}  // namespace vitte

// Metrics: what each worker and each node did, read as a snapshot.
//
// Counting stays on in release builds: every counter is written by its own worker alone
// (no shared atomics on the hot path) and a snapshot sums them without stopping anyone.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vitte/detail/count_table.hpp"
#include "vitte/jobserver.hpp"
#include "vitte/memory.hpp"
#include "vitte/policy.hpp"

namespace vitte {

// Per-worker event counts, summed per node and in total. One field per row of the counter
// table (vitte/detail/count_table.hpp, which gives each its meaning): executed, skipped,
// failed, cancelled, spawned, injected_taken, policy_taken, steals_l3, steals_node,
// steals_remote, failed_steal_rounds, parks, wakeups, boxed. Work called off is never
// `failed`: it is `skipped` (never started) or `cancelled` (ended by vitte::Cancelled).
struct Counts {
#define VITTE_COUNT_MEMBER(member, json, prom, help) std::uint64_t member = 0;
  VITTE_COUNTS(VITTE_COUNT_MEMBER)
#undef VITTE_COUNT_MEMBER

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

// Steals by distance: one bin per kind of steal level and NUMA distance (the hwloc
// distance between the thief's node and the victim's; 10 within a node). Remote bins also
// count work taken from other nodes' injection queues and ReadyQueues. The bins of a
// worker add up to Counts::steals().
enum class StealScope : unsigned char { L3, Node, Remote };
const char* to_string(StealScope s) noexcept;  // "l3", "node", "remote"
struct StealBin {
  StealScope scope = StealScope::L3;
  unsigned distance = 10;
  std::uint64_t steals = 0;
};

// Latencies in nanoseconds, as a log-linear histogram: kSub buckets per power of two, so a
// percentile is known to within 1/kSub (12.5 %) of its value; it reports the upper edge of
// the bucket the percentile falls in. Exact count and maximum.
struct LatencyHistogram {
  static constexpr unsigned kSub = 8;
  static constexpr unsigned kBuckets = 48 * kSub;  // up to 2^48 ns (3.2 days)
  std::array<std::uint64_t, kBuckets> buckets{};
  std::uint64_t count = 0;
  std::int64_t max_ns = 0;

  static unsigned bucket_of(std::int64_t ns) noexcept;
  static std::int64_t upper_edge(unsigned bucket) noexcept;  // largest value in the bucket
  // In a difference of snapshots (operator-) max_ns is the later one's: an upper bound.
  // q in [0, 1]: the q-quantile (upper bucket edge, never above max_ns); 0 when empty.
  std::int64_t percentile(double q) const noexcept;
  LatencyHistogram& operator+=(const LatencyHistogram& o) noexcept;
};

// A worker's state at the snapshot (for live views: it changes all the time).
enum class WorkerState : unsigned char { Running, Searching, Parked, Stopped };
const char* to_string(WorkerState s) noexcept;  // "running", "searching", "parked", "stopped"

// Hardware and software event counters (PAPI; Options::metrics). `events` names what is
// counted, in the order of every `counters` vector of the snapshot; `unavailable` names
// each wanted event that could not be counted and why (PAPI's error, the kernel's refusal,
// a build without PAPI). An event that is not in `events` was not measured: the snapshot
// never holds a zero for it.
struct CounterInfo {
  struct Missing {
    std::string event;
    std::string why;
  };
  bool requested = false;            // Options::metrics.counters or [metrics] in the config
  std::vector<std::string> events;   // counted on every worker
  std::vector<std::string> sources;  // per event: "papi" or "perf_event" (Linux, direct)
  std::vector<Missing> unavailable;
  std::string note;                  // one sentence: what was tried and what fell back
};

// Per-node queue depth: frames waiting in the node's injection queue, urgent lane,
// ReadyQueue and workers' deques. `now` is read at the snapshot; the rest comes from the
// sampler (Options::metrics.sample_interval; samples == 0 when it is off). `max` is the
// largest sample since the scheduler started (a difference of snapshots keeps it).
struct QueueDepth {
  std::uint64_t now = 0;
  std::uint64_t samples = 0;
  std::uint64_t sum = 0;  // of the samples
  std::uint64_t max = 0;
  double mean() const noexcept { return samples == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(samples); }
};

struct WorkerMetrics {
  unsigned worker = 0;
  unsigned node = 0;
  Counts counts;
  std::vector<StealBin> steal_bins;  // nearest first
  WorkerState state = WorkerState::Running;
  // Wall time the worker was idle (looking for work or asleep) and alive, since it started.
  std::uint64_t idle_ns = 0;
  std::uint64_t alive_ns = 0;
  std::vector<std::uint64_t> counters;  // CounterInfo::events; empty when not counting
  // When `counters` were last read by the worker (steady_clock ns); a busy worker reads
  // them at the task boundary after a snapshot asks, an idle one when it ran out of work.
  std::int64_t counters_read_ns = 0;
};

struct NodeMetrics {
  unsigned node = 0;
  unsigned workers = 0;
  Counts counts;
  TimerCounts timers;
  std::vector<StealBin> steal_bins;  // its workers' bins, merged
  std::uint64_t idle_ns = 0;         // summed over its workers
  std::vector<std::uint64_t> counters;  // summed over its workers
  QueueDepth queue_depth;
  // From an external submission (submit, async, TaskGroup::run from a thread that is not
  // a worker) to the start of its task on this node's workers.
  LatencyHistogram submit_latency;
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
  // Deadline work (TaskOptions::deadline; a timer's from its tick) that finished in time,
  // and late.
  std::uint64_t deadlines_met = 0;
  std::uint64_t deadlines_missed = 0;
  std::vector<StealBin> steal_bins;      // all workers
  std::vector<std::uint64_t> counters;   // all workers
  CounterInfo counter_info;
  JobserverInfo jobserver;               // GNU make's jobserver: in use, tokens held
  LatencyHistogram submit_latency;       // all nodes
  std::int64_t taken_ns = 0;             // steady_clock time of the snapshot
};

// Counts accumulated between two snapshots of the same scheduler (later - earlier).
MetricsSnapshot operator-(const MetricsSnapshot& later, const MetricsSnapshot& earlier);

}  // namespace vitte

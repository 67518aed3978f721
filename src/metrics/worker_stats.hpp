// WorkerStats: what a worker measures beyond its WorkerCounters, for the metrics module
// (metrics.hpp): steals by level, idle time, its state, the latency of the external work it
// starts, and its event counters. Written by its worker alone, read by snapshots.
//
// Invariants:
//   S1  Every field is written by the owning worker only (OwnerCounter, or relaxed stores);
//       snapshots read without stopping it, so a snapshot is a little behind, never torn
//       per field.
//   S2  idle_since != 0 exactly while the worker is idle (looking for work or asleep); the
//       open period is added to idle_ns when it ends, and by a snapshot meanwhile.
//   S3  Event counters: `published` holds the worker's totals as of `published_ns`. The
//       worker stores them, then published_ns (release), then clears its kWatchCounters
//       bit (release RMW) or stores its idle state (release); a snapshot that sees either
//       with acquire sees the totals. A snapshot asks a busy worker for fresh totals by
//       setting that bit, which sends the worker's next task boundary through
//       run_watched(); with no request pending, counting costs the task loop nothing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "metrics/event_counters.hpp"
#include "vitte/detail/counters.hpp"
#include "vitte/metrics.hpp"

namespace vitte::detail {

// The count is not a counter of its own: a snapshot taken while the worker records would read
// it out of step with the buckets (a histogram whose +Inf bucket disagrees with the others).
// It is the sum of the buckets the snapshot read, so every snapshot, and every difference of
// two, is a consistent histogram.
struct LatencyCounters {
  std::array<OwnerCounter, LatencyHistogram::kBuckets> buckets;
  std::atomic<std::int64_t> max_ns{0};

  void record(std::int64_t ns) noexcept {
    if (ns < 0) ns = 0;
    buckets[LatencyHistogram::bucket_of(ns)].bump();
    // relaxed: single writer (S1).
    if (ns > max_ns.load(std::memory_order_relaxed)) max_ns.store(ns, std::memory_order_relaxed);
  }
  void add_to(LatencyHistogram& h) const noexcept {
    for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) {
      const std::uint64_t n = buckets[b].read();
      h.buckets[b] += n;
      h.count += n;
    }
    const std::int64_t m = max_ns.load(std::memory_order_relaxed);
    if (m > h.max_ns) h.max_ns = m;
  }
};

struct WorkerStats {
  std::unique_ptr<OwnerCounter[]> steal_bins;  // by steal level (Worker::levels_)
  OwnerCounter idle_ns;                        // closed idle periods (S2)
  std::atomic<std::int64_t> idle_since{0};     // S2
  std::atomic<std::int64_t> started_ns{0};     // when the worker's loop began
  std::atomic<std::int64_t> stopped_ns{0};     // when it ended; 0 while it runs
  std::atomic<WorkerState> state{WorkerState::Searching};
  LatencyCounters submit_latency;

  // Event counters (S3); `events` is null when the scheduler counts none.
  std::unique_ptr<ThreadCounters> events;
  std::size_t n_events = 0;
  std::string events_error;  // why this worker could not start them (set before it runs tasks)
  std::array<std::atomic<std::uint64_t>, kMaxEvents> published{};
  std::atomic<std::int64_t> published_ns{0};
};

}  // namespace vitte::detail

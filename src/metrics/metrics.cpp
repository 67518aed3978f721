#include "vitte/metrics.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace vitte {

const char* to_string(StealScope s) noexcept {
  switch (s) {
    case StealScope::L3: return "l3";
    case StealScope::Node: return "node";
    case StealScope::Remote: return "remote";
  }
  return "?";
}

const char* to_string(WorkerState s) noexcept {
  switch (s) {
    case WorkerState::Running: return "running";
    case WorkerState::Searching: return "searching";
    case WorkerState::Parked: return "parked";
    case WorkerState::Stopped: return "stopped";
  }
  return "?";
}

// Bucket b < kSub holds the value b exactly (0..7 ns); above, the power of two p = floor(log2
// v) >= 3 is split into kSub equal parts: bucket kSub * (p - 2) + the 3 bits after the top.
unsigned LatencyHistogram::bucket_of(std::int64_t ns) noexcept {
  if (ns < static_cast<std::int64_t>(kSub)) return ns < 0 ? 0 : static_cast<unsigned>(ns);
  const auto v = static_cast<std::uint64_t>(ns);
  const unsigned p = 63 - static_cast<unsigned>(std::countl_zero(v));  // >= 3
  const unsigned sub = static_cast<unsigned>((v >> (p - 3)) & (kSub - 1));
  const unsigned b = kSub * (p - 2) + sub;
  return b < kBuckets ? b : kBuckets - 1;
}

std::int64_t LatencyHistogram::upper_edge(unsigned b) noexcept {
  if (b < kSub) return static_cast<std::int64_t>(b);
  const unsigned p = b / kSub + 2;
  const std::uint64_t sub = b % kSub;
  const std::uint64_t lo = (std::uint64_t{1} << p) + (sub << (p - 3));
  return static_cast<std::int64_t>(lo + (std::uint64_t{1} << (p - 3)) - 1);
}

std::int64_t LatencyHistogram::percentile(double q) const noexcept {
  if (count == 0) return 0;
  if (!(q > 0.0)) q = 0.0;
  if (q > 1.0) q = 1.0;
  // The smallest bucket whose cumulative count reaches ceil(q * count) (at least 1).
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (unsigned b = 0; b < kBuckets; ++b) {
    seen += buckets[b];
    if (seen >= rank) return std::min(upper_edge(b), max_ns);
  }
  return max_ns;
}

LatencyHistogram& LatencyHistogram::operator+=(const LatencyHistogram& o) noexcept {
  for (unsigned b = 0; b < kBuckets; ++b) buckets[b] += o.buckets[b];
  count += o.count;
  max_ns = std::max(max_ns, o.max_ns);
  return *this;
}

Counts& Counts::operator+=(const Counts& o) noexcept {
#define VITTE_ADD(member, json, prom, help) member += o.member;
  VITTE_COUNTS(VITTE_ADD)
#undef VITTE_ADD
  return *this;
}

TimerCounts& TimerCounts::operator+=(const TimerCounts& o) noexcept {
  armed += o.armed;
  fired += o.fired;
  cancelled += o.cancelled;
  dropped += o.dropped;
  return *this;
}

namespace {
std::uint64_t sub(std::uint64_t x, std::uint64_t y) { return x >= y ? x - y : 0; }

TimerCounts minus(const TimerCounts& a, const TimerCounts& b) {
  TimerCounts c;
  c.armed = sub(a.armed, b.armed);
  c.fired = sub(a.fired, b.fired);
  c.cancelled = sub(a.cancelled, b.cancelled);
  c.dropped = sub(a.dropped, b.dropped);
  return c;
}

// By (scope, distance); a bin new since `b` keeps its count.
std::vector<StealBin> minus(const std::vector<StealBin>& a, const std::vector<StealBin>& b) {
  std::vector<StealBin> out = a;
  for (StealBin& x : out)
    for (const StealBin& y : b)
      if (x.scope == y.scope && x.distance == y.distance) x.steals = sub(x.steals, y.steals);
  return out;
}

// Element-wise, when both were counted (the same events: one scheduler); else `a`.
std::vector<std::uint64_t> minus(const std::vector<std::uint64_t>& a, const std::vector<std::uint64_t>& b) {
  std::vector<std::uint64_t> out = a;
  if (a.size() == b.size())
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = sub(a[i], b[i]);
  return out;
}

// The maximum cannot be subtracted: the later one stays (an upper bound for the interval).
LatencyHistogram minus(const LatencyHistogram& a, const LatencyHistogram& b) {
  LatencyHistogram out = a;
  for (unsigned i = 0; i < LatencyHistogram::kBuckets; ++i) out.buckets[i] = sub(a.buckets[i], b.buckets[i]);
  out.count = sub(a.count, b.count);
  if (out.count == 0) out.max_ns = 0;
  return out;
}

QueueDepth minus(const QueueDepth& a, const QueueDepth& b) {
  QueueDepth out = a;  // now and max as of `a`
  out.samples = sub(a.samples, b.samples);
  out.sum = sub(a.sum, b.sum);
  return out;
}

Counts minus(const Counts& a, const Counts& b) {
  Counts c;
#define VITTE_SUB(member, json, prom, help) c.member = sub(a.member, b.member);
  VITTE_COUNTS(VITTE_SUB)
#undef VITTE_SUB
  return c;
}
}  // namespace

MetricsSnapshot operator-(const MetricsSnapshot& later, const MetricsSnapshot& earlier) {
  MetricsSnapshot out = later;
  for (std::size_t i = 0; i < out.workers.size() && i < earlier.workers.size(); ++i) {
    WorkerMetrics& w = out.workers[i];
    const WorkerMetrics& e = earlier.workers[i];
    w.counts = minus(later.workers[i].counts, e.counts);
    w.steal_bins = minus(w.steal_bins, e.steal_bins);
    w.idle_ns = sub(w.idle_ns, e.idle_ns);
    w.alive_ns = sub(w.alive_ns, e.alive_ns);
    w.counters = minus(w.counters, e.counters);
  }
  for (std::size_t i = 0; i < out.nodes.size() && i < earlier.nodes.size(); ++i) {
    NodeMetrics& n = out.nodes[i];
    const NodeMetrics& e = earlier.nodes[i];
    n.counts = minus(later.nodes[i].counts, e.counts);
    n.timers = minus(later.nodes[i].timers, e.timers);
    n.steal_bins = minus(n.steal_bins, e.steal_bins);
    n.idle_ns = sub(n.idle_ns, e.idle_ns);
    n.counters = minus(n.counters, e.counters);
    n.queue_depth = minus(n.queue_depth, e.queue_depth);
    n.submit_latency = minus(n.submit_latency, e.submit_latency);
  }
  out.total = minus(later.total, earlier.total);
  out.timers = minus(later.timers, earlier.timers);
  // By id: a group made after `earlier` keeps its totals, one gone since is not listed.
  for (GroupMetrics& g : out.groups)
    for (const GroupMetrics& e : earlier.groups)
      if (e.id == g.id) {
        g.tasks = sub(g.tasks, e.tasks);
        g.cpu_ns = sub(g.cpu_ns, e.cpu_ns);
        g.deadlines_missed = sub(g.deadlines_missed, e.deadlines_missed);
        g.counters = minus(g.counters, e.counters);
        for (GroupMetrics::Named& n : g.named)  // by name, as the groups by id
          for (const GroupMetrics::Named& en : e.named)
            if (en.name == n.name) {
              n.runs = sub(n.runs, en.runs);
              n.failed = sub(n.failed, en.failed);
              n.cancelled = sub(n.cancelled, en.cancelled);
              break;
            }
        break;
      }
  out.deadlines_met = sub(later.deadlines_met, earlier.deadlines_met);
  out.deadlines_missed = sub(later.deadlines_missed, earlier.deadlines_missed);
  out.steal_bins = minus(later.steal_bins, earlier.steal_bins);
  out.counters = minus(later.counters, earlier.counters);
  out.submit_latency = minus(later.submit_latency, earlier.submit_latency);
  return out;
}

}  // namespace vitte

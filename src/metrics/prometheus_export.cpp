// metrics_prometheus(): the Prometheus text exposition format, version 0.0.4
// (docs/metrics.md, "Prometheus", lists every family).
//
// Choices, each for a reason given in docs/metrics.md:
// - the finest level only: per worker (labels worker, node), per node, per group. Totals
//   are sums of those, and exporting both would double every sum() a user writes.
// - base units: seconds for times (printed exactly from the nanoseconds), bytes.
// - the submission latency is a histogram with cumulative `le` buckets over the range
//   that holds samples, and no _sum: LatencyHistogram keeps no exact sum, and a summary's
//   quantiles would be bucket edges presented as exact values.
// - a family with no sample is left out with its HELP and TYPE: that is how an unmeasured
//   event, or a sampler that is off, shows (never as zeros).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string_view>

#include "vitte/metrics_export.hpp"

namespace vitte {
namespace {

struct Label {
  std::string_view name;
  std::string value;
};

// Length of the well-formed UTF-8 sequence at the start of `v`, or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view v) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(v[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (n == 0 || v.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F) || (c == 0xF0 && b(1) < 0x90) ||
      (c == 0xF4 && b(1) > 0x8F))
    return 0;
  return n;
}

// Label values may hold anything (group names come from users): the format escapes
// backslash, double quote and line feed, and nothing else, and wants UTF-8: a byte that
// does not start a well-formed sequence becomes U+FFFD, as in the JSON export.
void append_escaped(std::string& out, std::string_view v, bool quote_too) {
  while (!v.empty()) {
    const char c = v.front();
    const std::size_t n = utf8_length(v);
    if (n == 0) out += "\xEF\xBF\xBD";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote_too) out += "\\\"";
    else out.append(v.data(), n);
    v.remove_prefix(n == 0 ? 1 : n);
  }
}

// Nanoseconds as seconds, exactly ("0.000001234", "3"): a double would round bucket edges.
std::string seconds(std::int64_t ns) {
  const bool negative = ns < 0;
  const std::uint64_t v = negative ? 0 - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
  std::string s(negative ? "-" : "");
  s += std::to_string(v / 1000000000u);
  char frac[10];
  std::snprintf(frac, sizeof frac, "%09llu", static_cast<unsigned long long>(v % 1000000000u));
  std::size_t len = 9;
  while (len > 0 && frac[len - 1] == '0') --len;
  if (len > 0) s.append(".").append(frac, len);
  return s;
}
std::string seconds(std::uint64_t ns) { return seconds(static_cast<std::int64_t>(ns)); }

// The shortest text that reads back as the same double, in the format's spelling of the
// non-finite values.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Writes families in order. A family's HELP and TYPE lines are held back until its first
// sample, so that a family without samples leaves no trace.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    header_.clear();
    header_ += "# HELP ";
    header_ += name;
    header_ += ' ';
    append_escaped(header_, help, false);
    header_ += "\n# TYPE ";
    header_ += name;
    header_ += ' ';
    header_ += type;
    header_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, const std::string& value) {
    out_ += header_;
    header_.clear();
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const Label& l : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += l.name;
        out_ += "=\"";
        append_escaped(out_, l.value, true);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string header_;
  std::string out_;
};

std::string str(unsigned v) { return std::to_string(v); }

// One family per Counts field, one sample per worker.
void worker_counts(Exposition& e, const MetricsSnapshot& m) {
  struct Field {
    const char* name;  // null: exported below, not as a family of its own
    const char* help;
    std::uint64_t Counts::*member;
  };
  static constexpr Field fields[] = {
#define VITTE_FAMILY(member, json, prom, help) {prom, help, &Counts::member},
      VITTE_COUNTS(VITTE_FAMILY)
#undef VITTE_FAMILY
  };
  for (const Field& f : fields) {
    if (f.name == nullptr) continue;
    e.family(f.name, "counter", f.help);
    for (const WorkerMetrics& w : m.workers) e.sample(f.name, {{"worker", str(w.worker)}, {"node", str(w.node)}}, w.counts.*(f.member));
  }
  e.family("vitte_steals_total", "counter", "Successful steals by the worker, by scope (l3, node, remote).");
  for (const WorkerMetrics& w : m.workers)
    for (const auto& [scope, n] : {std::pair{StealScope::L3, w.counts.steals_l3}, std::pair{StealScope::Node, w.counts.steals_node},
                                   std::pair{StealScope::Remote, w.counts.steals_remote}})
      e.sample("vitte_steals_total", {{"worker", str(w.worker)}, {"node", str(w.node)}, {"scope", to_string(scope)}}, n);
  e.family("vitte_steals_by_distance_total", "counter",
           "Successful steals by the worker, by scope and NUMA distance to the victim (10 within a node).");
  for (const WorkerMetrics& w : m.workers)
    for (const StealBin& b : w.steal_bins)
      e.sample("vitte_steals_by_distance_total",
               {{"worker", str(w.worker)}, {"node", str(w.node)}, {"scope", to_string(b.scope)}, {"distance", str(b.distance)}},
               b.steals);
}

void worker_time(Exposition& e, const MetricsSnapshot& m) {
  e.family("vitte_worker_idle_seconds_total", "counter", "Wall time the worker was alive and idle (searching or parked).");
  for (const WorkerMetrics& w : m.workers)
    e.sample("vitte_worker_idle_seconds_total", {{"worker", str(w.worker)}, {"node", str(w.node)}}, seconds(w.idle_ns));
  e.family("vitte_worker_alive_seconds_total", "counter", "Wall time since the worker started.");
  for (const WorkerMetrics& w : m.workers)
    e.sample("vitte_worker_alive_seconds_total", {{"worker", str(w.worker)}, {"node", str(w.node)}}, seconds(w.alive_ns));
  // One sample per state, 1 for the worker's: a query can count workers by state.
  e.family("vitte_worker_state", "gauge", "1 for the worker's state at the snapshot, 0 for the others.");
  for (const WorkerMetrics& w : m.workers)
    for (WorkerState s : {WorkerState::Running, WorkerState::Searching, WorkerState::Parked, WorkerState::Stopped})
      e.sample("vitte_worker_state", {{"worker", str(w.worker)}, {"node", str(w.node)}, {"state", to_string(s)}},
               std::uint64_t{w.state == s ? 1u : 0u});
}

// Event counters, only those counted (CounterInfo::events), and the ones that could not be
// counted as info samples with the reason: never a zero that was not measured.
void events(Exposition& e, const MetricsSnapshot& m) {
  const CounterInfo& info = m.counter_info;
  e.family("vitte_event_info", "gauge", "1 for each event counted, with where its counts come from (papi, perf_event).");
  for (std::size_t i = 0; i < info.events.size(); ++i)
    e.sample("vitte_event_info", {{"event", info.events[i]}, {"source", i < info.sources.size() ? info.sources[i] : ""}},
             std::uint64_t{1});
  e.family("vitte_event_unavailable_info", "gauge", "1 for each event asked for that could not be counted, with why.");
  for (const CounterInfo::Missing& x : info.unavailable)
    e.sample("vitte_event_unavailable_info", {{"event", x.event}, {"reason", x.why}}, std::uint64_t{1});
  e.family("vitte_events_total", "counter", "Event counts (PAPI or perf_event) of the worker's thread.");
  for (const WorkerMetrics& w : m.workers)
    for (std::size_t i = 0; i < info.events.size() && i < w.counters.size(); ++i)
      e.sample("vitte_events_total", {{"worker", str(w.worker)}, {"node", str(w.node)}, {"event", info.events[i]}}, w.counters[i]);
}

// GNU make's jobserver (jobserver.hpp): whether one is in use and the tokens held.
void jobserver(Exposition& e, const MetricsSnapshot& m) {
  const JobserverInfo& js = m.jobserver;
  e.family("vitte_jobserver_info", "gauge", "1, with whether a make jobserver is in use, its kind and why not.");
  e.sample("vitte_jobserver_info", {{"in_use", js.in_use ? "true" : "false"}, {"kind", js.kind}, {"note", js.note}},
           std::uint64_t{1});
  e.family("vitte_jobserver_tokens_held", "gauge", "Jobserver tokens held now, the process's own included.");
  e.sample("vitte_jobserver_tokens_held", {}, std::uint64_t{js.tokens_held});
  e.family("vitte_jobserver_tokens_read_total", "counter", "Tokens taken from the jobserver (each given back later).");
  e.sample("vitte_jobserver_tokens_read_total", {}, js.tokens_read);
}

void latency(Exposition& e, const MetricsSnapshot& m) {
  e.family("vitte_submit_latency_seconds", "histogram",
           "From an external submission to the start of its task on the node (no _sum: the histogram keeps none).");
  for (const NodeMetrics& n : m.nodes) {
    const LatencyHistogram& h = n.submit_latency;
    unsigned first = LatencyHistogram::kBuckets, last = 0;
    for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b)
      if (h.buckets[b] != 0) {
        if (first == LatencyHistogram::kBuckets) first = b;
        last = b;
      }
    std::uint64_t cumulative = 0;
    for (unsigned b = first; b <= last && first < LatencyHistogram::kBuckets; ++b) {
      cumulative += h.buckets[b];
      // Values are whole nanoseconds, so "at most the bucket's largest value" is exact.
      e.sample("vitte_submit_latency_seconds_bucket", {{"node", str(n.node)}, {"le", seconds(LatencyHistogram::upper_edge(b))}},
               cumulative);
    }
    e.sample("vitte_submit_latency_seconds_bucket", {{"node", str(n.node)}, {"le", "+Inf"}}, h.count);
    e.sample("vitte_submit_latency_seconds_count", {{"node", str(n.node)}}, h.count);
  }
  e.family("vitte_submit_latency_max_seconds", "gauge", "Largest submission latency on the node.");
  for (const NodeMetrics& n : m.nodes) e.sample("vitte_submit_latency_max_seconds", {{"node", str(n.node)}}, seconds(n.submit_latency.max_ns));
}

void nodes(Exposition& e, const MetricsSnapshot& m) {
  e.family("vitte_node_workers", "gauge", "Workers of the node's arena.");
  for (const NodeMetrics& n : m.nodes) e.sample("vitte_node_workers", {{"node", str(n.node)}}, std::uint64_t{n.workers});
  e.family("vitte_queue_depth", "gauge", "Frames waiting in the node's queues and its workers' deques at the snapshot.");
  for (const NodeMetrics& n : m.nodes) e.sample("vitte_queue_depth", {{"node", str(n.node)}}, n.queue_depth.now);
  // The sampled figures exist only while the sampler runs (MetricsOptions::sample_interval).
  e.family("vitte_queue_depth_samples_total", "counter", "Queue depth samples taken on the node.");
  for (const NodeMetrics& n : m.nodes)
    if (n.queue_depth.samples > 0) e.sample("vitte_queue_depth_samples_total", {{"node", str(n.node)}}, n.queue_depth.samples);
  e.family("vitte_queue_depth_sampled_sum_total", "counter",
           "Sum of the sampled queue depths (over vitte_queue_depth_samples_total: the mean depth).");
  for (const NodeMetrics& n : m.nodes)
    if (n.queue_depth.samples > 0) e.sample("vitte_queue_depth_sampled_sum_total", {{"node", str(n.node)}}, n.queue_depth.sum);
  e.family("vitte_queue_depth_max", "gauge", "Largest sampled queue depth since the scheduler started.");
  for (const NodeMetrics& n : m.nodes)
    if (n.queue_depth.samples > 0) e.sample("vitte_queue_depth_max", {{"node", str(n.node)}}, n.queue_depth.max);
  latency(e, m);
  struct Field {
    const char* name;
    const char* help;
    std::uint64_t TimerCounts::*member;
  };
  static constexpr Field timer_fields[] = {
      {"vitte_timers_armed_total", "Timer entries queued on the node.", &TimerCounts::armed},
      {"vitte_timers_fired_total", "Timer entries that fell due.", &TimerCounts::fired},
      {"vitte_timers_cancelled_total", "Timer entries taken out before they fell due.", &TimerCounts::cancelled},
      {"vitte_timers_dropped_total", "Timer entries still pending at shutdown.", &TimerCounts::dropped},
  };
  for (const Field& f : timer_fields) {
    e.family(f.name, "counter", f.help);
    for (const NodeMetrics& n : m.nodes) e.sample(f.name, {{"node", str(n.node)}}, n.timers.*(f.member));
  }
  e.family("vitte_timers_pending", "gauge", "Timer entries armed and not yet fired, cancelled or dropped.");
  for (const NodeMetrics& n : m.nodes) e.sample("vitte_timers_pending", {{"node", str(n.node)}}, n.timers.pending());
}

void scheduler_wide(Exposition& e, const MetricsSnapshot& m) {
  e.family("vitte_frames_live", "gauge", "Task frames held from the system allocator (128 bytes each).");
  e.sample("vitte_frames_live", {}, std::to_string(m.frames_live));
  e.family("vitte_deadlines_met_total", "counter", "Deadline work that finished in time.");
  e.sample("vitte_deadlines_met_total", {}, m.deadlines_met);
  e.family("vitte_deadlines_missed_total", "counter", "Deadline work that finished late.");
  e.sample("vitte_deadlines_missed_total", {}, m.deadlines_missed);
  struct Field {
    const char* name;
    const char* help;
    std::uint64_t NodeMemoryStats::*member;
  };
  static constexpr Field memory_fields[] = {
      {"vitte_memory_allocations_total", "Node-local allocations, process-wide, by NUMA node of this machine.",
       &NodeMemoryStats::allocations},
      {"vitte_memory_allocated_bytes_total", "Bytes of node-local allocations.", &NodeMemoryStats::bytes_allocated},
      {"vitte_memory_frees_total", "Node-local blocks freed.", &NodeMemoryStats::frees},
      {"vitte_memory_freed_bytes_total", "Bytes of node-local blocks freed.", &NodeMemoryStats::bytes_freed},
  };
  for (const Field& f : memory_fields) {
    e.family(f.name, "counter", f.help);
    for (const NodeMemoryStats& n : m.memory) e.sample(f.name, {{"node", str(n.node)}}, n.*(f.member));
  }
}

// Groups are labelled by id (unique; the arena's own level is 0) and name: names may be
// empty (the arena, anonymous groups), which Prometheus reads as no label at all.
void groups(Exposition& e, const MetricsSnapshot& m) {
  const auto id = [](const GroupMetrics& g) { return std::to_string(g.id); };
  e.family("vitte_group_info", "gauge", "1 for each level of the scheduling tree, with its parent's name.");
  for (const GroupMetrics& g : m.groups) e.sample("vitte_group_info", {{"id", id(g)}, {"group", g.name}, {"parent", g.parent}}, std::uint64_t{1});
  e.family("vitte_group_weight", "gauge", "The group's share under a fair parent.");
  for (const GroupMetrics& g : m.groups) e.sample("vitte_group_weight", {{"id", id(g)}, {"group", g.name}}, number(g.weight));
  e.family("vitte_group_tasks_total", "counter", "Tasks of the group's own level that finished.");
  for (const GroupMetrics& g : m.groups) e.sample("vitte_group_tasks_total", {{"id", id(g)}, {"group", g.name}}, g.tasks);
  e.family("vitte_group_cpu_seconds_total", "counter", "CPU time the group's own tasks used on workers.");
  for (const GroupMetrics& g : m.groups) e.sample("vitte_group_cpu_seconds_total", {{"id", id(g)}, {"group", g.name}}, seconds(g.cpu_ns));
  e.family("vitte_group_deadlines_missed_total", "counter", "Deadline tasks of the group that finished late.");
  for (const GroupMetrics& g : m.groups)
    e.sample("vitte_group_deadlines_missed_total", {{"id", id(g)}, {"group", g.name}}, g.deadlines_missed);
  e.family("vitte_group_events_total", "counter", "Event counts summed over the group's tasks (GroupSpec::counters).");
  for (const GroupMetrics& g : m.groups)
    for (std::size_t i = 0; i < m.counter_info.events.size() && i < g.counters.size(); ++i)
      e.sample("vitte_group_events_total", {{"id", id(g)}, {"group", g.name}, {"event", m.counter_info.events[i]}}, g.counters[i]);
  struct NamedField {
    const char* name;
    const char* help;
    std::uint64_t GroupMetrics::Named::*member;
  };
  static constexpr NamedField named[] = {
      {"vitte_named_runs_total", "Runs of work given a name (TaskOptions::name) in the group.", &GroupMetrics::Named::runs},
      {"vitte_named_failed_total", "Runs of named work that threw an error.", &GroupMetrics::Named::failed},
      {"vitte_named_cancelled_total", "Runs of named work that ended by throwing vitte::Cancelled.",
       &GroupMetrics::Named::cancelled},
  };
  for (const NamedField& f : named) {
    e.family(f.name, "counter", f.help);
    for (const GroupMetrics& g : m.groups)
      for (const GroupMetrics::Named& n : g.named)
        e.sample(f.name, {{"id", id(g)}, {"group", g.name}, {"name", n.name}}, n.*(f.member));
  }
}

}  // namespace

std::string metrics_prometheus(const MetricsSnapshot& m) {
  Exposition e;
  worker_counts(e, m);
  worker_time(e, m);
  events(e, m);
  jobserver(e, m);
  nodes(e, m);
  groups(e, m);
  scheduler_wide(e, m);
  return e.take();
}

}  // namespace vitte

// metrics_json(): every field of a MetricsSnapshot as one JSON object (docs/metrics.md,
// "JSON"). The per-worker and per-node objects carry their Counts as flat keys beside the
// rest, the shape vitte-sched run --json has printed since before this module existed.
#include "metrics/json_export.hpp"

#include "vitte/metrics_export.hpp"

namespace vitte {
namespace {

using nlohmann::json;

json counts_json(const Counts& c) {
  json j{{"remote_steal_fraction", c.remote_steal_fraction()}};
#define VITTE_KEY(member, key, prom, help) j[key] = c.member;
  VITTE_COUNTS(VITTE_KEY)
#undef VITTE_KEY
  return j;
}

json timers_json(const TimerCounts& t) {
  return json{{"armed", t.armed}, {"fired", t.fired}, {"cancelled", t.cancelled}, {"dropped", t.dropped},
              {"pending", t.pending()}};
}

json bins_json(const std::vector<StealBin>& bins) {
  json j = json::array();
  for (const StealBin& b : bins) j.push_back({{"scope", to_string(b.scope)}, {"distance", b.distance}, {"steals", b.steals}});
  return j;
}

// Only the buckets that hold something, each with the largest value it holds: a latency
// histogram has 384 buckets and a run fills a few dozen.
json latency_json(const LatencyHistogram& h) {
  json buckets = json::array();
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b)
    if (h.buckets[b] != 0) buckets.push_back({{"le_ns", LatencyHistogram::upper_edge(b)}, {"count", h.buckets[b]}});
  return json{{"count", h.count},
              {"p50_ns", h.percentile(0.5)},
              {"p99_ns", h.percentile(0.99)},
              {"max_ns", h.max_ns},
              {"buckets", buckets}};
}

json queue_depth_json(const QueueDepth& q) {
  return json{{"now", q.now}, {"samples", q.samples}, {"sum", q.sum}, {"mean", q.mean()}, {"max", q.max}};
}

// Event values keyed by event name. A vector that is empty (not counting, or a group
// without GroupSpec::counters) gives {}: an unmeasured event never shows as 0.
json events_json(const CounterInfo& info, const std::vector<std::uint64_t>& values) {
  json j = json::object();
  for (std::size_t i = 0; i < info.events.size() && i < values.size(); ++i) j[info.events[i]] = values[i];
  return j;
}

json counter_info_json(const CounterInfo& c) {
  json missing = json::array();
  for (const CounterInfo::Missing& m : c.unavailable) missing.push_back({{"event", m.event}, {"why", m.why}});
  return json{{"requested", c.requested},
              {"events", c.events},
              {"sources", c.sources},
              {"unavailable", missing},
              {"note", c.note}};
}

}  // namespace

namespace detail {

json metrics_json_value(const MetricsSnapshot& m) {
  json j;
  j["schema"] = kMetricsJsonSchema;
  j["taken_ns"] = m.taken_ns;
  j["total"] = counts_json(m.total);
  j["timers"] = timers_json(m.timers);
  j["frames_live"] = m.frames_live;
  j["deadlines_met"] = m.deadlines_met;
  j["deadlines_missed"] = m.deadlines_missed;
  j["steal_bins"] = bins_json(m.steal_bins);
  j["submit_latency"] = latency_json(m.submit_latency);
  j["counters"] = events_json(m.counter_info, m.counters);
  j["counter_info"] = counter_info_json(m.counter_info);
  const JobserverInfo& js = m.jobserver;
  j["jobserver"] = {{"in_use", js.in_use},           {"kind", js.kind},         {"option", js.option},
                    {"tokens_held", js.tokens_held}, {"max_held", js.max_held}, {"tokens_read", js.tokens_read},
                    {"waits", js.waits},             {"note", js.note}};
  j["memory"] = json::array();
  for (const NodeMemoryStats& n : m.memory)
    j["memory"].push_back({{"node", n.node}, {"allocations", n.allocations}, {"bytes_allocated", n.bytes_allocated},
                           {"frees", n.frees}, {"bytes_freed", n.bytes_freed}});
  j["nodes"] = json::array();
  for (const NodeMetrics& n : m.nodes) {
    json jn = counts_json(n.counts);
    jn["node"] = n.node;
    jn["workers"] = n.workers;
    jn["timers"] = timers_json(n.timers);
    jn["steal_bins"] = bins_json(n.steal_bins);
    jn["idle_ns"] = n.idle_ns;
    jn["counters"] = events_json(m.counter_info, n.counters);
    jn["queue_depth"] = queue_depth_json(n.queue_depth);
    jn["submit_latency"] = latency_json(n.submit_latency);
    j["nodes"].push_back(jn);
  }
  j["workers"] = json::array();
  for (const WorkerMetrics& w : m.workers) {
    json jw = counts_json(w.counts);
    jw["worker"] = w.worker;
    jw["node"] = w.node;
    jw["state"] = to_string(w.state);
    jw["steal_bins"] = bins_json(w.steal_bins);
    jw["idle_ns"] = w.idle_ns;
    jw["alive_ns"] = w.alive_ns;
    jw["counters"] = events_json(m.counter_info, w.counters);
    jw["counters_read_ns"] = w.counters_read_ns;
    j["workers"].push_back(jw);
  }
  j["groups"] = json::array();
  for (const GroupMetrics& g : m.groups) {
    json named = json::array();
    for (const GroupMetrics::Named& n : g.named) 
      named.push_back({{"name", n.name}, {"runs", n.runs}, {"failed", n.failed}, {"cancelled", n.cancelled}});
    j["groups"].push_back({{"id", g.id},
                           {"name", g.name},
                           {"parent", g.parent},
                           {"weight", g.weight},
                           {"tasks", g.tasks},
                           {"cpu_ns", g.cpu_ns},
                           {"deadlines_missed", g.deadlines_missed},
                           {"counters", events_json(m.counter_info, g.counters)},
                           {"named", std::move(named)}});
  }
  return j;
}

}  // namespace detail

std::string metrics_json(const MetricsSnapshot& m, int indent) {
  // Group names come from users and need not be UTF-8: replace what is not, rather than
  // throw from an export.
  return detail::metrics_json_value(m).dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vitte

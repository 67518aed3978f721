// Metrics export: a MetricsSnapshot as a JSON document or as Prometheus text.
//
//   const vitte::MetricsSnapshot m = sched.metrics();
//   write(file, vitte::metrics_json(m));          // every field, for tools and archives
//   write(scrape, vitte::metrics_prometheus(m));  // text exposition format 0.0.4
//
// The names, keys, types and units of both formats are stable and listed in
// docs/metrics.md; a key or metric that changes meaning or disappears raises the schema
// (kMetricsJsonSchema, or a new metric name). Both render whatever snapshot they are given:
// a raw Scheduler::metrics() holds totals since the scheduler started (what Prometheus
// counters must be), a difference of snapshots the counts of an interval.
//
// Event counters follow CounterInfo's rule: an event that is not in counter_info.events was
// not measured and never appears as a number; events that could not be counted appear with
// their reason (JSON: counter_info.unavailable; Prometheus: vitte_event_unavailable_info).
#pragma once

#include <string>

#include "vitte/metrics.hpp"

namespace vitte {

// The "schema" key of every metrics_json() document. It goes up when a key changes meaning
// or disappears; new keys do not change it.
inline constexpr const char* kMetricsJsonSchema = "vitte-metrics/1";

// The snapshot as one JSON object (UTF-8). `indent` < 0: on one line; otherwise
// pretty-printed with that many spaces per level.
std::string metrics_json(const MetricsSnapshot& m, int indent = -1);

// The snapshot in the Prometheus text exposition format, version 0.0.4 (serve it as
// "text/plain; version=0.0.4"): a # HELP and # TYPE line per metric family, then its
// samples; every line ends with '\n'.
std::string metrics_prometheus(const MetricsSnapshot& m);

}  // namespace vitte

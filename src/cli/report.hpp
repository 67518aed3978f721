// Text and JSON renderings of topologies, plans and metrics, shared by the commands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "vitte/metrics.hpp"
#include "vitte/plan.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

// Every JSON document vitte-sched prints carries "schema": kJsonSchema. The number goes up
// when a field changes meaning or disappears; new fields do not change it.
inline constexpr const char* kJsonSchema = "vitte-sched/1";

// `doc` with its "schema" field set.
nlohmann::json with_schema(nlohmann::json doc);
// The document printed on stdout instead of the result when a command fails with --json:
// {"schema": ..., "error": {"message": ..., "exit_code": ...}}.
nlohmann::json error_json(const std::string& message, int exit_code);

nlohmann::json to_json(const Topology& t);
nlohmann::json to_json(const Plan& p, const Topology& t);

std::string describe(const Topology& t);
std::string describe(const Plan& p, const Topology& t);
std::string describe_locality(const MetricsSnapshot& m);
// The event counters: each counted event's total, each event that could not be counted
// with why (never a number for it). "" unless counting was `asked` for (--counters,
// --events) or the config turned it on (counter_info.requested).
std::string describe_counters(const MetricsSnapshot& m, bool asked);

// Peak resident set size of this process, in bytes.
std::uint64_t peak_rss_bytes();

}  // namespace vitte::cli

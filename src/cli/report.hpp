// Text and JSON renderings of topologies, plans and metrics, shared by the commands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "vitte/metrics.hpp"
#include "vitte/plan.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

nlohmann::json to_json(const Topology& t);
nlohmann::json to_json(const Plan& p, const Topology& t);
nlohmann::json to_json(const Counts& c);
nlohmann::json to_json(const MetricsSnapshot& m);

std::string describe(const Topology& t);
std::string describe(const Plan& p, const Topology& t);
std::string describe_locality(const MetricsSnapshot& m);

// Peak resident set size of this process, in bytes.
std::uint64_t peak_rss_bytes();

}  // namespace vitte::cli

// The JSON shape of a MetricsSnapshot as a value, for the project's own programs that embed
// it in a larger document (vitte-sched run --json). nlohmann_json is a private dependency
// of the library: this header is not installed, and users get text (metrics_export.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include "vitte/metrics.hpp"

namespace vitte::detail {

// The object metrics_json() prints.
nlohmann::json metrics_json_value(const MetricsSnapshot& m);

}  // namespace vitte::detail

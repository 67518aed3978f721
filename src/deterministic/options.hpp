// Where DeterministicOptions come from besides the code: VITTE_DETERMINISTIC, and the checks
// every source goes through before a run starts.
#pragma once

#include <optional>

#include "vitte/deterministic.hpp"

namespace vitte {
struct Options;
}

namespace vitte::detail {

// "SEED", "SEED:random", "SEED:pct" or "SEED:pct:DEPTH:TURNS"; nothing when unset or empty.
// ConfigError naming the variable and its value otherwise.
std::optional<DeterministicOptions> deterministic_from_environment();
// UsageError naming the field that is out of range.
void check_deterministic(const DeterministicOptions& o);
bool same_deterministic(const DeterministicOptions& a, const DeterministicOptions& b) noexcept;
// The options (code and config resolved) of a scheduler about to be made: check_deterministic
// on its deterministic options, and a UsageError for each setting a deterministic run cannot
// honour (pinning, node-local malloc routing, event counters, a backlog that blocks).
// Nothing for a real scheduler.
void check_deterministic_fits(const Options& o);

}  // namespace vitte::detail

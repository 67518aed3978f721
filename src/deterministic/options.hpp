// Where DeterministicOptions come from besides the code: VITTE_DETERMINISTIC, and the checks
// every source goes through before a run starts.
#pragma once

#include <optional>

#include "vitte/deterministic.hpp"

namespace vitte::detail {

// "SEED", "SEED:random", "SEED:pct" or "SEED:pct:DEPTH:TURNS"; nothing when unset or empty.
// ConfigError naming the variable and its value otherwise.
std::optional<DeterministicOptions> deterministic_from_environment();
// UsageError naming the field that is out of range.
void check_deterministic(const DeterministicOptions& o);
bool same_deterministic(const DeterministicOptions& a, const DeterministicOptions& b) noexcept;

}  // namespace vitte::detail

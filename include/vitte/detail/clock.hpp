// The clock that timers, sleeps and deadlines read: std::chrono::steady_clock, except on
// the threads of a deterministic run (deterministic.hpp), where it is the run's virtual
// clock. Out of line, so that inline code (sleep_for) needs no scheduler to ask.
#pragma once

#include <chrono>

namespace vitte::detail {

std::chrono::steady_clock::time_point steady_now() noexcept;

}  // namespace vitte::detail

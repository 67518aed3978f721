// Liveness: whether the scheduler a handle was made for still exists, asked without
// touching the scheduler's memory.
//
// Handles can outlive their Scheduler: a Future that is ready, a TaskGroup, a Timer. Using
// one afterwards must be refused cleanly (a UsageError, a BrokenPromise), never by reading
// the freed scheduler. So each scheduler holds a token, unique for the life of the process,
// in a slot of a process-wide table that is never freed; a handle keeps the token beside
// its scheduler pointer and asks the table before it follows the pointer from a thread that
// is not one of that scheduler's workers (a worker's own scheduler is alive while it runs).
// src/lifecycle/liveness.cpp.
//
// The check covers uses after the destruction, in program order or ordered by any
// synchronisation. Destroying a scheduler while another thread uses one of its handles is
// a race the check cannot close (the scheduler may die between the check and the use).
#pragma once

#include <cstdint>

namespace vitte::detail {

class SchedulerCore;

// The token of `core` (0 for null). `core` must be alive.
std::uint64_t live_token(const SchedulerCore* core) noexcept;
// True while the scheduler that holds `token` exists (false for 0).
bool alive(std::uint64_t token) noexcept;
// UsageError("<what> on a handle whose Scheduler was destroyed") unless alive(token).
void check_alive(std::uint64_t token, const char* what);

}  // namespace vitte::detail

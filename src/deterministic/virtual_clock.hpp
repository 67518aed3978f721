// The virtual clock of a deterministic run, as the threads taking part in it see it.
//
// tls_vclock points at the run's clock (DetSim::vnow_) on the driver and on every worker
// of a deterministic scheduler, and is null everywhere else: now_ns(), thread_cpu_ns() and
// steady_now() read the virtual time there, so timers, aging, deadlines and fair shares
// follow it without knowing about the mode. Only the thread holding the run's turn writes
// the clock; the others read it during their own turns, ordered by the hand-off (DetSim D2).
#pragma once

#include <atomic>
#include <cstdint>

namespace vitte::detail {

extern constinit thread_local const std::atomic<std::int64_t>* tls_vclock;
// The participant's own virtual CPU time (what thread_cpu_ns() returns there).
extern constinit thread_local const std::int64_t* tls_vcpu;

}  // namespace vitte::detail

// The clocks of the runtime, in one place:
//   steady_ns()      std::chrono::steady_clock in ns;
//   now_ns()         what timers, sleeps, deadlines, aging and latencies read: steady_ns(),
//                    or, on the threads of a deterministic run, that run's virtual clock
//                    (deterministic/virtual_clock.hpp);
//   steady_now()     the same as a time_point, out of line for public inline code
//                    (vitte/detail/clock.hpp);
//   thread_cpu_ns()  the calling thread's CPU time (what the Fair levels share), or the
//                    participant's virtual CPU time in a deterministic run;
//   trace_ticks()    trace timestamps: the TSC where it is invariant, else now_ns().
// A scheduler's own clock (SchedulerCore::clock_ns) is now_ns() of that scheduler's run,
// read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "deterministic/virtual_clock.hpp"
#include "vitte/detail/clock.hpp"

namespace vitte::detail {

inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::int64_t now_ns() noexcept {
  if (const auto* v = tls_vclock) [[unlikely]] return v->load(std::memory_order_relaxed);
  return steady_ns();
}

// Time a task spends preempted by other processes, or asleep, is not charged to its
// group. A system call (about 250 ns measured on the development VM), paid twice per
// policy task only.
std::int64_t thread_cpu_ns() noexcept;

// The trace clock: the time-stamp counter where it ticks at a constant rate in every power
// state (x86-64 with an invariant TSC: CPUID 0x80000007, EDX bit 8), else now_ns(). A traced
// task reads the clock twice; on the development VM (2026-11-25, 2-core KVM guest) a TSC
// read took 10 ns and a steady_clock read 22-32 ns. Ticks become steady_clock nanoseconds
// at export, by the (ns, ticks) pairs taken when the trace started and stopped (TraceData);
// the mapping is linear and increasing, so nested slices stay nested.
inline bool tsc_is_invariant() noexcept {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(0x80000007u, &a, &b, &c, &d) != 0 && (d & (1u << 8)) != 0;
#else
  return false;
#endif
}

// Decided once per process; read on every timestamp (a predictable branch).
inline const bool kTraceUsesTsc = tsc_is_invariant();

inline std::int64_t trace_ticks() noexcept {
#if defined(__x86_64__)
  if (kTraceUsesTsc) return static_cast<std::int64_t>(__rdtsc());
#endif
  return now_ns();
}

}  // namespace vitte::detail

// The clock of trace timestamps: the time-stamp counter where it ticks at a constant rate
// in every power state (x86-64 with an invariant TSC: CPUID 0x80000007, EDX bit 8), else
// steady_clock nanoseconds. A traced task reads the clock twice; on the development VM
// (2026-11-25, 2-core KVM guest) a TSC read took 10 ns and a steady_clock read 22-32 ns.
// Ticks become steady_clock nanoseconds at export, by the (ns, ticks) pairs taken when the
// trace started and stopped (TraceData); the mapping is linear and increasing, so nested
// slices stay nested.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "policy/ready_queue.hpp"  // now_ns()

namespace vitte::detail {

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

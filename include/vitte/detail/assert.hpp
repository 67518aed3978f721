// Invariant checks that stay on in debug and sanitizer builds.
//
// VITTE_ASSERT(cond, "msg") aborts with the condition, the message and the place when
// the condition is false. Release builds (NDEBUG without VITTE_CHECKED) compile it away;
// the sanitizer builds define VITTE_CHECKED so the checks run where races are hunted.
#pragma once

#include <cstdio>
#include <cstdlib>

#if !defined(NDEBUG) || defined(VITTE_CHECKED)
#define VITTE_ASSERT(cond, msg)                                                          \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "vitte: assertion failed: %s (%s) at %s:%d\n", #cond, msg,    \
                   __FILE__, __LINE__);                                                  \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
#else
#define VITTE_ASSERT(cond, msg) ((void)0)
#endif

namespace vitte::detail {

inline constexpr unsigned kCacheLine = 64;

// A hint to the core that we are spinning (PAUSE on x86, YIELD on Arm).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Gives the CPU away (sched_yield) in a spin that has lasted too long.
void yield_thread() noexcept;

}  // namespace vitte::detail

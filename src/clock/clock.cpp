#include "clock/clock.hpp"

#include <time.h>

namespace vitte::detail {

// The virtual clock's thread-locals (deterministic/virtual_clock.hpp): set by DetSim on
// the threads of a run, null everywhere else.
constinit thread_local const std::atomic<std::int64_t>* tls_vclock = nullptr;
constinit thread_local const std::int64_t* tls_vcpu = nullptr;

std::chrono::steady_clock::time_point steady_now() noexcept {
  if (const auto* c = tls_vclock) [[unlikely]]
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(c->load(std::memory_order_relaxed)));
  return std::chrono::steady_clock::now();
}

std::int64_t thread_cpu_ns() noexcept {
  if (const std::int64_t* v = tls_vcpu) [[unlikely]] return *v;  // a deterministic run: virtual CPU time
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace vitte::detail

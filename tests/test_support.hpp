// Shared helpers for the test suites.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#ifndef VITTE_STRESS_SCALE
#define VITTE_STRESS_SCALE 100
#endif
#ifndef VITTE_TOPOLOGY_DIR
#error "VITTE_TOPOLOGY_DIR must point at the topology/ folder"
#endif

namespace vitte::test {

// A stress size scaled by the build's stress_scale option (percent); never below 1.
inline std::size_t scaled(std::size_t full) {
  const std::size_t s = full * VITTE_STRESS_SCALE / 100;
  return s == 0 ? 1 : s;
}

inline std::string topology_file(const std::string& name) { return std::string(VITTE_TOPOLOGY_DIR) + "/" + name; }

std::vector<std::string> shipped_topologies();

// Threads of this process now (from /proc/self/status).
std::size_t thread_count();

}  // namespace vitte::test

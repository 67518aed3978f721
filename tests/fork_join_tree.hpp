// A fork-join tree with a little arithmetic at each leaf: the workload of the locality
// checks (tests/locality_test.cpp on the host, tests/numa/numa_guest.cpp in the guests).
#pragma once

#include <cstdint>

#include "vitte/task_group.hpp"

namespace vitte::test {

inline std::uint64_t tree(int depth) {
  if (depth == 0) {
    std::uint64_t x = 1;
    for (int i = 0; i < 300; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x & 1;
  }
  std::uint64_t a = 0, b = 0;
  TaskGroup g;
  g.run([&] { a = tree(depth - 1); });
  b = tree(depth - 1);
  g.wait();
  return a + b + 1;
}

}  // namespace vitte::test

// Kernels for vitte::dist's tests and benchmarks, each with a serial count to check it
// against: fib with a cutoff, nqueens, and an unbalanced tree search (UTS).
//
// UTS here is the binomial tree of the UTS benchmark (Olivier et al., 2006) with a cheap
// hash in place of SHA-1: the root has `root_children` children; every other node has
// `m` children with probability q, none otherwise (q*m < 1, so the tree is finite and its
// subtrees' sizes vary wildly: the load cannot be split evenly in advance). Each node costs
// `work` rounds of the hash, standing in for real per-node work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace vitte::dist_kernels {

inline long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

// Solutions of n queens with the first rows fixed (cols/diagonals as bit masks).
inline long queens_from(int n, std::uint32_t cols, std::uint32_t d1, std::uint32_t d2) {
  const std::uint32_t all = (1u << n) - 1;
  if (cols == all) return 1;
  long count = 0;
  std::uint32_t free = all & ~(cols | d1 | d2);
  while (free != 0) {
    const std::uint32_t bit = free & (0u - free);
    free ^= bit;
    count += queens_from(n, cols | bit, ((d1 | bit) << 1) & all, (d2 | bit) >> 1);
  }
  return count;
}

struct UtsParams {
  std::uint32_t root_children = 2;
  double q = 0.124875;
  std::uint32_t m = 8;
  std::uint32_t work = 50;  // hash rounds per node
  std::uint64_t seed = 19;
};

inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Visits a node: `work` rounds of the hash (kept, not optimised away), and returns the
// hash its children derive from, which does not depend on `work`: the tree's shape is the
// same whatever the per-node cost.
inline std::uint64_t uts_visit(std::uint64_t id, std::uint32_t work) {
  std::uint64_t w = id;
  for (std::uint32_t i = 0; i < work; ++i) w = mix(w);
  asm volatile("" : : "r"(w));
  return mix(id);
}

// How many children the node with (post-work) id `h` has; the root is depth 0.
inline std::uint32_t uts_children(std::uint64_t h, int depth, const UtsParams& p) {
  if (depth == 0) return p.root_children;
  const double u = static_cast<double>(mix(h ^ 0x5bd1e995u) >> 11) * (1.0 / 9007199254740992.0);
  return u < p.q ? p.m : 0;
}

inline std::uint64_t uts_child(std::uint64_t h, std::uint32_t i) { return mix(h + 0x632be59bd9b4e019ull * (i + 1)); }

// Visits the subtree of (id, depth) depth-first with an explicit stack and returns how
// many nodes it visited here. Every `give_every` nodes (0: never), when the stack holds two
// or more, it hands the oldest half to give(id, depth) and drops it: those are the
// shallowest nodes, the biggest subtrees, for another task (or rank) to explore.
template <class Give>
std::uint64_t uts_explore(std::uint64_t id, int depth, const UtsParams& p, std::uint64_t give_every, Give&& give) {
  std::vector<std::pair<std::uint64_t, int>> stack{{id, depth}};
  std::uint64_t count = 0;
  while (!stack.empty()) {
    auto [n, d] = stack.back();
    stack.pop_back();
    ++count;
    const std::uint64_t h = uts_visit(n, p.work);
    const std::uint32_t k = uts_children(h, d, p);
    for (std::uint32_t i = 0; i < k; ++i) stack.emplace_back(uts_child(h, i), d + 1);
    if (give_every != 0 && count % give_every == 0 && stack.size() >= 2) {
      const std::size_t half = stack.size() / 2;
      for (std::size_t i = 0; i < half; ++i) give(stack[i].first, stack[i].second);
      stack.erase(stack.begin(), stack.begin() + static_cast<std::ptrdiff_t>(half));
    }
  }
  return count;
}

// Nodes in the subtree of (id, depth): the serial count every distributed run checks.
inline std::uint64_t uts_serial(std::uint64_t id, int depth, const UtsParams& p) {
  return uts_explore(id, depth, p, 0, [](std::uint64_t, int) {});
}

}  // namespace vitte::dist_kernels

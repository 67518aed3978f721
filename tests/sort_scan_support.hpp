// Shared inputs of the sort, scan and for_each suites (sort_scan_test.cpp,
// algorithms_contract_test.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "vitte/error.hpp"
#include "vitte/vitte.hpp"

namespace vitte::test {

inline std::vector<std::uint64_t> random_u64(std::size_t n, std::uint64_t seed, std::uint64_t mod = 0) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> v(n);
  for (auto& x : v) x = mod == 0 ? rng() : rng() % mod;
  return v;
}

inline std::vector<std::string> random_strings(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> v(n);
  for (auto& s : v) {
    s.resize(1 + rng() % 24);
    for (char& c : s) c = static_cast<char>('a' + rng() % 4);  // a small alphabet: many shared prefixes
  }
  return v;
}

// A record sorted by key alone; seq tells equal keys apart, so that stability shows.
struct Rec {
  std::uint32_t key = 0, seq = 0;
  bool operator==(const Rec&) const = default;
};
constexpr auto by_key = [](const Rec& a, const Rec& b) { return a.key < b.key; };

inline std::vector<Rec> records(std::size_t n, std::uint32_t keys, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Rec> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = {static_cast<std::uint32_t>(rng() % keys), static_cast<std::uint32_t>(i)};
  return v;
}

// Values of very different magnitudes: their floating-point sum depends on the grouping.
inline double wild(std::size_t i) {
  return std::ldexp(1.0 + static_cast<double>(i % 7) * 0.1, static_cast<int>(i % 61) - 30);
}

inline std::uint64_t named_runs(vitte::Scheduler& s, const std::string& name) {
  std::uint64_t runs = 0;
  for (const vitte::GroupMetrics& g : s.metrics().groups)
    for (const vitte::GroupMetrics::Named& n : g.named)
      if (n.name == name) runs += n.runs;
  return runs;
}

[[noreturn]] inline void called_off() { throw vitte::Cancelled("told to stop"); }

}  // namespace vitte::test

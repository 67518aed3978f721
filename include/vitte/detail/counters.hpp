// Per-worker event counters: written by their worker alone, read by anyone.
//
// Each counter is a relaxed atomic updated with load+store (no locked instruction): the
// single writer makes the increment exact, and a reader gets a value that is at worst a
// few events old. Counters sit in the worker's own cache lines, so counting shares
// nothing on the hot path.
#pragma once

#include <atomic>
#include <cstdint>

#include "vitte/detail/count_table.hpp"

namespace vitte::detail {

class OwnerCounter {
 public:
  void bump(std::uint64_t n = 1) noexcept {
    // relaxed: single writer; readers only want an eventually exact total.
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t read() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// One OwnerCounter per row of the counter table (count_table.hpp).
struct WorkerCounters {
#define VITTE_COUNTER_MEMBER(member, json, prom, help) OwnerCounter member;
  VITTE_COUNTS(VITTE_COUNTER_MEMBER)
#undef VITTE_COUNTER_MEMBER
};

}  // namespace vitte::detail

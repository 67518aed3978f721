// Per-worker event counters: written by their worker alone, read by anyone.
//
// Each counter is a relaxed atomic updated with load+store (no locked instruction): the
// single writer makes the increment exact, and a reader gets a value that is at worst a
// few events old. Counters sit in the worker's own cache lines, so counting shares
// nothing on the hot path.
#pragma once

#include <atomic>
#include <cstdint>

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

struct WorkerCounters {
  OwnerCounter executed;       // tasks run by this worker
  OwnerCounter skipped;        // tasks of a cancelled group, destroyed without running
  OwnerCounter failed;         // tasks that threw
  OwnerCounter spawned;        // tasks pushed to this worker's own deque
  OwnerCounter injected_taken; // tasks taken from the own node's injection queue
  OwnerCounter steals_l3;      // successful steals from a worker sharing our L3
  OwnerCounter steals_node;    // ... from another worker of our NUMA node
  OwnerCounter steals_remote;  // ... from another node (its deques or its injection queue)
  OwnerCounter failed_rounds;  // full passes over every victim that found nothing
  OwnerCounter parks;          // times the worker went to sleep
  OwnerCounter wakeups;        // times it was woken by a producer
  OwnerCounter boxed;          // closures too large for the frame, boxed on the heap
  OwnerCounter policy_taken;   // policy work taken from a node's ReadyQueue (policy.hpp)
};

}  // namespace vitte::detail

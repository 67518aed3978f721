// ParkingLot: the sleeping workers of one scheduler, listed by NUMA node.
//
// Roles: a worker that found no work enlists itself, re-checks every queue, then sleeps
// on its own Waiter; producers call wake_one(near, cpu) to wake the sleeper nearest to the
// node where work appeared. Within that node an external producer asks for the sleeper
// bound to its own CPU: a pinned worker can only run on its CPU, and when that CPU is busy
// with another process the woken worker waits for the end of that process's time slice
// (milliseconds, measured on a loaded 2-core VM), whereas the submitting thread's CPU
// frees up as soon as it blocks in its join. Which sleeper is woken never affects
// correctness (P1-P3 hold for any choice).
// Invariants:
//   P1  a worker is listed at most once; only enlist() adds it and only the lock holder
//       removes it (delist() by the worker itself, or wake_one()/wake_all()).
//   P2  IdleState::sleepers equals the number of listed workers (changed under the node's
//       lock, read without it as a hint).
//   P3  whoever removes a worker it did not list itself (a waker) counts it in
//       IdleState::searching before waking it, so at most one wake-up is in flight per
//       "nobody is searching" episode; the worker learns this from delist() == false.
// The lock is only taken on the slow path (going to sleep, waking someone).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "vitte/detail/worker_local.hpp"

namespace vitte::detail {

class Worker;

class ParkingLot {
 public:
  // near_order[n]: every arena node, n first, then the others nearest first.
  ParkingLot(IdleState& idle, std::vector<std::vector<unsigned>> near_order);

  void enlist(Worker* w);
  // Removes w if it is still listed; returns false if a waker took it off the list.
  bool delist(Worker* w);
  // Wakes the listed worker nearest to `near`; false if nobody sleeps. Among the sleepers
  // of the nearest node with any, the one bound to Linux CPU `cpu` is preferred when there
  // is one (cpu < 0: no preference), else the most recent sleeper.
  bool wake_one(unsigned near, int cpu = -1);
  // Wakes every listed worker (shutdown).
  void wake_all();
  // Sleepers listed on node n (a hint).
  std::int32_t sleepers_on(unsigned n) const noexcept {
    return lists_[n].count.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(kCacheLine) NodeList {
    std::mutex mu;
    std::vector<Worker*> sleepers;
    std::atomic<std::int32_t> count{0};  // == sleepers.size(), readable without the lock
  };
  Worker* take_locked(NodeList& l, int cpu);

  IdleState& idle_;
  std::vector<std::vector<unsigned>> near_order_;
  std::vector<NodeList> lists_;
};

}  // namespace vitte::detail

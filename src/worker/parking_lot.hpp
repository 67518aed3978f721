// ParkingLot: the sleeping workers of one scheduler, listed by NUMA node.
//
// Roles: a worker that found no work enlists itself, re-checks every queue, then sleeps
// on its own Waiter; producers call wake_one(near) to wake the sleeper nearest to the
// node where work appeared.
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
  // Wakes the listed worker nearest to `near`; false if nobody sleeps.
  bool wake_one(unsigned near);
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
  Worker* take_locked(NodeList& l);

  IdleState& idle_;
  std::vector<std::vector<unsigned>> near_order_;
  std::vector<NodeList> lists_;
};

}  // namespace vitte::detail

#include "worker/parking_lot.hpp"

#include <algorithm>

#include "worker/worker.hpp"

namespace vitte::detail {

ParkingLot::ParkingLot(IdleState& idle, std::vector<std::vector<unsigned>> near_order)
    : idle_(idle), near_order_(std::move(near_order)), lists_(near_order_.size()) {}

void ParkingLot::enlist(Worker* w) {
  NodeList& l = lists_[w->node];
  std::lock_guard<std::mutex> lock(l.mu);
  VITTE_ASSERT(std::find(l.sleepers.begin(), l.sleepers.end(), w) == l.sleepers.end(), "P1");
  l.sleepers.push_back(w);
  l.count.fetch_add(1, std::memory_order_relaxed);  // lock-protected; read as a hint
  // seq_cst: the sleeper's announcement, ordered before its re-check of the queues
  // (Worker::park); producers read it after their own fence.
  idle_.sleepers.fetch_add(1, std::memory_order_seq_cst);
}

bool ParkingLot::delist(Worker* w) {
  NodeList& l = lists_[w->node];
  std::lock_guard<std::mutex> lock(l.mu);
  auto it = std::find(l.sleepers.begin(), l.sleepers.end(), w);
  if (it == l.sleepers.end()) return false;
  l.sleepers.erase(it);  // keeps the others in sleep order (the list is one node's workers)
  l.count.fetch_sub(1, std::memory_order_relaxed);
  idle_.sleepers.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

Worker* ParkingLot::take_locked(NodeList& l, int cpu) {
  // Most recent sleeper (its caches are warmest), unless one is bound to `cpu`.
  auto it = l.sleepers.end() - 1;
  if (cpu >= 0)
    for (auto i = l.sleepers.begin(); i != l.sleepers.end(); ++i)
      if ((*i)->os_cpu() == cpu) {
        it = i;
        break;
      }
  Worker* w = *it;
  l.sleepers.erase(it);  // keeps the others in sleep order: the most recent stays last
  l.count.fetch_sub(1, std::memory_order_relaxed);
  idle_.sleepers.fetch_sub(1, std::memory_order_seq_cst);
  idle_.searching.fetch_add(1, std::memory_order_seq_cst);  // P3
  return w;
}

bool ParkingLot::wake_one(unsigned near, int cpu) {
  for (unsigned n : near_order_[near]) {
    NodeList& l = lists_[n];
    if (l.count.load(std::memory_order_relaxed) == 0) continue;
    Worker* w = nullptr;
    {
      std::lock_guard<std::mutex> lock(l.mu);
      if (l.sleepers.empty()) continue;
      w = take_locked(l, cpu);
    }
    w->waiter.wake();
    return true;
  }
  return false;
}

void ParkingLot::wake_all() {
  for (NodeList& l : lists_) {
    std::vector<Worker*> woken;
    {
      std::lock_guard<std::mutex> lock(l.mu);
      while (!l.sleepers.empty()) woken.push_back(take_locked(l, -1));
    }
    for (Worker* w : woken) w->waiter.wake();
  }
}

}  // namespace vitte::detail

// Pool: the distributed pool's tasks queued on this rank (Cluster::spawn, steals and
// lifeline pushes that arrived). One list per worker, so spawns on different workers
// never share a lock, plus one (the last) for other threads and for arrivals.
//
// Each item is run by a token: a plain task submitted to the scheduler with the item,
// which pops the newest item of its list when it runs. Local workers thus run the pool
// depth-first like their deques, and thieves from other ranks take the oldest items (the
// cold end, nearest the root of a recursion, where the big subtrees are).
//
// Invariants:
//   L1  a list's items are read and changed only under its mutex; `size` is stored under
//       it after each change and read without it only as a hint (by the communication
//       thread deciding whether to steal or give).
//   L2  push() is followed by submitting one token for the same list; take_oldest()
//       removes items but never tokens, so a list always has at least as many tokens
//       queued or running as items: every item is run here or shipped, exactly once.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "vitte/detail/assert.hpp"
#include "vitte/dist.hpp"

namespace vitte::dist::detail {

class Pool {
 public:
  explicit Pool(std::size_t lists) : lists_(lists) {}

  std::size_t lists() const noexcept { return lists_.size(); }

  void push(std::size_t list, std::unique_ptr<PoolItem> item) {
    auto& l = lists_[list];
    std::lock_guard lock(l.mu);
    l.items.push_back(std::move(item));
    // relaxed: a hint for the communication thread (L1).
    l.size.store(l.items.size(), std::memory_order_relaxed);
  }

  // The newest item of `list`, or null when thieves took them all (L2).
  std::unique_ptr<PoolItem> pop_newest(std::size_t list) {
    auto& l = lists_[list];
    std::lock_guard lock(l.mu);
    VITTE_ASSERT(l.size.load(std::memory_order_relaxed) == l.items.size(), "L1: size mirrors the list");
    if (l.items.empty()) return nullptr;
    auto item = std::move(l.items.back());
    l.items.pop_back();
    l.size.store(l.items.size(), std::memory_order_relaxed);
    return item;
  }

  // Items queued now, summed over the lists (a hint under concurrency).
  std::size_t queued() const noexcept {
    std::size_t n = 0;
    for (const auto& l : lists_) n += l.size.load(std::memory_order_relaxed);
    return n;
  }

  // Up to `n` of the oldest items, taken round-robin from the fronts of the lists.
  std::vector<std::unique_ptr<PoolItem>> take_oldest(std::size_t n) {
    std::vector<std::unique_ptr<PoolItem>> out;
    bool any = true;
    while (out.size() < n && any) {
      any = false;
      for (auto& l : lists_) {
        if (out.size() == n) break;
        std::lock_guard lock(l.mu);
        if (l.items.empty()) continue;
        out.push_back(std::move(l.items.front()));
        l.items.pop_front();
        l.size.store(l.items.size(), std::memory_order_relaxed);
        any = true;
      }
    }
    return out;
  }

 private:
  struct alignas(vitte::detail::kCacheLine) List {
    std::mutex mu;
    std::deque<std::unique_ptr<PoolItem>> items;
    std::atomic<std::size_t> size{0};
  };
  std::vector<List> lists_;
};

}  // namespace vitte::dist::detail

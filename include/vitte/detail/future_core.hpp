// FutureCore: the part of a future's state that the scheduler itself reads, with no
// template parameter: the counter a blocking get() waits on, and the future this one
// feeds.
//
// Why `feeds`: an isolated wait (vitte::isolate) runs only the tasks of its region and the
// task that completes the future it waits for. A future that is the end of a chain
// (sched.async(a).then(b), when_all(...)) is completed by a link whose task is not queued
// until its sources complete; their tasks may have been queued outside the region. So a
// waiter must recognise, in a task it comes across, work that its future depends on: the
// task's own future (TaskFrame::joins) feeds a then() link or a gather, which feeds the
// next one, ..., which is the future waited for (feeds_into). The chain may also end in a
// coroutine that co_awaits it inside a region (a sync_wait there waits for that coroutine):
// `awaited_in` names that region, so the region's waits run the chain's tasks too.
//
// Invariants:
//   F1  `feeds` is written at most once, before the subscription that makes the consumer
//       depend on this future (a release store, then the subscribe CAS), and never
//       cleared. Only consumers that never unsubscribe set it: then() links (on their
//       source, and on the inner future of a flattened continuation) and gathers
//       (when_all/when_any, on each input). A coroutine's co_await, which a stop request
//       can take back, sets nothing.
//   F2  while a future is not complete, the consumer it feeds is alive: the consumer holds
//       itself while subscribed (ThenLink::self_, Gather::self_), and, except for a
//       when_any, it cannot complete before this future did. A when_any completes with its
//       first input, while the others are pending, and its own consumer may be gone by
//       then: it `ends_walks`, so a walk that reaches it goes no further (F3). Set before
//       its inputs are fed, never changed.
//   F3  so a thread that holds a queued task whose `joins` is this future (the future is
//       then not complete) may follow `feeds` from it to the end of the chain or to a
//       when_any: each hop before that is an incomplete future (by F2, one whose consumer
//       waits for the previous hop), hence alive.
//   F4  `awaited_in` is a value, not a pointer: an isolation region whose waits depend on
//       this future (0: none). A coroutine of that region co_awaited it (written before its
//       subscription), or a wait of that region found it on its chain (feeds_into, which
//       tags only untagged futures, so that the next link's task matches at once). A stop
//       request may take a subscription back and a when_any finish first; a stale region
//       then only lets that region's waits run a task they once depended on.
#pragma once

#include <atomic>

#include "vitte/detail/wait_counter.hpp"

namespace vitte::detail {

struct FutureCore {
  FutureCore() noexcept { counter.add(nullptr); }
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;

  // F1: the consumer, before it subscribes.
  void feed(const FutureCore* consumer) noexcept {
    // release: pairs with feeds_into's acquire, so a walker that sees the pointer sees a
    // constructed consumer.
    feeds.store(consumer, std::memory_order_release);
  }

  // F4: a coroutine in `region` is about to co_await this future.
  void awaited_from(std::uint64_t region) noexcept {
    // relaxed: a value read by feeds_into with no other data behind it.
    awaited_in.store(region, std::memory_order_relaxed);
  }

  WaitCounter counter{Joins::Value};
  std::atomic<const FutureCore*> feeds{nullptr};
  mutable std::atomic<std::uint64_t> awaited_in{0};  // F4; a memo that walkers write
  bool ends_walks = false;                            // F2: a when_any
};

// True if the task that completes `from` is work a wait on `c` inside isolation region
// `region` depends on: `from` is that future, or feeds it through a chain of then() links
// and gathers, or such a chain ends in a coroutine of `region` that co_awaits it. The
// caller holds that task unrun (F3); only isolated waits call it. A match tags the futures
// walked with `region` (F4), so the tasks of the chain's next links match at their first
// step: a chain of n links costs O(n) in all, not O(n^2).
inline bool feeds_into(const FutureCore* from, const WaitCounter& c, std::uint64_t region) noexcept {
  for (const FutureCore* s = from; s != nullptr; s = s->feeds.load(std::memory_order_acquire)) {  // F1
    // relaxed: F4's values carry no other data.
    if (&s->counter != &c && (region == 0 || s->awaited_in.load(std::memory_order_relaxed) != region)) {
      if (s->ends_walks) return false;  // F2: its consumer may be gone
      continue;
    }
    if (region != 0)
      for (const FutureCore* t = from; t != s; t = t->feeds.load(std::memory_order_acquire)) {
        std::uint64_t none = 0;
        t->awaited_in.compare_exchange_strong(none, region, std::memory_order_relaxed);  // F4: untagged only
      }
    return true;
  }
  return false;
}

}  // namespace vitte::detail

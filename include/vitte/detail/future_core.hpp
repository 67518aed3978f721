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
//       itself while subscribed (ThenLink::self_, Gather::self_), and it cannot complete
//       before this future did.
//   F3  so a thread that holds a queued task whose `joins` is this future (the future is
//       then not complete) may follow `feeds` from it to the end of the chain: each hop
//       is an incomplete future (by F2, one whose consumer waits for the previous hop),
//       hence alive.
//   F4  `awaited_in` is a value, not a pointer: the isolation region of the last coroutine
//       that co_awaited this future (0: none), written before its subscription. A stop
//       request may take that subscription back; a stale region then only lets that
//       region's waits run a task its coroutine once waited for.
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

  WaitCounter counter{/*cancel_on_error=*/false};
  std::atomic<const FutureCore*> feeds{nullptr};
  std::atomic<std::uint64_t> awaited_in{0};
};

// True if the task that completes `from` is work a wait on `c` inside isolation region
// `region` depends on: `from` is that future, or feeds it through a chain of then() links
// and gathers, or such a chain ends in a coroutine of `region` that co_awaits it. The
// caller holds that task unrun (F3). O(length of the chain); only isolated waits call it.
inline bool feeds_into(const FutureCore* from, const WaitCounter& c, std::uint64_t region) noexcept {
  for (const FutureCore* s = from; s != nullptr; s = s->feeds.load(std::memory_order_acquire)) {  // F1
    if (&s->counter == &c) return true;
    if (region != 0 && s->awaited_in.load(std::memory_order_relaxed) == region) return true;  // F4
  }
  return false;
}

}  // namespace vitte::detail

// InjectionQueue (src/queue/injection_queue.hpp) on its own: FIFO order, emptiness, the
// bounded mode's slot accounting (B1) and its waiting producers (B2), and an MPMC stress
// test that nothing is lost, duplicated or reordered per producer.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "exactly_once.hpp"
#include "queue/injection_queue.hpp"
#include "test_support.hpp"

using vitte::detail::InjectionQueue;
using vitte::detail::TaskFrame;

namespace {
// The queue never dereferences a frame: small integers stand for them.
TaskFrame* frame(std::uintptr_t i) { return reinterpret_cast<TaskFrame*>(i); }
std::uintptr_t id(TaskFrame* f) { return reinterpret_cast<std::uintptr_t>(f); }

// How many admit(false) succeed from the queue's current state (each then given back).
std::int64_t free_slots(InjectionQueue& q) {
  std::int64_t n = 0;
  while (q.admit(false)) ++n;
  for (std::int64_t i = 0; i < n; ++i) q.unadmit();
  return n;
}
}  // namespace

// Single-threaded: frames come out in push order, once each; empty() and size_hint()
// follow the contents.
TEST(InjectionQueue, PopsInFifoOrderAndReportsEmpty) {
  InjectionQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size_hint(), 0u);
  EXPECT_EQ(q.try_pop(), nullptr);
  for (std::uintptr_t i = 1; i <= 100; ++i) q.push(frame(i));
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.size_hint(), 100u);
  for (std::uintptr_t i = 1; i <= 100; ++i) ASSERT_EQ(id(q.try_pop()), i);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size_hint(), 0u);
  EXPECT_EQ(q.try_pop(), nullptr);
}

// Pushes and pops interleaved keep FIFO order across the queue's internal pages.
TEST(InjectionQueue, InterleavedPushPopKeepsOrder) {
  InjectionQueue q;
  std::uintptr_t next_in = 1, next_out = 1;
  for (int round = 0; round < 200; ++round) {
    for (int k = 0; k < 7; ++k) q.push(frame(next_in++));
    for (int k = 0; k < 5; ++k) ASSERT_EQ(id(q.try_pop()), next_out++);
  }
  while (TaskFrame* f = q.try_pop()) ASSERT_EQ(id(f), next_out++);
  EXPECT_EQ(next_out, next_in);
}

// The submission time travels with its frame; work the workers queue carries 0.
TEST(InjectionQueue, QueuedTimeTravelsWithItsFrame) {
  InjectionQueue q;
  q.push(frame(1), 111);
  q.push(frame(2));
  q.push(frame(3), 333);
  std::int64_t t = -1;
  EXPECT_EQ(id(q.try_pop(&t)), 1u);
  EXPECT_EQ(t, 111);
  EXPECT_EQ(id(q.try_pop(&t)), 2u);
  EXPECT_EQ(t, 0);
  EXPECT_EQ(id(q.try_pop(nullptr)), 3u);  // no out-parameter: fine
}

// Unbounded (the default): admit() is never needed and nothing is refused.
TEST(InjectionQueue, UnboundedByDefault) {
  InjectionQueue q;
  EXPECT_FALSE(q.bounded());
  EXPECT_EQ(q.bound(), 0);
  for (std::uintptr_t i = 1; i <= 10'000; ++i) q.push(frame(i));
  EXPECT_EQ(q.size_hint(), 10'000u);
}

// B1: admit() hands out exactly `bound` slots; a pop or an unadmit() gives one back.
TEST(InjectionQueue, BoundedAdmitsUpToTheBound) {
  InjectionQueue q(3);
  EXPECT_TRUE(q.bounded());
  EXPECT_EQ(q.bound(), 3);
  for (std::uintptr_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(q.admit(false)) << i;
    q.push_admitted(frame(i));
  }
  EXPECT_FALSE(q.admit(false)) << "a fourth slot past a bound of 3";
  EXPECT_EQ(id(q.try_pop()), 1u);
  EXPECT_TRUE(q.admit(false)) << "the pop gave its slot back";
  EXPECT_FALSE(q.admit(false));
  q.unadmit();  // the admitted slot was not used
  EXPECT_EQ(free_slots(q), 1);
  EXPECT_EQ(id(q.try_pop()), 2u);
  EXPECT_EQ(id(q.try_pop()), 3u);
  EXPECT_EQ(free_slots(q), 3);
}

// B1: the workers' own push() is never refused, yet counts toward the bound, so external
// producers are held back while the workers' backlog is over it.
TEST(InjectionQueue, BoundedWorkerPushesAreCountedNeverRefused) {
  InjectionQueue q(2);
  for (std::uintptr_t i = 1; i <= 5; ++i) q.push(frame(i));
  EXPECT_EQ(q.size_hint(), 5u);
  EXPECT_FALSE(q.admit(false));
  for (std::uintptr_t i = 1; i <= 3; ++i) ASSERT_EQ(id(q.try_pop()), i);
  EXPECT_FALSE(q.admit(false)) << "2 queued, bound 2";
  EXPECT_EQ(id(q.try_pop()), 4u);
  EXPECT_EQ(free_slots(q), 1);
  EXPECT_EQ(id(q.try_pop()), 5u);
  EXPECT_EQ(free_slots(q), 2);
}

// B2: a producer waiting in admit(true) on a full queue gets the slot a pop frees. The
// producer signals only after admit returns, so the main thread's pop must be what let it
// through (it cannot have been admitted while the queue was full).
TEST(InjectionQueue, BoundedWaitingProducerIsLetThroughByAPop) {
  InjectionQueue q(1);
  ASSERT_TRUE(q.admit(false));
  q.push_admitted(frame(1));
  std::atomic<bool> admitted{false};
  std::thread producer([&] {
    EXPECT_TRUE(q.admit(true));
    admitted.store(true);
    q.push_admitted(frame(2));
  });
  // Full: whatever the producer does meanwhile, it holds no slot yet.
  EXPECT_FALSE(admitted.load());
  EXPECT_EQ(id(q.try_pop()), 1u);
  producer.join();
  EXPECT_TRUE(admitted.load());
  EXPECT_EQ(id(q.try_pop()), 2u);
  EXPECT_EQ(free_slots(q), 1);
}

// MPMC: producers push disjoint ranges while consumers pop. Every frame comes out exactly
// once, and a consumer sees each producer's frames in push order (FIFO per producer).
TEST(InjectionQueueStress, ProducersAndConsumersLoseNothingAndKeepProducerOrder) {
  const std::size_t per = vitte::test::scaled(200'000);
  const unsigned producers = 2, consumers = 2;
  const std::size_t total = per * producers;
  InjectionQueue q;
  vitte::test::ExactlyOnce tally(total);
  std::atomic<std::size_t> out_of_order{0};

  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      // Producer p's frames are p*per+1 .. (p+1)*per, pushed in ascending order.
      for (std::size_t k = 1; k <= per; ++k) q.push(frame(p * per + k));
    });
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      std::vector<std::uintptr_t> last(producers, 0);
      while (tally.more()) {
        TaskFrame* f = q.try_pop();
        if (f == nullptr) continue;
        const std::uintptr_t i = id(f);
        tally.took(i);  // a bad id is counted too, so that the others still stop
        if (i < 1 || i > total) continue;
        const std::size_t p = (i - 1) / per;
        if (i <= last[p]) out_of_order.fetch_add(1, std::memory_order_relaxed);
        last[p] = i;
      }
    });
  for (auto& t : ts) t.join();

  EXPECT_EQ(tally.taken(), total);
  EXPECT_EQ(tally.bad_ids(), 0u);
  EXPECT_EQ(out_of_order.load(), 0u) << "a consumer saw a producer's frames out of order";
  EXPECT_EQ(tally.wrong(), 0u) << "frames lost or popped twice";
  EXPECT_TRUE(q.empty());
}

// Bounded MPMC (B1, B2): producers block in admit(true) on a small bound while one
// consumer drains. No producer is stranded (a lost wake-up would hang here), every frame
// comes out once, and afterwards all `bound` slots are free again.
TEST(InjectionQueueStress, BoundedProducersAreNeverStrandedAndSlotsBalance) {
  const std::size_t per = vitte::test::scaled(20'000);
  const unsigned producers = 3;
  const std::size_t total = per * producers;
  const std::size_t bound = 4;
  InjectionQueue q(bound);
  std::vector<std::atomic<unsigned char>> seen(total + 1);

  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      for (std::size_t k = 1; k <= per; ++k) {
        EXPECT_TRUE(q.admit(true));  // waits: never false
        q.push_admitted(frame(p * per + k));
      }
    });
  std::size_t taken = 0, max_seen = 0;
  while (taken < total) {
    max_seen = std::max(max_seen, q.size_hint());
    if (TaskFrame* f = q.try_pop()) {
      const std::uintptr_t i = id(f);
      ++taken;
      if (i >= 1 && i <= total) seen[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (auto& t : ts) t.join();

  // Only this thread pops, so the queue can never hold more than the bound.
  EXPECT_LE(max_seen, bound);
  std::size_t bad = 0;
  for (std::size_t i = 1; i <= total; ++i) bad += seen[i].load() != 1;
  EXPECT_EQ(bad, 0u) << "frames lost or popped twice";
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(free_slots(q), static_cast<std::int64_t>(bound)) << "B1: backlog_ did not return to 0";
}

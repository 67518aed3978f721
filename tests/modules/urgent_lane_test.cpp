// UrgentLane (src/queue/urgent_lane.hpp) on its own: the hint word follows the frames
// pushed and popped (U1) and the ReadyQueue's share of it (U3), the queue itself keeps
// FIFO order, and under concurrency every frame is popped once (U2) and the hint settles
// back to zero.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "exactly_once.hpp"
#include "queue/urgent_lane.hpp"
#include "test_support.hpp"

using vitte::detail::TaskFrame;
using vitte::detail::UrgentLane;

namespace {
TaskFrame* frame(std::uintptr_t i) { return reinterpret_cast<TaskFrame*>(i); }
std::uintptr_t id(TaskFrame* f) { return reinterpret_cast<std::uintptr_t>(f); }
}  // namespace

// A new lane is empty and not hinted; a pop from it returns null and leaves the hint alone.
TEST(UrgentLane, StartsEmptyAndUnhinted) {
  UrgentLane l;
  EXPECT_TRUE(l.empty());
  EXPECT_FALSE(l.hinted());
  EXPECT_EQ(l.size_hint(), 0u);
  EXPECT_EQ(l.try_pop(), nullptr);
  EXPECT_FALSE(l.hinted()) << "a failed pop must not lower the hint";
}

// U1 (single thread, where nothing lags): the hint is up exactly while frames are queued.
TEST(UrgentLane, HintFollowsQueuedFrames) {
  UrgentLane l;
  l.push(frame(1));
  l.push(frame(2));
  EXPECT_TRUE(l.hinted());
  EXPECT_FALSE(l.empty());
  EXPECT_EQ(l.size_hint(), 2u);
  EXPECT_EQ(id(l.try_pop()), 1u);
  EXPECT_TRUE(l.hinted()) << "one frame still queued";
  EXPECT_EQ(id(l.try_pop()), 2u);
  EXPECT_FALSE(l.hinted());
  EXPECT_TRUE(l.empty());
}

// The frames themselves come out in push order.
TEST(UrgentLane, PopsInFifoOrder) {
  UrgentLane l;
  for (std::uintptr_t i = 1; i <= 1000; ++i) l.push(frame(i));
  for (std::uintptr_t i = 1; i <= 1000; ++i) ASSERT_EQ(id(l.try_pop()), i);
  EXPECT_EQ(l.try_pop(), nullptr);
  EXPECT_FALSE(l.hinted());
}

// U3: the ReadyQueue's preferred work raises the same word without touching the queue:
// hinted() says "look here", empty() still tells the truth about the lane itself.
TEST(UrgentLane, ReadyQueueShareRaisesTheHintNotTheQueue) {
  UrgentLane l;
  l.raise_hint();
  EXPECT_TRUE(l.hinted());
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.try_pop(), nullptr);
  l.push(frame(7));
  EXPECT_EQ(id(l.try_pop()), 7u);
  EXPECT_TRUE(l.hinted()) << "the ReadyQueue's entry is still counted";
  l.lower_hint();
  EXPECT_FALSE(l.hinted());
}

// Raises and lowers from both sources in any order cancel out exactly.
TEST(UrgentLane, HintCountsBothSourcesInOneWord) {
  UrgentLane l;
  for (int i = 0; i < 3; ++i) l.raise_hint();
  for (std::uintptr_t i = 1; i <= 3; ++i) l.push(frame(i));
  for (int i = 0; i < 3; ++i) {
    l.lower_hint();
    EXPECT_NE(l.try_pop(), nullptr);
    EXPECT_EQ(l.hinted(), i < 2) << i;
  }
}

// U1, U2 under concurrency: producers push (and raise/lower the ReadyQueue's share) while
// consumers pop. Each frame is popped once, and once everyone stops the hint is zero:
// the relaxed counts may lag, never drift.
TEST(UrgentLaneStress, EveryFramePoppedOnceAndTheHintSettles) {
  const std::size_t per = vitte::test::scaled(200'000);
  const unsigned producers = 2, consumers = 2;
  const std::size_t total = per * producers;
  UrgentLane l;
  vitte::test::ExactlyOnce tally(total);

  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      for (std::size_t k = 1; k <= per; ++k) {
        if (k % 5 == 0) l.raise_hint();  // a ReadyQueue entry comes and goes meanwhile
        l.push(frame(p * per + k));
        if (k % 5 == 0) l.lower_hint();
      }
    });
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      while (tally.more()) {
        TaskFrame* f = l.try_pop();
        if (f != nullptr) tally.took(id(f));
      }
    });
  for (auto& t : ts) t.join();

  EXPECT_EQ(tally.taken(), total);
  EXPECT_EQ(tally.bad_ids(), 0u);
  EXPECT_EQ(tally.wrong(), 0u) << "frames lost or popped twice";
  EXPECT_TRUE(l.empty());
  EXPECT_FALSE(l.hinted()) << "the hint drifted";
}

// WsDeque: single-thread semantics, growth, and owner-vs-thieves stress.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/detail/ws_deque.hpp"

using vitte::detail::WsDeque;

namespace {
int* item(std::uintptr_t i) { return reinterpret_cast<int*>(i); }
std::uintptr_t id(int* p) { return reinterpret_cast<std::uintptr_t>(p); }
}  // namespace

TEST(WsDeque, OwnerPopsLifoThiefStealsFifo) {
  WsDeque<int*> d(4);
  for (std::uintptr_t i = 1; i <= 3; ++i) d.push(item(i));
  EXPECT_EQ(id(d.steal()), 1u);
  EXPECT_EQ(id(d.pop()), 3u);
  EXPECT_EQ(id(d.pop()), 2u);
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  EXPECT_TRUE(d.empty());
}

TEST(WsDeque, GrowsPastInitialCapacityAndKeepsOrder) {
  WsDeque<int*> d(2);
  for (std::uintptr_t i = 1; i <= 1000; ++i) d.push(item(i));
  EXPECT_EQ(d.size_hint(), 1000);
  for (std::uintptr_t i = 1; i <= 500; ++i) ASSERT_EQ(id(d.steal()), i);
  for (std::uintptr_t i = 1000; i > 500; --i) ASSERT_EQ(id(d.pop()), i);
  EXPECT_EQ(d.pop(), nullptr);
}

// One owner pushes N items (interleaving pops) while thieves steal; every item must come
// out exactly once, whoever takes it.
TEST(WsDequeStress, OwnerAndThievesLoseNothingDuplicateNothing) {
  const std::size_t n = vitte::test::scaled(4'000'000);
  const unsigned thieves = 3;
  WsDeque<int*> d(64);
  std::vector<std::atomic<unsigned char>> seen(n + 1);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> taken{0};

  auto take = [&](int* p) {
    const std::uintptr_t i = id(p);
    ASSERT_GE(i, 1u);
    ASSERT_LE(i, n);
    seen[i].fetch_add(1, std::memory_order_relaxed);
    taken.fetch_add(1, std::memory_order_relaxed);
  };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < thieves; ++t)
    ts.emplace_back([&] {
      while (!done.load(std::memory_order_acquire) || !d.empty())
        if (int* p = d.steal()) take(p);
    });
  for (std::uintptr_t i = 1; i <= n; ++i) {
    d.push(item(i));
    if (i % 3 == 0)
      if (int* p = d.pop()) take(p);
  }
  while (int* p = d.pop()) take(p);
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();

  EXPECT_EQ(taken.load(), n);
  std::size_t bad = 0;
  for (std::size_t i = 1; i <= n; ++i) bad += seen[i].load() != 1;
  EXPECT_EQ(bad, 0u) << "items lost or taken twice";
}

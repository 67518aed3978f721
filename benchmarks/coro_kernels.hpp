// The fork-join kernels written as vitte::task coroutines (issue #8), beside their
// TaskGroup versions in kernels.hpp: the same tree, the same cut-offs, so the difference
// is the cost of a coroutine frame and a suspension against a task frame and a wait.
#pragma once

#include <array>
#include <cstdint>

#include "fib.hpp"
#include "vitte/coro.hpp"

namespace bench {

// cofib: fib.hpp (shared with the tests).

inline vitte::task<std::uint64_t> coskynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) co_return num;
  std::array<vitte::task<std::uint64_t>, 10> kids;
  for (std::uint64_t i = 0; i < 10; ++i) {
    kids[i] = coskynet(num + i * (size / 10), size / 10);
    co_await vitte::fork(kids[i]);
  }
  co_await vitte::join();
  std::uint64_t s = 0;
  for (auto& k : kids) s += k.result();
  co_return s;
}

// A yield with nothing else ready: it goes on at once (coro.hpp, vitte::yield).
inline vitte::task<long> coyield(long rounds) {
  for (long i = 0; i < rounds; ++i) co_await vitte::yield();
  co_return rounds;
}

// Yields that make a round trip: kCrowd coroutines yield in turn, so each yield finds the
// others ready and queues behind them on the node's queue.
inline constexpr int kCrowd = 4;
inline vitte::task<long> coyield_crowd(long rounds_each) {
  std::array<vitte::task<long>, kCrowd> kids;
  for (auto& k : kids) {
    k = coyield(rounds_each);
    co_await vitte::fork(k);
  }
  co_await vitte::join();
  long s = 0;
  for (auto& k : kids) s += k.result();
  co_return s;
}

}  // namespace bench

// What the queues' stress tests check: each of `total` items (numbered 1..total) is taken
// exactly once, by any number of consumer threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace vitte::test {

class ExactlyOnce {
 public:
  explicit ExactlyOnce(std::size_t total) : total_(total), seen_(total + 1) {}

  // Consumers loop while this is true.
  bool more() const noexcept { return taken_.load(std::memory_order_relaxed) < total_; }
  // A consumer took item `i`.
  void took(std::uintptr_t i) noexcept {
    taken_.fetch_add(1, std::memory_order_relaxed);
    if (i < 1 || i > total_)
      bad_ids_.fetch_add(1, std::memory_order_relaxed);
    else
      seen_[i].fetch_add(1, std::memory_order_relaxed);
  }
  std::size_t taken() const noexcept { return taken_.load(); }
  std::size_t bad_ids() const noexcept { return bad_ids_.load(); }
  // Items not taken exactly once (after the consumers joined).
  std::size_t wrong() const noexcept {
    std::size_t bad = 0;
    for (std::size_t i = 1; i <= total_; ++i) bad += seen_[i].load() != 1;
    return bad;
  }

 private:
  const std::size_t total_;
  std::vector<std::atomic<unsigned char>> seen_;
  std::atomic<std::size_t> taken_{0}, bad_ids_{0};
};

}  // namespace vitte::test

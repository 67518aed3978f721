// Waiter: a long-lived wake-up word one thread sleeps on (one per worker, one per
// external thread that blocks in a join).
//
// Protocol: the sleeper reads epoch(), re-checks its condition, then wait(epoch). A
// waker bumps the sequence and notifies. Wake-ups carry no payload: a sleeper always
// re-checks its condition, so an early or stale wake-up costs one extra check, never a
// lost signal. The object must outlive every waker that may still reach it, which is
// why it is never a member of a short-lived object such as a TaskGroup.
#pragma once

#include <atomic>
#include <cstdint>

#include "vitte/detail/assert.hpp"

namespace vitte::detail {

class Waiter {
 public:
  std::uint32_t epoch() const noexcept {
    // acquire: pairs with the release in wake(), so what the waker wrote before waking
    // us is visible once we observe its new sequence value.
    return seq_.load(std::memory_order_acquire);
  }
  void wait(std::uint32_t epoch) const noexcept {
    // Blocks (futex) while the sequence still equals `epoch`; acquire as in epoch().
    seq_.wait(epoch, std::memory_order_acquire);
  }
  void wake() noexcept {
    // release: pairs with the acquire in epoch()/wait().
    seq_.fetch_add(1, std::memory_order_release);
    seq_.notify_one();
  }

 private:
  alignas(kCacheLine) std::atomic<std::uint32_t> seq_{0};
};

// The calling thread's own Waiter for blocking joins outside the workers.
Waiter& this_thread_waiter() noexcept;

}  // namespace vitte::detail

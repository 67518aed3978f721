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
#include <chrono>
#include <cstdint>

#include "vitte/detail/assert.hpp"

namespace vitte::detail {

// The sleep is a futex on the sequence word, with a flag that says someone may sleep on it,
// so that a wake-up nobody waits for costs no system call:
//   W1  the sleeper sets `sleeping_` (seq_cst), then re-reads the sequence (seq_cst) and
//       sleeps only if it is still `epoch`; the kernel compares it again as it sleeps.
//   W2  the waker bumps the sequence (seq_cst RMW), then reads `sleeping_` (seq_cst) and
//       calls the kernel only if it is set. By W1/W2 either the sleeper sees the new
//       sequence, or the waker sees the flag; a wake that lands between the sleeper's check
//       and its sleep changes the word, which the kernel's compare catches.
// One thread sleeps on a Waiter at a time (its owner), so the flag is a plain bool word.
class Waiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  std::uint32_t epoch() const noexcept {
    // acquire: pairs with the release in wake(), so what the waker wrote before waking
    // us is visible once we observe its new sequence value.
    return seq_.load(std::memory_order_acquire);
  }
  // Blocks while the sequence still equals `epoch`.
  void wait(std::uint32_t epoch) noexcept { (void)sleep(epoch, nullptr); }
  // As wait(), until `deadline` on the steady clock at the latest. False: the deadline
  // passed (the sequence may have moved meanwhile: re-check).
  bool wait_until(std::uint32_t epoch, TimePoint deadline) noexcept { return sleep(epoch, &deadline); }
  void wake() noexcept {
    // seq_cst RMW then seq_cst load (W2); release part: pairs with the acquire in epoch().
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst)) wake_sleeper();
  }

 private:
  bool sleep(std::uint32_t epoch, const TimePoint* deadline) noexcept;  // waiter.cpp
  void wake_sleeper() noexcept;                                         // waiter.cpp

  alignas(kCacheLine) std::atomic<std::uint32_t> seq_{0};
  std::atomic<bool> sleeping_{false};
};

// The calling thread's own Waiter for blocking joins outside the workers.
Waiter& this_thread_waiter() noexcept;

}  // namespace vitte::detail

// Waiter's sleep and wake-up (vitte/detail/waiter.hpp): a futex on the sequence word.
#include "vitte/detail/waiter.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <ctime>

namespace vitte::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word is the atomic's own storage");

bool Waiter::sleep(std::uint32_t epoch, const TimePoint* deadline) noexcept {
  // W1: announce, then re-check.
  sleeping_.store(true, std::memory_order_seq_cst);
  bool in_time = true;
  timespec at{};
  if (deadline != nullptr) {
    // A deadline before the clock's epoch (a timer armed at a time_point in the far past)
    // is the epoch: the kernel refuses a negative time with EINVAL, which would spin here.
    const auto ns = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count());
    at.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    at.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  // Until the word moves or the deadline passes: a signal, or a stale wake-up meant for an
  // earlier sleep, returns from the kernel with the word unchanged, and we sleep again.
  while (seq_.load(std::memory_order_seq_cst) == epoch) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (the steady clock's on
    // Linux); a null timeout waits without one. Returns at once if the word moved.
    const long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAIT_BITSET_PRIVATE, epoch,
                           deadline != nullptr ? &at : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && (errno == ETIMEDOUT || errno == EINVAL)) {  // EINVAL: a bad time, taken as passed
      in_time = false;
      break;
    }
  }
  // The loop's seq_cst loads of the word acquire what the waker wrote before its bump.
  sleeping_.store(false, std::memory_order_relaxed);  // only the owner sleeps here
  return in_time;
}

void Waiter::wake_sleeper() noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace vitte::detail

// The liveness table (vitte/detail/liveness.hpp).
//
// Slots live in chunks that are never freed, so a token can always be looked up. A token is
// (serial << kSlotBits) | slot, the serial unique per scheduler made.
// Invariants:
//   L1  a slot holds the token of the scheduler that owns it, or 0 while it is free; a
//       token is never reused (the serial only grows), so a stale token never matches.
//   L2  a chunk is published (release) before any token naming one of its slots exists,
//       and never freed; alive() reads it with acquire.
//   L3  the owner's token is stored (release) when the scheduler is made and replaced by 0
//       (release) as the last step of its destruction; alive() loads it with acquire, so a
//       thread that sees the token also sees the scheduler's construction.
//   L4  slots and chunks are handed out under `mu`; alive() takes no lock. A fork() child
//       inherits `mu` unlocked: the atfork handlers hold it across the fork.
#include <pthread.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lifecycle/live_slot.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/liveness.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

namespace {

constexpr unsigned kChunkBits = 10;
constexpr unsigned kChunks = 1024;
constexpr unsigned kSlotBits = 20;  // kChunks << kChunkBits slots
constexpr std::uint64_t kSlotMask = (std::uint64_t{1} << kSlotBits) - 1;
static_assert((std::uint64_t{kChunks} << kChunkBits) == (std::uint64_t{1} << kSlotBits));

using Chunk = std::array<std::atomic<std::uint64_t>, std::size_t{1} << kChunkBits>;

struct Table {
  std::array<std::atomic<Chunk*>, kChunks> chunks{};
  std::mutex mu;
  std::vector<std::uint32_t> free;  // under mu
  std::uint32_t used = 0;           // slots handed out at least once; under mu
  std::uint64_t serial = 0;         // under mu
};

Table& table() {
  // Never destroyed: handles may be asked about during static destruction.
  static Table* t = [] {
    auto* made = new Table;
    pthread_atfork([] { table().mu.lock(); }, [] { table().mu.unlock(); }, [] { table().mu.unlock(); });  // L4
    return made;
  }();
  return *t;
}

std::atomic<std::uint64_t>& slot_of(std::uint64_t token) noexcept {
  const std::uint64_t slot = token & kSlotMask;
  Chunk* c = table().chunks[slot >> kChunkBits].load(std::memory_order_acquire);  // L2
  return (*c)[slot & ((std::uint64_t{1} << kChunkBits) - 1)];
}

}  // namespace

LiveSlot::LiveSlot() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  std::uint32_t slot;
  if (!t.free.empty()) {
    slot = t.free.back();
    t.free.pop_back();
  } else {
    if (t.used == (std::uint32_t{1} << kSlotBits))
      throw Error("Scheduler: " + std::to_string(t.used) + " schedulers are alive at once, the most one process may have");
    slot = t.used;
    if (t.chunks[slot >> kChunkBits].load(std::memory_order_relaxed) == nullptr)
      t.chunks[slot >> kChunkBits].store(new Chunk{}, std::memory_order_release);  // L2: never freed
    ++t.used;
  }
  token_ = (++t.serial << kSlotBits) | slot;
  slot_of(token_).store(token_, std::memory_order_release);  // L3
}

LiveSlot::~LiveSlot() {
  Table& t = table();
  slot_of(token_).store(0, std::memory_order_release);  // L3: before the slot can be reused
  std::lock_guard<std::mutex> lock(t.mu);
  t.free.push_back(static_cast<std::uint32_t>(token_ & kSlotMask));
}

std::uint64_t live_token(const SchedulerCore* core) noexcept { return core != nullptr ? core->live.token() : 0; }

bool alive(std::uint64_t token) noexcept {
  return token != 0 && slot_of(token).load(std::memory_order_acquire) == token;  // L1, L3
}

void check_alive(std::uint64_t token, const char* what) {
  if (!alive(token))
    throw UsageError(std::string(what) + " after its Scheduler was destroyed: a handle (a TaskGroup, a Future, a "
                     "Timer) must not be used once the scheduler it was made for is gone");
}

}  // namespace vitte::detail

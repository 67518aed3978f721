// CoroFramePool: a worker's private free lists of coroutine frames (vitte::task).
//
// A coroutine frame's size is fixed per coroutine function and known to operator new,
// so frames are sorted into size classes of kGranule bytes up to kMaxPooled; larger ones
// go to the system allocator. Like FramePool, the lists belong to one worker (no atomics,
// no lock): a frame freed on a worker goes to that worker's list, wherever it was made;
// frames freed on other threads go back to the system. Each class holds at most kCapBytes,
// so a worker keeps at most kClasses * kCapBytes (4 MiB) however many coroutines have
// finished; frames in use are bounded by the coroutines alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "vitte/detail/counters.hpp"

namespace vitte::detail {

class CoroFramePool {
 public:
  static constexpr std::size_t kGranule = 64;
  static constexpr std::size_t kMaxPooled = 1024;
  static constexpr std::size_t kClasses = kMaxPooled / kGranule;
  static constexpr std::size_t kCapBytes = 256 * 1024;

  CoroFramePool() = default;
  CoroFramePool(const CoroFramePool&) = delete;
  CoroFramePool& operator=(const CoroFramePool&) = delete;
  ~CoroFramePool() {
    for (Block*& head : heads_)
      while (head != nullptr) {
        Block* b = head;
        head = b->next;
        ::operator delete(static_cast<void*>(b));
      }
  }

  // The size to ask the system for a frame of n bytes, on any thread: a pooled class's
  // full size, so that a frame made anywhere can join any worker's list of its class.
  static constexpr std::size_t block_size(std::size_t n) noexcept {
    return n > kMaxPooled ? n : (class_of(n) + 1) * kGranule;
  }

  [[gnu::always_inline]] void* allocate(std::size_t n) {
    if (n > kMaxPooled) [[unlikely]]
      return large(n);
    const std::size_t c = class_of(n);
    Block* b = heads_[c];
    if (b == nullptr) [[unlikely]]
      return from_system(c);
    heads_[c] = b->next;
    --counts_[c];
    return b;
  }

  [[gnu::always_inline]] void free(void* p, std::size_t n) noexcept {
    if (n > kMaxPooled) [[unlikely]] {
      to_system(p);
      return;
    }
    const std::size_t c = class_of(n);
    if (counts_[c] >= cap_of(c)) [[unlikely]] {
      to_system(p);
      return;
    }
    Block* b = static_cast<Block*>(p);
    b->next = heads_[c];
    heads_[c] = b;
    ++counts_[c];
  }

  // Frames this pool took from / gave back to the system allocator (any thread may read).
  std::uint64_t from_system() const noexcept { return from_system_.read(); }
  std::uint64_t to_system() const noexcept { return to_system_.read(); }

 private:
  struct Block {
    Block* next;
  };
  static constexpr std::size_t class_of(std::size_t n) noexcept { return n == 0 ? 0 : (n - 1) / kGranule; }
  static constexpr std::uint32_t cap_of(std::size_t c) noexcept {
    return static_cast<std::uint32_t>(kCapBytes / ((c + 1) * kGranule));
  }
  [[gnu::cold, gnu::noinline]] void* from_system(std::size_t c) {
    from_system_.bump();
    return ::operator new((c + 1) * kGranule);
  }
  [[gnu::cold, gnu::noinline]] static void* large(std::size_t n) { return ::operator new(n); }
  [[gnu::cold, gnu::noinline]] void to_system(void* p) noexcept {
    to_system_.bump();
    ::operator delete(p);
  }

  Block* heads_[kClasses] = {};
  std::uint32_t counts_[kClasses] = {};
  OwnerCounter from_system_;
  OwnerCounter to_system_;
};

// coro_frame_alloc()/coro_frame_free() (worker_local.hpp) pick the calling worker's pool,
// or the system allocator on other threads.

}  // namespace vitte::detail

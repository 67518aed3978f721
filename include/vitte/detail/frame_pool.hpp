// FramePool: a worker's private free list of TaskFrames.
//
// Owner only: a frame is returned to the pool of the worker that executed it, whichever
// worker spawned it. The list is capped (kCap frames, 512 KiB) and frames past the cap go
// back to the system allocator, so a pool never holds more than the cap no matter how
// many tasks have finished; frames in flight are bounded by the live tasks. The two
// counters (owner-written, read by metrics) record traffic with the system allocator,
// which happens only on a pool miss or overflow.
#pragma once

#include <cstdint>

#include "vitte/detail/counters.hpp"
#include "vitte/detail/task_frame.hpp"

namespace vitte::detail {

class FramePool {
 public:
  static constexpr std::uint32_t kCap = 4096;

  FramePool() = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;
  ~FramePool() {
    // Frames this pool took and that live on elsewhere (queued in another pool, say) are
    // handed over to the process-wide count, so the total stays exact.
    const auto handed_over =
        static_cast<std::int64_t>(from_system() - to_system()) - static_cast<std::int64_t>(size_);
    external_frames.fetch_add(handed_over, std::memory_order_relaxed);  // statistics only
    while (head_ != nullptr) {
      TaskFrame* f = head_;
      head_ = f->next;
      system_delete_frame(f);
    }
  }

  // The fast paths are a few instructions and are inlined into every spawn and execute;
  // the allocator calls sit in cold functions so that they never stop that inlining (a
  // lost inlining of get() cost fib35 about 5 %).
  TaskFrame* get() {
    TaskFrame* f = head_;
    if (f == nullptr) [[unlikely]]
      return get_from_system();
    head_ = f->next;
    --size_;
    return f;
  }

  void put(TaskFrame* f) noexcept {
    if (size_ >= kCap) [[unlikely]] {
      put_to_system(f);
      return;
    }
    f->next = head_;
    head_ = f;
    ++size_;
  }

  std::uint32_t size() const noexcept { return size_; }
  // Frames this pool took from / gave back to the system allocator (any thread may read).
  std::uint64_t from_system() const noexcept { return from_system_.read(); }
  std::uint64_t to_system() const noexcept { return to_system_.read(); }

 private:
  [[gnu::cold, gnu::noinline]] TaskFrame* get_from_system() {
    from_system_.bump();
    return system_new_frame();
  }
  [[gnu::cold, gnu::noinline]] void put_to_system(TaskFrame* f) noexcept {
    to_system_.bump();
    system_delete_frame(f);
  }

  TaskFrame* head_ = nullptr;
  std::uint32_t size_ = 0;
  OwnerCounter from_system_;
  OwnerCounter to_system_;
};

}  // namespace vitte::detail

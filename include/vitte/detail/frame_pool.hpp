// FramePool: a worker's private free list of TaskFrames.
//
// Owner only, no atomics: a frame is returned to the pool of the worker that executed it,
// whichever worker spawned it. The list is capped (kCap frames, 512 KiB) and frames past
// the cap go back to the system allocator, so a pool never holds more than the cap no
// matter how many tasks have finished; frames in flight are bounded by the live tasks.
#pragma once

#include <cstdint>

#include "vitte/detail/task_frame.hpp"

namespace vitte::detail {

class FramePool {
 public:
  static constexpr std::uint32_t kCap = 4096;

  FramePool() = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;
  ~FramePool() {
    while (head_ != nullptr) {
      TaskFrame* f = head_;
      head_ = f->next;
      delete_frame(f);
    }
  }

  TaskFrame* get() {
    if (head_ == nullptr) return new_frame();
    TaskFrame* f = head_;
    head_ = f->next;
    --size_;
    return f;
  }

  void put(TaskFrame* f) noexcept {
    if (size_ >= kCap) {
      delete_frame(f);
      return;
    }
    f->next = head_;
    head_ = f;
    ++size_;
  }

  std::uint32_t size() const noexcept { return size_; }

 private:
  TaskFrame* head_ = nullptr;
  std::uint32_t size_ = 0;
};

}  // namespace vitte::detail

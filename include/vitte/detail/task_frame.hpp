// TaskFrame: the fixed-size block that carries one unit of work through the queues.
//
// A frame is 128 bytes (two cache lines) and holds the closure inline when it fits in
// kInlineBytes; larger closures are boxed on the heap (one allocation, counted in the
// metrics as `boxed`). Frames come from the executing worker's FramePool, so spawning a
// small closure costs no heap allocation.
//
// Life of a frame:  make_frame (owner of the Task) -> queue (deque or injection) ->
// execute (exactly one worker) -> op(Run) runs and destroys the closure -> the frame
// goes back to the executing worker's pool -> counter->done() signals the joiner.
// The signal comes last so that the joiner never sees the counter reach zero while a
// closure of its group is still alive.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "vitte/detail/wait_counter.hpp"

namespace vitte::detail {

struct FutureCore;  // future_core.hpp

enum class FrameOp : unsigned char { Run, Discard };

struct alignas(kCacheLine) TaskFrame {
  static constexpr std::size_t kSize = 128;
  static constexpr std::size_t kHeader = 32;
  static constexpr std::size_t kInlineBytes = kSize - kHeader;

  // Runs (FrameOp::Run) and then destroys the closure, or only destroys it (Discard).
  // Exceptions from the closure are routed to `counter`; op itself never throws and
  // returns how the run ended (RunEnd::Ok for Discard).
  RunEnd (*op)(TaskFrame*, FrameOp) noexcept = nullptr;
  WaitCounter* counter = nullptr;  // who is told when this frame is done (never null once queued)
  union {
    TaskFrame* next = nullptr;     // free-list link while the frame sits in a pool
    // While queued: the future this task completes (its `counter` is the scheduler's
    // detached one), so an isolated wait recognises the task it waits for, or one its
    // future depends on (future_core.hpp, feeds_into); null for every other task. Set by
    // pack() (null), Scheduler::async and queue_continuation.
    const FutureCore* joins;
  };
  // The isolation region (vitte::isolate) the task was spawned in, 0 for none. Whoever
  // runs the task runs it inside that region, so its own waits stay isolated too.
  std::uint64_t isolation = 0;
  alignas(16) unsigned char storage[kInlineBytes];
};
static_assert(sizeof(TaskFrame) == TaskFrame::kSize);
static_assert(offsetof(TaskFrame, storage) == TaskFrame::kHeader);

template <class F>
inline constexpr bool kFitsInline = sizeof(F) <= TaskFrame::kInlineBytes &&
                                    alignof(F) <= 16 &&
                                    std::is_nothrow_move_constructible_v<F>;

template <class F>
RunEnd frame_op(TaskFrame* f, FrameOp op) noexcept {
  F* fn;
  if constexpr (kFitsInline<F>) {
    fn = std::launder(reinterpret_cast<F*>(f->storage));
  } else {
    fn = *std::launder(reinterpret_cast<F**>(f->storage));
  }
  RunEnd end = RunEnd::Ok;
  if (op == FrameOp::Run) {
    try {
      // A closure that keeps its own errors (a future's task) says how it ended, so that it
      // is counted as failed or cancelled all the same.
      if constexpr (std::is_same_v<std::invoke_result_t<F&>, RunEnd>)
        end = (*fn)();
      else
        (*fn)();
    } catch (...) {
      end = f->counter->record_exception(std::current_exception());
    }
  }
  if constexpr (kFitsInline<F>) {
    fn->~F();
  } else {
    delete fn;
  }
  return end;
}

// Places the closure into a frame that the caller already allocated.
template <class F>
void construct_closure(TaskFrame* f, F&& fn) {
  using D = std::decay_t<F>;
  if constexpr (kFitsInline<D>) {
    ::new (static_cast<void*>(f->storage)) D(std::forward<F>(fn));
  } else {
    D* boxed = new D(std::forward<F>(fn));
    ::new (static_cast<void*>(f->storage)) D*(boxed);
  }
  f->op = &frame_op<D>;
}

inline TaskFrame* system_new_frame() {
  return static_cast<TaskFrame*>(::operator new(sizeof(TaskFrame), std::align_val_t{kCacheLine}));
}
inline void system_delete_frame(TaskFrame* f) noexcept {
  ::operator delete(static_cast<void*>(f), std::align_val_t{kCacheLine});
}

// Frames held from the system allocator that no live FramePool accounts for: those taken
// by threads that are not workers, minus those they gave back, plus what dead pools
// handed over. Live pools count their own traffic. Statistics only; touched on the
// external submission path and when a pool dies, never by a running worker.
extern std::atomic<std::int64_t> external_frames;
// Set when external_frames climbs past kTrimAfterFrames (a backlog of external work that
// will leave that much freed heap behind); the last worker to go idle then hands free
// memory back to the system once (SchedulerCore::on_idle).
inline constexpr std::int64_t kTrimAfterFrames = 1 << 16;  // 8 MiB of frames
extern std::atomic<bool> trim_wanted;

inline TaskFrame* new_frame() {
  TaskFrame* f = system_new_frame();
  // relaxed: statistics and a hint; the RMW result tells us when we cross the mark.
  if (external_frames.fetch_add(1, std::memory_order_relaxed) == kTrimAfterFrames) [[unlikely]]
    trim_wanted.store(true, std::memory_order_relaxed);
  return f;
}
inline void delete_frame(TaskFrame* f) noexcept {
  external_frames.fetch_sub(1, std::memory_order_relaxed);
  system_delete_frame(f);
}

}  // namespace vitte::detail

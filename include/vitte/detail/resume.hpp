// Resumption: how a suspended coroutine (or any continuation) gets back onto the workers.
//
// Every suspension point of the async model ends in one call: resume_later(core, h, lane,
// node, region) packs `h.resume()` into an ordinary TaskFrame and hands it to the one route
// (route.hpp) as a Resumption. Forked children and fork-join resumptions on the worker's
// own deque (push_fork, push_resume in coro_promise.hpp) take the route's inline line.
//
// Lanes:
//   Local   the calling worker's own deque (LIFO): runs next on this worker unless
//           stolen. For continuations that should stay hot in this worker's caches (a
//           future fulfilled by a task on this worker, a forked child). From a thread
//           that is not one of `core`'s workers it falls back to Fifo.
//   Fifo    the node's injection queue: behind the work already queued there and after
//           the worker's own deque (vitte::yield, schedule_on).
//   Urgent  the node's urgent lane, which workers look at before their node's injection
//           queue (timers that fell due: their lateness is the point).
//
// Isolation: the coroutine resumes in the isolation region (vitte::isolate) it was
// suspended in, whoever resumes it: the suspending awaiter records its worker's region and
// hands it to resume_later, so a wait inside the region (a sync_wait there) runs the
// resumption even when a promise's setter, the timer thread or a worker outside the
// region queued it.
//
// Accounting: resumption frames are not tasks of any group. Their completion is
// reported to a counter nobody waits on (the pushing worker's `untracked` one, or the
// core's for other threads); the coroutine itself is counted where it started (its root
// is a detached task of the scheduler, see coro.hpp).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "vitte/detail/route.hpp"

namespace vitte::detail {

// How one coroutine hands the worker to the next (a child it awaits, a parent it ends
// into): symmetric transfer, await_suspend returning the next handle. The compiler must
// turn that resume into a tail call or every hand-off nests a stack frame; GCC does at
// -O2, but not at -O0 nor under ThreadSanitizer, where a fork-join tree of a few hundred
// thousand coroutines would overflow the stack. So each hand-off checks how far the stack
// has grown since the loop that resumed the coroutine (run_coroutine): within
// kMaxNesting it transfers directly (always, where tail calls happen); beyond, it leaves
// the next coroutine in a per-thread slot and returns to that loop, which resumes it at
// the loop's own depth. One protocol for every translation unit, optimised or not.
//
// The loop's stack position and the coroutine it resumes next (null: none).
extern constinit thread_local char* tls_resume_base __attribute__((tls_model("initial-exec")));
extern constinit thread_local void* tls_next_coroutine __attribute__((tls_model("initial-exec")));
inline constexpr std::ptrdiff_t kMaxNesting = 64 * 1024;

[[gnu::always_inline]] inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> h) noexcept {
  const char* base = tls_resume_base;
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  // No loop (a coroutine of another library awaiting a vitte::task on its own thread):
  // nobody would pick the slot up, so transfer directly.
  if (base == nullptr || base - sp < kMaxNesting) [[likely]]
    return h;
  tls_next_coroutine = h.address();
  return std::noop_coroutine();
}
using Transfer = std::coroutine_handle<>;  // what await_suspend returns
inline std::coroutine_handle<> stay_suspended() noexcept { return std::noop_coroutine(); }
inline std::coroutine_handle<> continue_self(std::coroutine_handle<> h) noexcept { return h; }

// Resumes `h` and every coroutine a deep hand-off left in the slot.
inline void run_coroutine(std::coroutine_handle<> h) noexcept {
  char* const outer = tls_resume_base;
  tls_resume_base = static_cast<char*>(__builtin_frame_address(0));
  for (;;) {
    h.resume();
    void* next = std::exchange(tls_next_coroutine, nullptr);
    if (next == nullptr) break;
    h = std::coroutine_handle<>::from_address(next);
  }
  tls_resume_base = outer;
}

class SchedulerCore;

// The closure of a resumption frame. A coroutine keeps its own errors in its promise, so
// resuming never throws.
struct ResumeFn {
  std::coroutine_handle<> h;
  void operator()() const noexcept { run_coroutine(h); }
};

// Queues `h.resume()` on `core`'s workers, to run in isolation region `region` (the one
// the coroutine was suspended in; 0: none). node < 0: the calling worker's node (the
// caller's home node on other threads). Never refused, also during shutdown: a coroutine
// that was suspended must be resumed to free its frame.
// `opts`: the coroutine's options (PromiseBase::options; null: none), which route the
// resumption (a node they name beats `node`); the coroutine, suspended, keeps them alive.
void resume_later(SchedulerCore* core, std::coroutine_handle<> h, Lane lane, int node, std::uint64_t region,
                  const BoundOptions* opts = nullptr);

}  // namespace vitte::detail

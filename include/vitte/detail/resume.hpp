// Resumption: how a suspended coroutine (or any continuation) gets back onto the workers.
//
// Every suspension point of the async model ends in one call: resume_later(core, h, lane,
// node) packs `h.resume()` into an ordinary TaskFrame and queues it. Nothing else decides
// where continuations run, so a policy, a trace or a deterministic mode has one seam to
// reach them all.
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
// Accounting: resumption frames are not tasks of any group. Their completion is
// reported to a counter nobody waits on (the pushing worker's `untracked` one, or the
// core's for other threads); the coroutine itself is counted where it started (its root
// is a detached task of the scheduler, see coro.hpp).
#pragma once

#include <coroutine>

namespace vitte::detail {

class SchedulerCore;

enum class Lane : unsigned char { Local, Fifo, Urgent };

// The closure of a resumption frame. A coroutine keeps its own errors in its promise, so
// resuming never throws.
struct ResumeFn {
  std::coroutine_handle<> h;
  void operator()() const noexcept { h.resume(); }
};

// Queues `h.resume()` on `core`'s workers. node < 0: the calling worker's node (the
// caller's home node on other threads). Never refused, also during shutdown: a coroutine
// that was suspended must be resumed to free its frame.
void resume_later(SchedulerCore* core, std::coroutine_handle<> h, Lane lane, int node = -1);

}  // namespace vitte::detail

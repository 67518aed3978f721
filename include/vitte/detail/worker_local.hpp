// The part of a worker that inline code (TaskGroup::run, vitte::spawn) touches: its
// deque, its frame pool, its counters, and the scheduler's idle-state word that decides
// whether a spawn must wake a sleeper. The rest of the worker lives in src/worker/.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "vitte/detail/coro_frame_pool.hpp"
#include "vitte/detail/counters.hpp"
#include "vitte/detail/frame_pool.hpp"
#include "vitte/detail/liveness.hpp"
#include "vitte/detail/waiter.hpp"
#include "vitte/detail/ws_deque.hpp"

namespace vitte {
class Scheduler;
}

namespace vitte::detail {

class SchedulerCore;  // src/scheduler_core.hpp
SchedulerCore* core_of(Scheduler& s) noexcept;
// Queues a frame from a thread that is not one of `core`'s workers (node < 0: the
// caller's node).
// A closure boxed on a thread that is not a worker, for `core`'s metrics (total.boxed).
void note_external_boxed(SchedulerCore* core) noexcept;
// `live`: core's liveness token; a destroyed scheduler is refused (UsageError naming `what`)
// without touching it.
void submit_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f, int node, const char* what);

// Counts that producers read on every spawn. They change only when workers fall asleep
// or wake, so the cache line is read-mostly and the check costs an L1 hit.
struct alignas(kCacheLine) IdleState {
  std::atomic<std::int32_t> sleepers{0};   // workers parked and waiting for work
  std::atomic<std::int32_t> searching{0};  // workers awake and looking for work
};

struct alignas(kCacheLine) WorkerLocal {
  WsDeque<TaskFrame*> deque;
  FramePool pool;
  WorkerCounters counters;
  Waiter waiter;
  SchedulerCore* core = nullptr;
  std::uint64_t core_live = 0;      // core's liveness token (liveness.hpp)
  IdleState* idle = nullptr;
  WaitCounter* detached = nullptr;  // the scheduler's counter for submit()/spawn()
  // Reported to by frames that belong to no group (coroutine resumptions, resume.hpp);
  // nobody waits on it. Owned by this worker, so a resumption it pushes and runs itself
  // costs no atomic; one stolen costs the thief one CAS here.
  WaitCounter untracked{Joins::Detached, this};
  std::uint32_t index = 0;          // worker index in the plan
  std::uint32_t node = 0;           // logical NUMA node index
  CoroFramePool coro_frames;  // frames of vitte::task coroutines (coro_frame_pool.hpp)
  // The isolation region of the task (or vitte::isolate call) running now; 0: none.
  // Stamped on every frame this worker packs; while it is set, a wait on this worker
  // runs only tasks of the same region (Worker::help_wait).
  std::uint64_t isolation = 0;
  // Inside a stop callback that resumes a coroutine (Interruptible): a deterministic run
  // takes no turn at that spawn, since the thread that asked to stop waits in
  // ~stop_callback for the callback to return, and would wait for the turn forever.
  bool in_stop_callback = false;
};

// The worker running on this thread, or null on threads that are not workers.
// constinit + initial-exec: a plain %fs-relative load, no TLS wrapper call.
extern constinit thread_local WorkerLocal* tls_worker __attribute__((tls_model("initial-exec")));

// Slow path of push_local(): a sleeper exists and nobody is searching.
void wake_for_spawn(WorkerLocal* w) noexcept;

// Pushes a frame onto the calling worker's own deque.
//
// Wake-up policy: wake a sleeper only when one exists and no worker is already searching
// (a searcher will find the work). The check is deliberately not fenced after the push:
// in the rare race with a worker that is falling asleep at this instant the wake-up can
// be missed, but the task is never lost, because it sits in this worker's own deque and
// this worker drains it. Parallelism is delayed, never correctness (docs/design.md).
[[gnu::always_inline]] inline void push_local(WorkerLocal* w, TaskFrame* f) {
  w->deque.push(f);
  w->counters.spawned.bump();
  // relaxed: a heuristic read of a read-mostly line (see above).
  if (w->idle->sleepers.load(std::memory_order_relaxed) > 0 &&
      w->idle->searching.load(std::memory_order_relaxed) == 0) [[unlikely]]
    wake_for_spawn(w);
}

// `core`'s liveness token (liveness.hpp): read from the calling worker when it is one of
// core's (no call), else from the scheduler, which must be alive.
inline std::uint64_t live_of(const SchedulerCore* core) noexcept {
  const WorkerLocal* w = tls_worker;
  return w != nullptr && w->core == core ? w->core_live : live_token(core);
}

// Allocates a frame (from w's pool, or the heap when w is null) and places `fn` in it.
// Nothing leaks if the closure's constructor throws.
template <class F>
TaskFrame* pack(WorkerLocal* w, F&& fn) {
  TaskFrame* f = w != nullptr ? w->pool.get() : new_frame();
  try {
    construct_closure(f, std::forward<F>(fn));
  } catch (...) {
    w != nullptr ? w->pool.put(f) : delete_frame(f);
    throw;
  }
  f->isolation = w != nullptr ? w->isolation : 0;
  f->joins = nullptr;  // was the pool's free-list link
  if constexpr (!kFitsInline<std::decay_t<F>>) {
    if (w != nullptr) w->counters.boxed.bump();
  }
  return f;
}

[[gnu::always_inline]] inline void* coro_frame_alloc(std::size_t n) {
  WorkerLocal* w = tls_worker;
  return w != nullptr ? w->coro_frames.allocate(n) : ::operator new(CoroFramePool::block_size(n));
}
[[gnu::always_inline]] inline void coro_frame_free(void* p, std::size_t n) noexcept {
  WorkerLocal* w = tls_worker;
  if (w != nullptr)
    w->coro_frames.free(p, n);
  else
    ::operator delete(p);
}

inline void free_frame(TaskFrame* f) noexcept {
  WorkerLocal* w = tls_worker;
  if (w != nullptr)
    w->pool.put(f);
  else
    delete_frame(f);
}

// Waits until `c`, a counter of `core`'s work (null: not known), finishes: a worker runs
// other tasks meanwhile, any other thread blocks. A deterministic scheduler's work is waited
// on in its run (UsageError from any other thread, which nothing would wake), a real
// scheduler's never in a deterministic run's, even from one of its threads.
void wait_for(WaitCounter& c, SchedulerCore* core);
// The same where nothing may be thrown (destructors, noexcept paths): a deterministic run
// that deadlocks there is abandoned (SchedulerCore::abandon) and the wait returns unfinished;
// a wait from outside a run's threads aborts, naming it.
void wait_for_noexcept(WaitCounter& c, SchedulerCore* core) noexcept;
// Gives up `core`'s deterministic run after a Deadlock that the caller's stack cannot
// survive (sync_wait's coroutine frame); see SchedulerCore::abandon.
void abandon_run(SchedulerCore* core) noexcept;

}  // namespace vitte::detail

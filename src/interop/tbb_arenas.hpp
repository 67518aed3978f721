// The Scheduler's oneTBB arenas (private; see vitte/tbb_interop.hpp).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "vitte/tbb_interop.hpp"

#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

namespace vitte::detail {

class SchedulerCore;

// The fallback placement: an observer that binds each oneTBB worker thread entering `a` to
// `cpus` (Linux CPU numbers) and gives it its previous mask back when it leaves. The thread
// that called execute() is left as it is. Observing starts at once; destroy it before `a`.
std::unique_ptr<tbb::task_scheduler_observer> bind_workers_entering(tbb::task_arena& a, const std::vector<unsigned>& cpus);

class TbbArenas {
 public:
  explicit TbbArenas(SchedulerCore& core);
  ~TbbArenas();
  // The arena of an arena node, made on first call.
  tbb::task_arena& arena(unsigned node);
  TbbArenaSpec spec(unsigned node) const;
  // Destroys every arena made so far (their observers first). Idempotent.
  void destroy() noexcept;

 private:
  struct NodeArena;
  SchedulerCore& core_;
  std::vector<std::unique_ptr<NodeArena>> nodes_;
  std::atomic<bool> destroyed_{false};  // set by destroy() (shutdown), read by arena()
};

}  // namespace vitte::detail

// The deterministic driver of the worker loop: one search (and the task it found) per turn.
// What a real worker decides by timing (when to look again, when to sleep, who wakes) is
// the chooser's (DetSim). Statistics of idleness are not kept: a virtual worker is never
// idle in real time.
#include "deterministic/det_worker.hpp"

#include "deterministic/sim.hpp"
#include "scheduler_core.hpp"
#include "worker/loop.hpp"

namespace vitte::detail {

namespace {

struct Turns {
  DetSim& d;

  // A task ran: a turn that made progress, or one that only handed its work to another
  // node (Worker::handed_back), which must not win this worker the next turn.
  void ran(Worker& w, const WaitCounter* waiting) {
    if (const int to = w.take_handed_back(); to >= 0)
      d.turn_handed_back(w.index, static_cast<unsigned>(to), waiting);
    else
      d.turn(w.index, /*ran=*/true);
  }

  // A worker that keeps finding nothing gains the patience to look at other nodes, as a
  // spinning real one does, counted in turns instead of time.
  void found_nothing(Worker& w, Worker::Rounds& r, WaitCounter* waiting, bool /*isolated*/) {
    if (r.failed < Worker::kRemoteInjectPatience) ++r.failed;
    if (waiting != nullptr)
      d.turn_waiting(w.index, *waiting);
    else
      d.turn(w.index, /*ran=*/false);
  }
};

}  // namespace

void run_deterministic(Worker& w) {
  SchedulerCore& core = *w.core;
  DetSim& d = *core.det;
  d.attach_worker(w.index);
  w.watch(Worker::kWatchDet, true);  // each task charges the virtual clock (Worker::run_watched)
  core.started.count_down();
  core.go.wait();
  if (core.start_aborted) return;
  const WorkerInfo info{w.index, w.node, -1};
  d.enter(w.index);
  core.run_hook(core.opts.on_worker_start, info, "on_worker_start");
  w.stats.started_ns.store(now_ns(), std::memory_order_relaxed);
  w.stats.state.store(WorkerState::Running, std::memory_order_relaxed);
  w.loop(UntilStopped{}, Turns{d});
  core.run_hook(core.opts.on_worker_stop, info, "on_worker_stop");
  w.stats.stopped_ns.store(now_ns(), std::memory_order_relaxed);
  w.stats.state.store(WorkerState::Stopped, std::memory_order_release);
  d.leave(w.index);
}

void help_wait_deterministic(Worker& w, WaitCounter& c) { w.loop(UntilDone{c}, Turns{*w.core->det}); }

}  // namespace vitte::detail

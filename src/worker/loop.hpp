// The one scheduling loop of a worker: find work, run it, and when a round finds nothing
// let the driver take its idle step; until the goal is met.
//
// Goals (what the loop waits for):
//   UntilStopped  the worker's own loop: until shutdown has begun and no queue holds work.
//   UntilDone     a wait inside a task: until its counter finishes. Inside an isolation
//                 region the search takes only the region's work (find_work_isolated).
// Drivers (what time means):
//   Parks         real runs: nothing after a task; the idle step spins, then parks
//                 (Worker::rest, worker/parking.cpp).
//   Turns         a deterministic run (deterministic/det_worker.hpp): every task and every
//                 empty round ends the worker's turn (DetSim).
// The search, the run and the park are the same code in both; a driver adds no branch to
// them. Include only where a loop is instantiated (worker.cpp, waiting.cpp,
// deterministic/det_worker.cpp): it brings the hot path's inline definitions.
#pragma once

#include "worker/hot_path.hpp"

namespace vitte::detail {

struct UntilStopped {
  static constexpr bool kWaits = false;
  WaitCounter* counter() const noexcept { return nullptr; }
};

struct UntilDone {
  static constexpr bool kWaits = true;
  WaitCounter& c;
  WaitCounter* counter() const noexcept { return &c; }
};

// Real runs' driver.
struct Parks {
  void ran(Worker&, const WaitCounter*) noexcept {}
  void found_nothing(Worker& w, Worker::Rounds& r, WaitCounter* c, bool isolated) { w.rest(r, c, isolated); }
};

template <class Goal, class Driver>
void Worker::loop(Goal goal, Driver driver) {
  WaitCounter* const c = goal.counter();
  const bool isolated = Goal::kWaits && isolation != 0;
  Rounds r;
  for (;;) {
    if constexpr (Goal::kWaits) {
      if (c->finished()) break;
      if (r.armed && c->notified()) {  // the count reached zero and rose again: re-arm later
        c->disarm();
        r.armed = false;
      }
    }
    TaskFrame* f;
    if constexpr (Goal::kWaits)
      f = isolated ? find_work_isolated(*c, r.failed) : find_work(r.failed);
    else
      f = find_work(r.failed);
    if (f != nullptr) {
      if (searching_) found_work();
      r.failed = 0;
      run_task(f);
      driver.ran(*this, c);
      continue;
    }
    if constexpr (!Goal::kWaits) {
      if (drained()) break;
    }
    driver.found_nothing(*this, r, c, isolated);
  }
  leave_search();
  idle_end();
  if (r.armed) c->disarm();
}

}  // namespace vitte::detail

// Waits: a worker's wait inside a task (the loop, until a counter finishes), its search
// inside an isolation region, and wait_for(), which picks how the calling thread waits
// (a worker helps, another thread blocks, a deterministic run takes turns).
#include <cstdio>
#include <exception>
#include <string>

#include "deterministic/det_worker.hpp"
#include "deterministic/sim.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/future_core.hpp"
#include "vitte/detail/route.hpp"
#include "worker/loop.hpp"

namespace vitte::detail {

// Inside an isolation region (vitte::isolate) a waiting worker runs only tasks of that
// region and tasks of the group or future it waits for, or of a future that one depends on
// (a then() link's source, a when_all's input: feeds_into); those it runs inside the region.
// Every foreign task it comes across is handed to its node's injection queue, where
// another worker (or this one, after the wait) takes it:
//   - its own deque, drained from the bottom: the region's work usually lies on top, but a
//     task the wait needs can sit below foreign work (a group made before the region, a
//     detached spawn from a nested region), and a deque is only reachable from its ends;
//   - its node's urgent lane and injection queue, each scanned once through (foreign frames
//     go back to its tail), so a task the wait needs is found behind any number of foreign
//     ones;
//   - one steal round, as usual.
// Its sleep then ignores visible work: all of it near this worker is foreign, and a new
// injection or the group's notifier wakes it (Worker::park).
bool Worker::belongs(TaskFrame* f, const WaitCounter& c) noexcept {
  if (f->isolation == isolation) return true;
  if (f->counter != &c && !feeds_into(f->joins, c, isolation)) return false;
  f->isolation = isolation;  // we own the frame now; it runs inside our region
  return true;
}

std::size_t Worker::queued_on_node() const { return own_inject_->size_hint() + own_urgent_->size_hint(); }

TaskFrame* Worker::find_work_isolated(WaitCounter& c, unsigned failed_rounds) {
  // What the node's queues hold once this scan is over, had nobody else pushed or popped
  // meanwhile: the sleep that may follow compares against it (isolated_seen_, park).
  std::int64_t expect = static_cast<std::int64_t>(queued_on_node());
  const Route requeue{.lane = Lane::Fifo, .source = Source::Requeue, .node = static_cast<int>(node)};
  const Route requeue_urgent{.lane = Lane::Urgent, .source = Source::Requeue, .node = static_cast<int>(node)};
  auto back_to_node = [&](TaskFrame* f) {
    route_slow(&core_, this, f, requeue);
    ++expect;
  };
  while (TaskFrame* f = deque.pop()) {
    if (belongs(f, c)) return f;
    back_to_node(f);
  }
  // The urgent lane holds resumptions of sleeps in the region (resume.hpp): scanned once
  // through like the injection queue, foreign frames back to its tail, urgent still.
  for (std::size_t n = own_urgent_->size_hint() + 1; n > 0; --n) {
    TaskFrame* f = own_urgent_->try_pop();
    if (f == nullptr) break;
    if (belongs(f, c)) {
      counters.injected_taken.bump();
      return f;
    }
    route_slow(&core_, this, f, requeue_urgent);  // popped and pushed back: expect unchanged
  }
  for (std::size_t n = own_inject_->size_hint() + 1; n > 0; --n) {
    TaskFrame* f = own_inject_->try_pop();
    if (f == nullptr) break;
    if (belongs(f, c)) return f;
    route_slow(&core_, this, f, requeue);  // back to the tail; expect unchanged
  }
  // Its own policy work, on any node (a group's options may name another node): found by
  // matching, so foreign entries keep their place for the other workers.
  for (unsigned n : core_.arena_nodes) {
    ReadyQueue* q = core_.ready_queues[n].get();
    Entry e;
    if (!q->empty() && q->take_if([&](TaskFrame* t) { return belongs(t, c); }, &e)) return took_ready(q, e);
  }
  TaskFrame* f = steal(failed_rounds, /*policy=*/false);
  if (f != nullptr && belongs(f, c)) return f;
  if (f != nullptr) back_to_node(f);
  isolated_seen_ = expect > 0 ? static_cast<std::size_t>(expect) : 0;
  return nullptr;
}

void Worker::help_wait(WaitCounter& c) { loop(UntilDone{c}, Parks{}); }

std::uint64_t new_isolation_tag() noexcept {
  static std::atomic<std::uint64_t> last{0};
  // relaxed: only uniqueness matters, which the RMW gives.
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

namespace {
// wait_for(c, core) where a deterministic run is involved: off the path real waits take.
[[gnu::cold, gnu::noinline]] void wait_for_det(WaitCounter& c, SchedulerCore* core) {
  DetSim* const d = det_of_this_thread();
  if (core != nullptr && core->abandoned) throw Deadlock(core->abandoned_why);
  if (core != nullptr && core->det != nullptr) {
    if (d != core->det.get())
      throw UsageError("a deterministic scheduler (seed " + std::to_string(core->det->seed()) +
                       ") is waited on from a thread outside its run: only the thread that made it (its driver) and "
                       "its own tasks may wait on its work, since only they take its turns");
    d->wait(c);
  } else if (core != nullptr) {
    block_wait(c);  // a real scheduler's work, from a thread of a run: its own workers finish it
  } else {
    d->wait(c);  // whose work is not known: this thread's run
  }
}
}  // namespace

void wait_for(WaitCounter& c, SchedulerCore* core) {
  if (c.finished()) return;
  // Real runs: one thread-local load and one load of core->det before helping or blocking.
  if (det_of_this_thread() == nullptr && (core == nullptr || core->det == nullptr)) [[likely]] {
    if (Worker* w = this_worker())
      w->help_wait(c);
    else
      block_wait(c);
    return;
  }
  wait_for_det(c, core);
}

void wait_for_noexcept(WaitCounter& c, SchedulerCore* core) noexcept {
  try {
    wait_for(c, core);
  } catch (const Deadlock& d) {
    if (core != nullptr) core->abandon(d.what());  // returns unfinished: nothing runs again
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitte: %s (in a wait that cannot throw). Aborting.\n", e.what());
    std::abort();
  }
}

void abandon_run(SchedulerCore* core) noexcept {
  if (core != nullptr && core->det != nullptr)
    core->abandon(core->abandoned ? core->abandoned_why : core->det->deadlock_message());
}

}  // namespace vitte::detail

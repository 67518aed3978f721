// resume_later(): how a suspended coroutine gets back onto the workers (resume.hpp), through
// the one route (route.hpp).
#include "vitte/detail/resume.hpp"

#include "scheduler_core.hpp"
#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/worker_local.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

constinit thread_local char* tls_resume_base = nullptr;
constinit thread_local void* tls_next_coroutine = nullptr;

namespace {

// A resumption queued on a node's injection queue. A worker of another node may take it
// there (remote stealing takes injected work after a while); it hands it back to its
// node instead of running it, as a graph task placed with on_node() does, so a coroutine
// resumes on a worker of the node it asked for (schedule_on) or was on (yield).
struct NodeResume {
  std::coroutine_handle<> h;
  unsigned node;  // an arena node
  const BoundOptions* opts;  // the coroutine's, kept alive by it while it is suspended
  void operator()() const noexcept {
    WorkerLocal* w = tls_worker;
    if (w->node != node) {
      // This worker runs the frame inside its region (Worker::execute), so that is the
      // region the coroutine was suspended in.
      resume_later(w->core, h, Lane::Fifo, static_cast<int>(node), w->isolation, opts);
      this_worker()->handed_back(node);
      return;
    }
    run_coroutine(h);
  }
};

// Queues `fn` on `core`'s workers, from a worker of `core` (w) or any other thread (null).
template <class Fn>
TaskFrame* frame_for(SchedulerCore* core, WorkerLocal* w, Fn fn, std::uint64_t region) {
  TaskFrame* f = pack(w, fn);
  f->isolation = region;
  WaitCounter& c = w != nullptr ? w->untracked : core->untracked;
  f->counter = &c;
  c.add(w);
  return f;
}

}  // namespace

void resume_later(SchedulerCore* core, std::coroutine_handle<> h, Lane lane, int node, std::uint64_t region,
                  const BoundOptions* opts) {
  WorkerLocal* w = own_worker(core);  // another scheduler's worker: as any other thread
  if (opts != nullptr && opts->node >= 0) node = opts->node;
  if (opts != nullptr && opts->policy()) {  // its group's level, wherever it was suspended
    route(core, w, frame_for(core, w, ResumeFn{h}, region),
          Route{.opts = opts, .lane = lane, .source = Source::Resumption, .node = node});
    return;
  }
  if (lane == Lane::Urgent) {
    route(core, w, frame_for(core, w, ResumeFn{h}, region),
          Route{.opts = opts, .lane = Lane::Urgent, .source = Source::Resumption, .node = node});
    return;
  }
  const unsigned target = w != nullptr && node < 0 ? w->node : core->arena_for(node);
  if (lane == Lane::Local && w != nullptr && target == w->node) {
    route(core, w, frame_for(core, w, ResumeFn{h}, region), Route{.opts = opts});
    return;
  }
  route(core, w, frame_for(core, w, NodeResume{h, target, opts}, region),
        Route{.opts = opts, .lane = Lane::Fifo, .source = Source::Resumption, .node = static_cast<int>(target)});
}

}  // namespace vitte::detail

// Continuations queued by threads that are not the scheduler's workers (future.hpp). The
// route admits them (src/intake/route.cpp, Source::Continuation): accepted until shutdown()
// has drained, then refused. A worker of the scheduler queues its continuations inline and
// never comes here: it only runs while detached work is pending, so shutdown has not
// drained.
//
// A refused frame is destroyed unrun on this thread: its closure fails the future it
// would have completed (BrokenPromise), which may refuse the next link of a chain, and so
// on. Refusals met while one is being handled are put on a thread-local list (linked
// through the frames' free-list field) and handled by the outermost call, so a refused
// chain of any length costs constant stack.
#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/future.hpp"

namespace vitte::detail {

namespace {

thread_local TaskFrame* refused_head = nullptr;
thread_local bool refusing = false;

void refuse(TaskFrame* f) noexcept {
  f->next = refused_head;
  refused_head = f;
  if (refusing) return;  // the outermost call below handles it
  refusing = true;
  while (TaskFrame* g = refused_head) {
    refused_head = g->next;
    g->op(g, FrameOp::Discard);  // may refuse more frames: they join the list
    delete_frame(g);
  }
  refusing = false;
}

}  // namespace

void queue_continuation_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f,
                                 const BoundOptions* opts) noexcept {
  // A destroyed scheduler (asked without touching it), or a fork() child: the workers do
  // not exist.
  if (!alive(live) || core->inherited()) {
    refuse(f);
    return;
  }
  f->counter = &core->detached;
  core->detached.add(nullptr);  // before the push that publishes the frame
  // Never bounded; std::bad_alloc inside ends the process (noexcept).
  if (!route(core, nullptr, f, Route{.opts = opts, .lane = Lane::Fifo, .source = Source::Continuation})) {
    core->detached.done(nullptr);  // refused: shutdown has drained (route.cpp)
    refuse(f);
  }
}

}  // namespace vitte::detail

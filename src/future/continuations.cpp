// Continuations queued by threads that are not the scheduler's workers (future.hpp), and
// the one place they can be refused: after shutdown() has drained.
//
// Handshake with SchedulerCore::shutdown() (the same Dekker pattern as begin_external):
//   queue:    continuations_in_flight += 1 (seq_cst); read continuations_open (seq_cst);
//             if open: count the frame as detached, inject it; in_flight -= 1 (release).
//   shutdown: drain (wait for detached); continuations_open = false (seq_cst); wait until
//             in_flight == 0 (seq_cst); drain again.
// Either the queuer sees the close (and refuses), or shutdown sees it in flight and waits
// for its push, whose frame the second drain then runs. A worker of the scheduler queues
// its continuations inline and never comes here: it only runs while detached work is
// pending, so shutdown has not drained.
//
// A refused frame is destroyed unrun on this thread: its closure fails the future it
// would have completed (BrokenPromise), which may refuse the next link of a chain, and so
// on. Refusals met while one is being handled are put on a thread-local list (linked
// through the frames' free-list field) and handled by the outermost call, so a refused
// chain of any length costs constant stack.
#include "scheduler_core.hpp"
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

void queue_continuation_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f) noexcept {
  // A destroyed scheduler (asked without touching it), or a fork() child: the workers do
  // not exist.
  if (!alive(live) || core->inherited()) {
    refuse(f);
    return;
  }
  // seq_cst RMW then seq_cst load: our half of the handshake (file comment).
  core->continuations_in_flight.fetch_add(1, std::memory_order_seq_cst);
  if (!core->continuations_open.load(std::memory_order_seq_cst)) {
    core->continuations_in_flight.fetch_sub(1, std::memory_order_release);
    refuse(f);
    return;
  }
  f->counter = &core->detached;
  core->detached.add(nullptr);  // before the push that publishes the frame
  core->inject(f, -1);          // never bounded; std::bad_alloc inside ends the process
  // release: our push happens-before shutdown's acquire load that sees the count drop.
  core->continuations_in_flight.fetch_sub(1, std::memory_order_release);
}

}  // namespace vitte::detail

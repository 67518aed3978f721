// Named work: see wrap.hpp.
#include "intake/wrap.hpp"

#include <new>

#include "policy/group_node.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

namespace {

struct Named {
  TaskFrame* inner;
  TaskName* name;
};

Named& named_of(TaskFrame* f) noexcept { return *std::launder(reinterpret_cast<Named*>(f->storage)); }

RunEnd named_op(TaskFrame* f, FrameOp op) noexcept {
  const Named x = named_of(f);
  if (op == FrameOp::Run)
    if (Worker* w = this_worker()) w->label_task(x.name->name);
  const RunEnd end = x.inner->op(x.inner, op);  // records its exception in the shared counter
  free_frame(x.inner);
  if (op == FrameOp::Run) {
    // relaxed: statistics (TaskName).
    x.name->runs.fetch_add(1, std::memory_order_relaxed);
    count_named(x.name, end);
  }
  return end;
}

}  // namespace

void count_named(TaskName* name, RunEnd end) noexcept {
  // relaxed: statistics (TaskName).
  if (end == RunEnd::Failed) name->failed.fetch_add(1, std::memory_order_relaxed);
  if (end == RunEnd::Cancelled) name->cancelled.fetch_add(1, std::memory_order_relaxed);
}

TaskFrame* wrap_named(WorkerLocal* w, TaskFrame* inner, TaskName* name) {
  TaskFrame* f = w != nullptr ? w->pool.get() : new_frame();
  ::new (static_cast<void*>(f->storage)) Named{inner, name};
  f->op = &named_op;
  f->counter = inner->counter;
  f->joins = inner->joins;  // an isolated wait recognises the task by its outer frame
  f->isolation = inner->isolation;
  return f;
}

void unwrap_named(WorkerLocal* w, TaskFrame* outer) noexcept {
  w != nullptr ? w->pool.put(outer) : delete_frame(outer);
}

}  // namespace vitte::detail

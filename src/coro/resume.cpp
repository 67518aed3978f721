// resume_later(): the one way a continuation gets back onto the workers (resume.hpp).
#include "vitte/detail/resume.hpp"

#include "scheduler_core.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/worker_local.hpp"

namespace vitte::detail {

constinit thread_local char* tls_resume_base = nullptr;
constinit thread_local void* tls_next_coroutine = nullptr;

void resume_later(SchedulerCore* core, std::coroutine_handle<> h, Lane lane, int node) {
  WorkerLocal* w = tls_worker;
  if (w != nullptr && w->core == core) {
    TaskFrame* f = pack(w, ResumeFn{h});
    f->counter = &w->untracked;
    w->untracked.add(w);
    switch (lane) {
      case Lane::Local:
        if (node < 0 || static_cast<unsigned>(node) == w->node) {
          push_local(w, f);
          return;
        }
        core->inject(f, node);
        return;
      case Lane::Fifo:
        core->inject(f, node < 0 ? static_cast<int>(w->node) : node);
        return;
      case Lane::Urgent:
        core->inject_urgent(f, node < 0 ? static_cast<int>(w->node) : node);
        return;
    }
  }
  TaskFrame* f = pack(nullptr, ResumeFn{h});
  f->counter = &core->untracked;
  core->untracked.add(nullptr);
  if (lane == Lane::Urgent)
    core->inject_urgent(f, node);
  else
    core->inject(f, node);
}

}  // namespace vitte::detail

// How a task's run ended: an error, or a cancellation (docs/errors.md). Only exception
// paths come here; a run that returns costs nothing.
#include "intake/wrap.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void count_end(RunEnd end, TaskName* name) noexcept {
  if (end == RunEnd::Ok) return;
  if (WorkerLocal* w = tls_worker) (end == RunEnd::Cancelled ? w->counters.cancelled : w->counters.failed).bump();
  if (name != nullptr) count_named(name, end);
}

}  // namespace vitte::detail

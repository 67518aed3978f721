// How a task's run ended: an error, or a cancellation (docs/errors.md). Only exception
// paths come here; a run that returns costs nothing.
#include "vitte/detail/wait_counter.hpp"
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

}  // namespace vitte::detail

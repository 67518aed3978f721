// LiveSlot: a scheduler's place in the process-wide liveness table (vitte/detail/liveness.hpp).
#pragma once

#include <cstdint>

namespace vitte::detail {

// Taken when a scheduler is made, given back as the last step of its destruction. Neither
// copied nor moved: the token names this one scheduler.
class LiveSlot {
 public:
  LiveSlot();  // Error when a million schedulers are alive at once
  ~LiveSlot();
  LiveSlot(const LiveSlot&) = delete;
  LiveSlot& operator=(const LiveSlot&) = delete;

  std::uint64_t token() const noexcept { return token_; }

 private:
  std::uint64_t token_;
};

}  // namespace vitte::detail

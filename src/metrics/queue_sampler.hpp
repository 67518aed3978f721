// QueueSampler: samples each arena node's queue depth at a fixed interval, on a thread of
// its own (Options::metrics.sample_interval); a scheduler that does not ask has none.
//
// A node's depth is what waits there: its injection queue, urgent lane and ReadyQueue plus
// its workers' deques, each read as a lock-free size hint (a snapshot that may be off by
// the pushes and pops in flight). The totals are written by the sampler thread under mu_,
// which it holds while it samples, and read under mu_: a snapshot sees whole samples only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "vitte/metrics.hpp"

namespace vitte::detail {

class SchedulerCore;

// Frames queued on arena node `node` now.
std::uint64_t queue_depth_now(const SchedulerCore& core, unsigned node);

class QueueSampler {
 public:
  // Starts sampling every `interval` (> 0).
  QueueSampler(const SchedulerCore& core, std::chrono::nanoseconds interval);
  ~QueueSampler();  // stop()
  QueueSampler(const QueueSampler&) = delete;
  QueueSampler& operator=(const QueueSampler&) = delete;

  // Stops and joins the thread (idempotent).
  void stop() noexcept;
  // node's samples, their sum and maximum (QueueDepth::now is left to the caller).
  QueueDepth read(unsigned node) const;

 private:
  struct Totals {
    std::uint64_t samples = 0, sum = 0, max = 0;
  };
  void run();

  const SchedulerCore& core_;
  const std::chrono::nanoseconds interval_;
  std::unique_ptr<Totals[]> totals_;  // by node id, under mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // under mu_
  std::thread thread_;
};

}  // namespace vitte::detail

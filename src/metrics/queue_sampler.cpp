#include "metrics/queue_sampler.hpp"

#include <pthread.h>

#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "scheduler_core.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

std::uint64_t queue_depth_now(const SchedulerCore& core, unsigned node) {
  std::uint64_t n = core.inject_queues[node]->size_hint() + core.urgent_queues[node]->size_hint();
  const std::int64_t ready = core.ready_queues[node]->size();
  if (ready > 0) n += static_cast<std::uint64_t>(ready);
  for (unsigned w : core.plan.arenas[node]) {
    const std::int64_t d = core.workers[w]->deque.size_hint();
    if (d > 0) n += static_cast<std::uint64_t>(d);
  }
  return n;
}

QueueSampler::QueueSampler(const SchedulerCore& core, std::chrono::nanoseconds interval)
    : core_(core), interval_(interval), totals_(std::make_unique<Totals[]>(core.topo.nodes().size())) {
  thread_ = std::thread([this] { run(); });
}

QueueSampler::~QueueSampler() { stop(); }

void QueueSampler::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void QueueSampler::run() {
  pthread_setname_np(pthread_self(), "vitte-sampler");
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stop_; })) {
    for (unsigned n : core_.arena_nodes) {
      const std::uint64_t d = queue_depth_now(core_, n);
      Totals& t = totals_[n];  // under mu_, held since wait_for returned
      ++t.samples;
      t.sum += d;
      if (d > t.max) t.max = d;
    }
  }
}

QueueDepth QueueSampler::read(unsigned node) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Totals& t = totals_[node];
  QueueDepth q;
  q.samples = t.samples;
  q.sum = t.sum;
  q.max = t.max;
  return q;
}

}  // namespace vitte::detail

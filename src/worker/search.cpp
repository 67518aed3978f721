// A worker's search for work beyond its own deque (the order is in worker.hpp): the urgent
// lane, the node's injection queue and ReadyQueue, the steal levels, nearest first.
#include "worker/hot_path.hpp"

#include "clock/clock.hpp"
#include "scheduler_core.hpp"

namespace vitte::detail {

TaskFrame* Worker::find_work_urgent(unsigned failed_rounds) {
  if (TaskFrame* f = take_urgent()) return f;
  if (own_ready_->has_preferred())
    if (TaskFrame* f = take_ready(own_ready_, /*preferred=*/true, false)) return f;
  return find_own(failed_rounds);
}

TaskFrame* Worker::take_ready(ReadyQueue* q, bool preferred, bool allow_low) {
  Entry e;  // empty: nothing is destroyed under the queue's lock (ReadyQueue R4)
  const bool got = q == own_ready_ ? (preferred ? q->pop_preferred(&e) : q->pop(allow_low, &e)) : q->pop_remote(&e);
  return got ? took_ready(q, e) : nullptr;
}

TaskFrame* Worker::took_ready(ReadyQueue* q, Entry& e) {
  counters.policy_taken.bump();
  if (e.external) stats.submit_latency.record(now_ns() - e.queued_ns);
  more_where_found_ = !q->empty();
  policy_from_ = q;
  policy_entry_ = std::move(e);
  return policy_entry_.frame;
}

// Off the fork-join path: the worker's own deque is empty.
TaskFrame* Worker::find_queued(unsigned failed_rounds) {
  if (!own_urgent_->empty()) [[unlikely]] {  // the hint may lag (UrgentLane U1)
    if (TaskFrame* f = take_urgent()) return f;
  }
  // The node's queued work: the injection queue and the ReadyQueue take turns, so that a
  // stream of one never starves the other.
  ready_first_ = !ready_first_;
  if (ready_first_ && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/false)) return f;
  std::int64_t queued_ns = 0;
  if (TaskFrame* f = own_inject_->try_pop(&queued_ns)) {
    counters.injected_taken.bump();
    if (queued_ns != 0) stats.submit_latency.record(now_ns() - queued_ns);
    crossing_ = false;
    more_where_found_ = !own_inject_->empty();
    return f;
  }
  if (!ready_first_ && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/false)) return f;
  return steal(failed_rounds);
}

TaskFrame* Worker::take_urgent() {
  TaskFrame* f = own_urgent_->try_pop();
  if (f != nullptr) {
    counters.injected_taken.bump();
    more_where_found_ = !own_urgent_->empty() || !own_inject_->empty();
  }
  return f;
}

TaskFrame* Worker::steal(unsigned failed_rounds, bool policy) {
  const bool remote = crossing_ || failed_rounds >= kRemotePatience;
  const bool remote_inject = crossing_ || failed_rounds >= kRemoteInjectPatience;
  bool low_checked = false;
  for (Level& l : levels_) {
    if (l.kind == StealLevel::Kind::Remote && !low_checked) {
      // Nothing to steal on the node: now its Low work (policy.hpp), before other nodes.
      low_checked = true;
      if (policy && !own_ready_->empty())
        if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/true)) return f;
    }
    if (l.kind == StealLevel::Kind::Remote && !remote) break;  // levels are nearest first
    const unsigned n = l.count;
    const unsigned start = n > 1 ? static_cast<unsigned>(next_random() % n) : 0;
    for (unsigned i = 0, k = start; i < n; ++i, k = k + 1 == n ? 0 : k + 1) {
      const unsigned r = l.first + k;  // < 2 * size: first < size, k < count <= size
      Worker* v = all_[l.list[l.base + (r >= l.size ? r - l.size : r)]].get();
      if (TaskFrame* f = v->deque.steal()) {
        stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
        if (tracing()) [[unlikely]] trace_.stolen(v->index, f);
        switch (l.kind) {
          case StealLevel::Kind::SameL3: counters.steals_l3.bump(); break;
          case StealLevel::Kind::SameNode: counters.steals_node.bump(); break;
          case StealLevel::Kind::Remote: counters.steals_remote.bump(); break;
        }
        crossing_ = l.kind == StealLevel::Kind::Remote;
        more_where_found_ = v->deque.size_hint() > 0;
        return f;
      }
    }
    if (l.kind == StealLevel::Kind::Remote && remote_inject) {
      std::int64_t queued_ns = 0;
      for (unsigned node : *l.nodes)
        if (InjectionQueue* q = inject_[node].get(); TaskFrame* f = q->try_pop(&queued_ns)) {
          counters.steals_remote.bump();
          stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
          if (queued_ns != 0) stats.submit_latency.record(now_ns() - queued_ns);
          crossing_ = true;
          more_where_found_ = !q->empty();
          return f;
        }
      for (unsigned node : *l.nodes)
        if (ReadyQueue* q = core_.ready_queues[node].get(); policy && q != nullptr && !q->empty())
          if (TaskFrame* f = take_ready(q, false, false)) {
            counters.steals_remote.bump();
            stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
            crossing_ = true;
            return f;
          }
    }
  }
  if (policy && !low_checked && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/true)) return f;
  counters.failed_steal_rounds.bump();
  if (remote) crossing_ = false;  // nothing anywhere: the episode of helping others is over
  return nullptr;
}

}  // namespace vitte::detail

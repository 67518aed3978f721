// Rank-level stealing, the last level of the steal hierarchy (docs/distributed.md,
// "Stealing across ranks"). Communication thread only.
//
// Thief: a rank whose pool has nothing queued (its workers found nothing on any local
// level to give it) asks one random rank. On an empty reply it asks its lifeline buddies
// one at a time; each that has nothing registers it. Then it waits: the next work it gets
// is a lifeline push or its own spawn. At most one request is out at a time.
// Victim: gives the oldest half of what it has queued, at most steal_batch tasks, and
// never its last one. A rank with registered thieves pushes them work as soon as it has
// two or more tasks queued.
#include <algorithm>

#include "dist/cluster_core.hpp"
#include "dist/messages.hpp"

namespace vitte::dist::detail {
namespace {

std::string one_byte(bool b) {
  Writer w;
  w.put(static_cast<std::uint8_t>(b ? 1 : 0));
  return w.take();
}

}  // namespace

bool ClusterCore::steal_step() {
  if (size == 1) return false;
  if (pool.queued() != 0) {
    if (hunger_ == Hunger::Hungry || hunger_ == Hunger::Lifelined) hunger_ = Hunger::Fed;
    return false;
  }
  if (hunger_ == Hunger::Fed) hunger_ = Hunger::Hungry;
  if (hunger_ != Hunger::Hungry) return false;
  int victim = static_cast<int>(rng_() % static_cast<unsigned>(size - 1));
  if (victim >= rank) ++victim;
  request_steal(victim, false);
  hunger_ = Hunger::WaitRandom;
  lifeline_next_ = 0;
  return true;
}

void ClusterCore::request_steal(int victim, bool lifeline) {
  counters.steal_requests.fetch_add(1, std::memory_order_relaxed);
  sent.fetch_add(1, std::memory_order_relaxed);
  steal_sent_ns_ = now_ns();
  send_now(victim, kStealReq, one_byte(lifeline));
}

void ClusterCore::steal_answered() {
  counters.steal_replies.fetch_add(1, std::memory_order_relaxed);
  counters.steal_reply_ns.fetch_add(static_cast<std::uint64_t>(now_ns() - steal_sent_ns_), std::memory_order_relaxed);
}

void ClusterCore::on_steal_none(int, std::string_view body) {
  Reader r(body);
  (void)r.get<std::uint8_t>();
  r.finish();
  steal_answered();
  if (hunger_ != Hunger::WaitRandom && hunger_ != Hunger::WaitLifeline) return;  // fed meanwhile
  if (pool.queued() != 0) {
    hunger_ = Hunger::Fed;
    return;
  }
  if (lifeline_next_ < lifelines_.size()) {
    request_steal(lifelines_[lifeline_next_++], true);
    hunger_ = Hunger::WaitLifeline;
  } else {
    hunger_ = Hunger::Lifelined;
  }
}

void ClusterCore::on_steal_request(int src, std::string_view body) {
  Reader r(body);
  const bool lifeline = r.get<std::uint8_t>() != 0;
  r.finish();
  const std::size_t give = std::min<std::size_t>(pool.queued() / 2, opts.steal_batch);
  if (give > 0) {
    auto items = pool.take_oldest(give);
    if (!items.empty()) {
      ship(src, false, std::move(items));
      return;
    }
  }
  sent.fetch_add(1, std::memory_order_relaxed);
  send_now(src, kStealNone, one_byte(lifeline));
  if (lifeline) {
    thieves_[static_cast<std::size_t>(src)] = 1;
    thieves_waiting.store(true, std::memory_order_relaxed);
  }
}

bool ClusterCore::give_to_lifelines() {
  if (!thieves_waiting.load(std::memory_order_relaxed)) return false;
  std::size_t waiting = static_cast<std::size_t>(std::count(thieves_.begin(), thieves_.end(), 1));
  const std::size_t queued = pool.queued();
  if (queued < 2) return false;
  bool did = false;
  for (int t = 0; t < size; ++t) {
    if (!thieves_[static_cast<std::size_t>(t)]) continue;
    const std::size_t share = std::max<std::size_t>(1, std::min<std::size_t>(opts.steal_batch, queued / (waiting + 1)));
    auto items = pool.take_oldest(share);
    if (items.empty()) break;
    thieves_[static_cast<std::size_t>(t)] = 0;
    --waiting;
    counters.lifeline_pushes.fetch_add(1, std::memory_order_relaxed);
    ship(t, true, std::move(items));
    did = true;
  }
  if (std::count(thieves_.begin(), thieves_.end(), 1) == 0) thieves_waiting.store(false, std::memory_order_relaxed);
  return did;
}

void ClusterCore::ship(int dest, bool lifeline_push, std::vector<std::unique_ptr<PoolItem>> items) {
  Writer w;
  std::uint32_t n = 0;
  for (auto& it : items) {
    // The arguments first: a user type's save() may throw, and then the task fails here,
    // its promise still its own.
    std::string args;
    try {
      args = it->arguments();
    } catch (...) {
      it->fail(std::current_exception());
      continue;
    }
    int origin = rank;
    const std::uint64_t slot = it->reply_to(this, &origin);
    w.put(it->function());
    w.put(static_cast<std::int32_t>(origin));
    w.put(slot);
    w.put(args);
    ++n;
  }
  items.clear();
  if (n == 0) {  // nothing could be shipped
    if (lifeline_push) {
      thieves_[static_cast<std::size_t>(dest)] = 1;  // still waiting
      thieves_waiting.store(true, std::memory_order_relaxed);
    } else {
      sent.fetch_add(1, std::memory_order_relaxed);
      send_now(dest, kStealNone, one_byte(false));
    }
    return;
  }
  Writer head;
  head.put(static_cast<std::uint8_t>(lifeline_push ? 1 : 0));
  head.put(n);
  counters.tasks_given.fetch_add(n, std::memory_order_relaxed);
  // C1. The items' tokens stay here and keep this rank active until they run empty (C2).
  sent.fetch_add(1, std::memory_order_relaxed);
  send_now(dest, kTasks, head.take() + w.take());
}

}  // namespace vitte::dist::detail

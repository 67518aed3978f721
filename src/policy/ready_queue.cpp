#include "policy/ready_queue.hpp"

#include <algorithm>

#include "policy/group_tree.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"

namespace vitte::detail {

namespace {
constexpr int kLow = static_cast<int>(Priority::Low);
constexpr int kNormal = static_cast<int>(Priority::Normal);
constexpr int kHigh = static_cast<int>(Priority::High);

// std heap functions build a max-heap: "later deadline" is the lesser priority.
bool later(const Entry& a, const Entry& b) noexcept {
  return a.deadline_ns != b.deadline_ns ? a.deadline_ns > b.deadline_ns : a.seq > b.seq;
}
}  // namespace

void ReadyQueue::note_deadline_head() noexcept {
  std::int64_t half = INT64_MAX;
  if (!deadlines_.empty()) {
    const Entry& h = deadlines_.front();
    half = h.queued_ns + (h.deadline_ns - h.queued_ns) / 2;
  }
  // relaxed: a snapshot for sleepers of other nodes (remote_visible).
  deadline_half_.store(half, std::memory_order_relaxed);
}

ReadyQueue::ReadyQueue(GroupTree& tree, unsigned node, UrgentLane& hint, InjectionQueue& backlog,
                       std::chrono::nanoseconds aging)
    : tree_(tree), node_(node), hint_(hint), backlog_(backlog), aging_ns_(aging.count()),
      mu_(tree.node_lock(node)) {}

// R5: a task that waited longer than the aging bound counts as High, but only while the
// node's aging token is free (one promotion per aging interval).
int ReadyQueue::effective(const Entry& e, std::int64_t now) const noexcept {
  const int p = static_cast<int>(e.priority);
  return p != kHigh && now >= next_aged_ns_ && now - e.queued_ns > aging_ns_ ? kHigh : p;
}

void ReadyQueue::charge(GroupNode* g, double ns) {
  g->at(node_).own_vtime += ns;
  for (GroupNode* c = g; c->parent != nullptr; c = c->parent) c->at(node_).vtime += ns / c->weight;
}

void ReadyQueue::push(Entry&& e) {
  std::lock_guard<std::mutex> lock(mu_);
  e.seq = next_seq_++;
  const bool hinted = e.hinted;
  if (e.deadline_ns != 0) {
    deadlines_.push_back(std::move(e));
    std::push_heap(deadlines_.begin(), deadlines_.end(), later);
    note_deadline_head();
  } else {
    if (e.priority != Priority::Low) takeable_.fetch_add(1, std::memory_order_relaxed);
    GroupNode* g = e.group.get();
    GroupNode::Level& own = g->at(node_);
    auto& q = own.own[static_cast<int>(e.priority)];
    // G3: a pseudo-child or child that wakes up starts at its level's floor, so time it
    // did not use while idle is not a credit it can spend in a burst.
    if (own.own_empty()) own.own_vtime = std::max(own.own_vtime, own.floor);
    q.push_back(std::move(e));
    for (GroupNode* c = g; c != nullptr; c = c->parent) {
      GroupNode::Level& l = c->at(node_);
      if (l.queued++ == 0 && c->parent != nullptr) l.vtime = std::max(l.vtime, c->parent->at(node_).floor);
    }
  }
  // relaxed: R1 and R2 are read after fences or as hints.
  size_.fetch_add(1, std::memory_order_relaxed);
  if (hinted) {
    preferred_.fetch_add(1, std::memory_order_relaxed);
    hint_.raise_hint();
  }
}

// The candidate `level` would give, by its policy: its own tasks' head and each child's
// candidate (recursively), compared as the policy says.
bool ReadyQueue::best(GroupNode* level, std::int64_t now, Pick* out, bool skip_low) {
  GroupNode::Level& l = level->at(node_);
  bool have = false;
  Pick b;
  double bv = 0;
  const Policy pol = level->policy;
  auto better = [&](const Pick& c, double v) {
    if (!have) return true;
    switch (pol) {
      case Policy::Fifo: return c.e->seq < b.e->seq;
      case Policy::Lifo: return c.e->seq > b.e->seq;
      case Policy::Priority: return c.eff != b.eff ? c.eff > b.eff : c.e->seq < b.e->seq;
      case Policy::Fair: return v != bv ? v < bv : c.e->seq < b.e->seq;
    }
    return false;
  };
  auto consider = [&](const Pick& c, double v) {
    if (better(c, v)) {
      b = c;
      bv = v;
      have = true;
    }
  };
  if (pol == Policy::Priority) {
    for (int cls = kHigh; cls >= kLow; --cls)
      if (auto& q = l.own[cls]; !q.empty()) {
        Pick c{&q.front(), level, cls, false, 0, now};
        c.eff = effective(*c.e, now);
        if (!(skip_low && c.eff == kLow)) consider(c, 0);
      }
  } else if (auto& q = l.own[kNormal]; !q.empty()) {
    const bool back = pol == Policy::Lifo;
    // Aging is a rule of Priority levels: elsewhere it would reorder nothing, and it would
    // spend the node's aging token (R5) that a Priority level's starving task needs.
    Pick c{back ? &q.back() : &q.front(), level, kNormal, back, kNormal, now};
    consider(c, l.own_vtime);
  }
  for (GroupNode* child : level->children) {
    GroupNode::Level& cl = child->at(node_);
    if (cl.queued == 0) continue;
    Pick c;
    if (best(child, now, &c, skip_low)) consider(c, cl.vtime);
  }
  if (have) *out = b;
  return have;
}

void ReadyQueue::taken(const Entry& e) {
  size_.fetch_sub(1, std::memory_order_relaxed);  // R1
  if (e.deadline_ns == 0 && e.priority != Priority::Low) takeable_.fetch_sub(1, std::memory_order_relaxed);
  if (e.hinted) {
    preferred_.fetch_sub(1, std::memory_order_relaxed);
    hint_.lower_hint();  // R2
  }
}

Entry ReadyQueue::take(const Pick& p) {
  GroupNode* g = p.g;
  GroupNode::Level& own = g->at(node_);
  auto& q = own.own[p.cls];
  Entry e = std::move(p.back ? q.back() : q.front());
  if (p.eff > p.cls) next_aged_ns_ = p.now + aging_ns_;  // R5: the token is spent
  p.back ? q.pop_back() : q.pop_front();  // a moved-from entry holds no level (R4)
  // R3: charge the level's recent duration now, so that workers picking at the same
  // moment spread over the levels instead of all taking the one that is behind.
  own.floor = std::max(own.floor, own.own_vtime);
  for (GroupNode* c = g; c != nullptr; c = c->parent) {
    GroupNode::Level& l = c->at(node_);
    --l.queued;
    if (c->parent != nullptr) c->parent->at(node_).floor = std::max(c->parent->at(node_).floor, l.vtime);
  }
  e.charged_ns = own.est_ns;
  charge(g, e.charged_ns);
  taken(e);
  return e;
}

Entry ReadyQueue::take_deadline() {
  std::pop_heap(deadlines_.begin(), deadlines_.end(), later);
  Entry e = std::move(deadlines_.back());
  deadlines_.pop_back();
  note_deadline_head();
  taken(e);
  return e;
}

// An Entry assigned over under mu_ could drop the last hold on an anonymous group, whose
// unlink takes this node's lock (R4): the caller's old entry goes first, outside it.
void ReadyQueue::release(Entry* out) noexcept { *out = Entry{}; }

void ReadyQueue::unadmit(bool admitted) {
  if (admitted) backlog_.unadmit();
}

bool ReadyQueue::pop_preferred(Entry* out) {
  release(out);  // R4: whatever `out` held lets go of its group before the lock is taken
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!deadlines_.empty()) {
      *out = take_deadline();
    } else {
      Pick p;
      if (!best(tree_.root().get(), now_ns(), &p) || p.eff != kHigh) return false;
      *out = take(p);
    }
  }
  unadmit(out->admitted);
  return true;
}

bool ReadyQueue::pop(bool allow_low, Entry* out) {
  if (empty()) return false;
  release(out);  // R4: whatever `out` held lets go of its group before the lock is taken
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!deadlines_.empty()) {
      *out = take_deadline();
    } else {
      Pick p;
      if (!best(tree_.root().get(), now_ns(), &p, /*skip_low=*/!allow_low)) return false;
      *out = take(p);
    }
  }
  unadmit(out->admitted);
  return true;
}

bool ReadyQueue::pop_remote(Entry* out) {
  if (empty()) return false;
  release(out);  // R4: whatever `out` held lets go of its group before the lock is taken
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::int64_t now = now_ns();
    // Deadline work stays home until half of its window has passed unstarted: then its
    // node evidently cannot meet it in time, and any worker may.
    if (!deadlines_.empty() && now - deadlines_.front().queued_ns >=
                                   (deadlines_.front().deadline_ns - deadlines_.front().queued_ns) / 2) {
      *out = take_deadline();
    } else {
      Pick p;
      if (!best(tree_.root().get(), now, &p, /*skip_low=*/true)) return false;
      *out = take(p);
    }
  }
  unadmit(out->admitted);
  return true;
}

bool ReadyQueue::take_if(const std::function<bool(TaskFrame*)>& match, Entry* out) {
  if (empty()) return false;
  release(out);  // R4: whatever `out` held lets go of its group before the lock is taken
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool found = false;
    for (std::size_t i = 0; i < deadlines_.size() && !found; ++i)
      if (match(deadlines_[i].frame)) {
        *out = std::move(deadlines_[i]);
        deadlines_.erase(deadlines_.begin() + static_cast<std::ptrdiff_t>(i));
        std::make_heap(deadlines_.begin(), deadlines_.end(), later);
        note_deadline_head();
        taken(*out);
        found = true;
      }
    std::vector<GroupNode*> todo{tree_.root().get()};
    while (!found && !todo.empty()) {
      GroupNode* g = todo.back();
      todo.pop_back();
      GroupNode::Level& l = g->at(node_);
      if (l.queued == 0) continue;
      for (int cls = kLow; cls <= kHigh && !found; ++cls)
        for (std::size_t i = 0; i < l.own[cls].size(); ++i)
          if (match(l.own[cls][i].frame)) {
            // Move it to the front and take it from there: take() keeps the counts.
            std::rotate(l.own[cls].begin(), l.own[cls].begin() + static_cast<std::ptrdiff_t>(i),
                        l.own[cls].begin() + static_cast<std::ptrdiff_t>(i) + 1);
            *out = take(Pick{&l.own[cls].front(), g, cls, false, cls, 0});
            found = true;
            break;
          }
      for (GroupNode* c : g->children) todo.push_back(c);
    }
    if (!found) return false;
  }
  unadmit(out->admitted);
  return true;
}

bool ReadyQueue::finish(const Entry& e, std::int64_t ran_ns, std::int64_t end_ns, bool ran) {
  GroupNode* g = e.group.get();
  {
    std::lock_guard<std::mutex> lock(mu_);
    charge(g, static_cast<double>(ran_ns) - e.charged_ns);
    GroupNode::Level& own = g->at(node_);
    if (ran) own.est_ns += (static_cast<double>(ran_ns) - own.est_ns) / 8;  // EWMA, 1/8 per task
  }
  if (!ran) return false;
  const bool missed = e.deadline_ns != 0 && end_ns > e.deadline_ns;
  // relaxed: statistics.
  g->tasks.fetch_add(1, std::memory_order_relaxed);
  g->cpu_ns.fetch_add(static_cast<std::uint64_t>(ran_ns), std::memory_order_relaxed);
  if (e.deadline_ns != 0) {
    (missed ? missed_ : met_).fetch_add(1, std::memory_order_relaxed);
    if (missed) g->deadlines_missed.fetch_add(1, std::memory_order_relaxed);
  }
  return missed;
}

}  // namespace vitte::detail

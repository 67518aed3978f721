// TimerHeap and TimerQueue (src/timer/timer_heap.hpp, timer_queue.hpp) on their own:
// heap order and index (H1, H2) under random operations, equal deadlines in arming order
// (T3), the capacity rule (H3); the queue's manual mode (fire_due, cancel, close, counts
// Q4, a fire() that re-arms), its thread (woken for an earlier deadline, Q2), and a stress
// test that each armed entry is fired, cancelled or dropped exactly once, never early (T2);
// the keeper (Q5): one at a time, the thread still fires what it leaves, and keepers racing
// the thread fire each entry once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "timer/timer_heap.hpp"
#include "timer/timer_queue.hpp"

using vitte::detail::TimerEntry;
using vitte::detail::TimerEvent;
using vitte::detail::TimerHeap;
using vitte::detail::TimerQueue;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const Clock::time_point kT0 = Clock::time_point{} + 1h;

// An entry that records what happened to it.
struct Probe : TimerEntry {
  std::atomic<int> fired{0}, dropped{0};
  std::atomic<bool> early{false};
  std::function<void(Probe&)> on_fire;  // runs inside fire(), without the queue's lock (T2)

  Probe() { fire = &Probe::on_event; }
  static void on_event(TimerEntry* te, TimerEvent ev) noexcept {
    Probe& p = *static_cast<Probe*>(te);
    if (ev == TimerEvent::Dropped) {
      p.dropped.fetch_add(1);
      return;
    }
    if (Clock::now() < te->deadline) p.early.store(true);
    p.fired.fetch_add(1);
    if (p.on_fire) p.on_fire(p);
  }
};

std::vector<std::unique_ptr<Probe>> probes(std::size_t n) {
  std::vector<std::unique_ptr<Probe>> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(std::make_unique<Probe>());
  return v;
}

// Q4 on a queue's counts.
void expect_counts_balance(const TimerQueue& q) {
  const auto c = q.counts();
  EXPECT_EQ(c.armed, c.fired + c.cancelled + c.dropped + q.pending());
}

}  // namespace

// ---- TimerHeap ---------------------------------------------------------------------------

// H1, H2 under a random mix of push, remove-anywhere and pop, against a sorted model:
// check() holds throughout and every pop is the model's least (deadline, seq).
TEST(TimerHeap, RandomOperationsKeepOrderAndIndex) {
  std::mt19937 rng(12345);
  const std::size_t n = 3000;
  std::vector<TimerEntry> e(n);
  TimerHeap h;
  std::set<std::pair<Clock::time_point, std::uint64_t>> model;
  std::vector<std::size_t> in;  // indices of entries in the heap
  std::size_t next = 0;
  for (int step = 0; step < 20'000; ++step) {
    const unsigned op = rng() % 3;
    if (op == 0 && next < n) {
      e[next].deadline = kT0 + std::chrono::microseconds(rng() % 50);  // many ties
      e[next].seq = next;
      h.push(&e[next]);
      model.insert({e[next].deadline, next});
      in.push_back(next++);
    } else if (op == 1 && !in.empty()) {
      const std::size_t k = rng() % in.size();
      TimerEntry& x = e[in[k]];
      h.remove(&x);
      EXPECT_EQ(x.slot, TimerEntry::kNotQueued);
      model.erase({x.deadline, x.seq});
      in[k] = in.back();
      in.pop_back();
    } else if (op == 2 && !h.empty()) {
      TimerEntry* x = h.pop();
      ASSERT_EQ(std::make_pair(x->deadline, x->seq), *model.begin()) << "step " << step;
      EXPECT_EQ(x->slot, TimerEntry::kNotQueued);
      model.erase(model.begin());
      in.erase(std::find(in.begin(), in.end(), static_cast<std::size_t>(x->seq)));
    }
    ASSERT_EQ(h.size(), model.size());
    if (step % 97 == 0) {
      ASSERT_TRUE(h.check()) << "step " << step;
    }
  }
  EXPECT_TRUE(h.check());
}

// T3: equal deadlines fall due in arming (seq) order, whatever order they were pushed in.
TEST(TimerHeap, EqualDeadlinesPopInSeqOrder) {
  std::vector<TimerEntry> e(8);
  TimerHeap h;
  for (std::size_t i : {5, 2, 7, 0, 3, 6, 1, 4}) {
    e[i].deadline = kT0;
    e[i].seq = i;
    h.push(&e[i]);
  }
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ(h.pop()->seq, i);
  EXPECT_TRUE(h.empty());
}

// H3: after every removal, the vector holds more than four slots per entry only within
// kKeepCapacity; draining a burst gives its memory back, and take_all() keeps none.
TEST(TimerHeap, CapacityFollowsThePopulation) {
  const std::size_t n = 16 * TimerHeap::kKeepCapacity;
  std::vector<TimerEntry> e(n);
  TimerHeap h;
  for (std::size_t i = 0; i < n; ++i) {
    e[i].deadline = kT0 + std::chrono::nanoseconds((i * 7919) % n);
    e[i].seq = i;
    h.push(&e[i]);
  }
  const std::size_t full = h.capacity();
  ASSERT_GE(full, n);
  std::size_t violations = 0;
  for (std::size_t i = 0; i < n; ++i) {
    TimerEntry* x = &e[n - 1 - i / 2];  // from the back of the arming order
    if (i % 2 == 0 || x->slot == TimerEntry::kNotQueued)
      h.pop();
    else
      h.remove(x);  // from anywhere in the heap
    if (h.capacity() > TimerHeap::kKeepCapacity && h.size() * 4 <= h.capacity()) ++violations;
    if (h.size() == n / 8) {
      EXPECT_LT(h.capacity(), full) << "shrunk at an eighth";
    }
  }
  EXPECT_EQ(violations, 0u) << "H3: capacity over 4x the size after a removal";
  EXPECT_TRUE(h.empty());
  EXPECT_LE(h.capacity(), TimerHeap::kKeepCapacity);

  for (std::size_t i = 0; i < 100; ++i) h.push(&e[i]);
  const auto all = h.take_all();
  EXPECT_EQ(all.size(), 100u);
  for (TimerEntry* x : all) EXPECT_EQ(x->slot, TimerEntry::kNotQueued);
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.capacity(), 0u);
  h.push(&e[0]);  // usable again
  EXPECT_EQ(h.top(), &e[0]);
}

// ---- TimerQueue, manual (a deterministic run's: no thread) --------------------------------

// fire_due fires what is due at `now`, in (deadline, seq) order, and nothing else; counts
// and next_due follow (Q4).
TEST(TimerQueue, ManualFireDueFiresInDeadlineOrder) {
  TimerQueue q(0, {}, /*manual=*/true);
  auto p = probes(4);
  std::vector<int> order;
  const Clock::duration at[] = {30us, 10us, 20us, 10us};
  for (int i = 0; i < 4; ++i) {
    p[i]->deadline = kT0 + at[i];
    p[i]->on_fire = [&order, i](Probe&) { order.push_back(i); };
    ASSERT_TRUE(q.arm(p[i].get()));
  }
  Clock::time_point next;
  ASSERT_TRUE(q.next_due(&next));
  EXPECT_EQ(next, kT0 + 10us);
  EXPECT_EQ(q.fire_due(kT0 + 15us), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 3})) << "equal deadlines in arming order (T3)";
  ASSERT_TRUE(q.next_due(&next));
  EXPECT_EQ(next, kT0 + 20us);
  EXPECT_EQ(q.fire_due(kT0 + 15us), 0u);
  EXPECT_EQ(q.pending(), 2u);
  expect_counts_balance(q);
  EXPECT_EQ(q.fire_due(kT0 + 20us), 1u) << "a deadline equal to now is due";
  EXPECT_EQ(q.fire_due(kT0 + 1s), 1u);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2, 0}));
  EXPECT_FALSE(q.next_due(&next));
  EXPECT_EQ(q.counts().fired, 4u);
  for (auto& x : p) EXPECT_EQ(x->fired.load(), 1);
  q.close();
}

// cancel: true once for a pending entry, which then never fires; false once it fired or
// was cancelled (T2).
TEST(TimerQueue, CancelTakesOutPendingEntriesOnly) {
  TimerQueue q(0, {}, true);
  auto p = probes(3);
  for (int i = 0; i < 3; ++i) {
    p[i]->deadline = kT0 + std::chrono::microseconds(i);
    ASSERT_TRUE(q.arm(p[i].get()));
  }
  EXPECT_TRUE(q.cancel(p[1].get()));
  EXPECT_FALSE(q.cancel(p[1].get())) << "cancelled twice";
  EXPECT_EQ(p[1]->slot, TimerEntry::kNotQueued);
  EXPECT_EQ(q.fire_due(kT0 + 1s), 2u);
  EXPECT_EQ(p[1]->fired.load(), 0);
  EXPECT_FALSE(q.cancel(p[0].get())) << "already fired";
  const auto c = q.counts();
  EXPECT_EQ(c.armed, 3u);
  EXPECT_EQ(c.cancelled, 1u);
  EXPECT_EQ(c.fired, 2u);
  expect_counts_balance(q);
  q.close();
}

// Q3: close() hands back the pending entries unfired (counted dropped); afterwards arm()
// refuses and counts nothing, and cancel() finds nothing.
TEST(TimerQueue, CloseReturnsPendingEntriesAndRefusesArms) {
  TimerQueue q(0, {}, true);
  auto p = probes(4);
  for (int i = 0; i < 3; ++i) {
    p[i]->deadline = kT0 + std::chrono::microseconds(i);
    ASSERT_TRUE(q.arm(p[i].get()));
  }
  ASSERT_TRUE(q.cancel(p[0].get()));
  auto left = q.close();
  ASSERT_EQ(left.size(), 2u);
  for (TimerEntry* e : left) {
    EXPECT_EQ(e->slot, TimerEntry::kNotQueued);
    EXPECT_TRUE(e == p[1].get() || e == p[2].get());
  }
  EXPECT_FALSE(q.cancel(p[1].get()));
  p[3]->deadline = kT0;
  EXPECT_FALSE(q.arm(p[3].get()));
  EXPECT_EQ(p[3]->slot, TimerEntry::kNotQueued) << "a refused arm queues nothing";
  const auto c = q.counts();
  EXPECT_EQ(c.armed, 3u);
  EXPECT_EQ(c.dropped, 2u);
  EXPECT_EQ(q.pending(), 0u);
  expect_counts_balance(q);
  for (auto& x : p) EXPECT_EQ(x->fired.load(), 0);
}

// H3 through the queue: a burst of timers, cancelled, gives its slots back.
TEST(TimerQueue, CancelledBurstGivesItsMemoryBack) {
  TimerQueue q(0, {}, true);
  std::vector<TimerEntry> e(20 * TimerHeap::kKeepCapacity);
  for (std::size_t i = 0; i < e.size(); ++i) {
    e[i].deadline = kT0 + std::chrono::nanoseconds(i);
    ASSERT_TRUE(q.arm(&e[i]));
  }
  EXPECT_GE(q.capacity(), e.size());
  for (auto& x : e) ASSERT_TRUE(q.cancel(&x));
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_LE(q.capacity(), TimerHeap::kKeepCapacity);
  q.close();
}

// T2: fire() runs without the queue's lock, so it may re-arm its own entry (a periodic
// timer); fire_due fires the re-armed entry again when it is due too.
TEST(TimerQueue, FireMayReArmItsEntry) {
  TimerQueue q(0, {}, true);
  Probe p;
  p.deadline = kT0;
  p.on_fire = [&q](Probe& self) {
    if (self.fired.load() < 5) {
      self.deadline += 10us;
      EXPECT_TRUE(q.arm(&self));
    }
  };
  ASSERT_TRUE(q.arm(&p));
  EXPECT_EQ(q.fire_due(kT0 + 25us), 3u) << "kT0, +10 and +20 are due";
  EXPECT_EQ(q.fire_due(kT0 + 1s), 2u);
  EXPECT_EQ(p.fired.load(), 5);
  EXPECT_EQ(q.counts().armed, 5u);
  q.close();
}

// ---- TimerQueue with its thread -----------------------------------------------------------

// Q2: the thread sleeps until the earliest deadline (an hour away); an entry armed with an
// earlier deadline wakes it, and fires without waiting out the hour. A failure shows as
// the bounded wait below timing out, not as a hang.
TEST(TimerQueue, ThreadIsWokenForAnEarlierDeadline) {
  TimerQueue q(0, {});
  Probe later, now;
  std::mutex mu;
  std::condition_variable cv;
  later.deadline = Clock::now() + 1h;
  now.on_fire = [&](Probe&) {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  };
  ASSERT_TRUE(q.arm(&later));
  now.deadline = Clock::now() + 1ms;
  ASSERT_TRUE(q.arm(&now));
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 60s, [&] { return now.fired.load() == 1; })) << "the thread was not woken";
  }
  EXPECT_FALSE(now.early.load()) << "fired before its deadline";
  EXPECT_EQ(later.fired.load(), 0);
  auto left = q.close();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], &later);
  expect_counts_balance(q);
}

// T2 under concurrency: threads arm entries (most already due, some an hour away) and
// cancel a third of them at once, racing the timer thread. Each entry ends exactly one way
// (fired, cancel() == true, or handed back by close()), none fires early, none of the far
// ones fires, and the counts balance (Q4).
TEST(TimerQueueStress, EachEntryFiresIsCancelledOrIsDroppedExactlyOnce) {
  const std::size_t per = vitte::test::scaled(100'000);
  const unsigned armers = 3;
  const std::size_t total = per * armers;
  TimerQueue q(0, {});
  auto p = probes(total);
  std::vector<std::atomic<int>> cancelled(total);
  std::atomic<std::size_t> settled{0};  // due entries fired or cancelled
  std::size_t due = 0;
  std::mutex mu;
  std::condition_variable cv;
  auto settle = [&] {
    if (settled.fetch_add(1) + 1 == due) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_all();
    }
  };
  const auto start = Clock::now();
  for (std::size_t i = 0; i < total; ++i) {
    const bool far = i % 4 == 3;
    p[i]->deadline = far ? start + 1h : start - std::chrono::microseconds(i % 1000);
    if (!far) {
      ++due;
      p[i]->on_fire = [&](Probe&) { settle(); };
    }
  }
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < armers; ++t)
    ts.emplace_back([&, t] {
      for (std::size_t i = t; i < total; i += armers) {
        EXPECT_TRUE(q.arm(p[i].get()));
        if (i % 3 == 0 && q.cancel(p[i].get())) {
          cancelled[i].fetch_add(1);
          if (i % 4 != 3) settle();
        }
      }
    });
  for (auto& t : ts) t.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 120s, [&] { return settled.load() == due; }))
        << settled.load() << " of " << due << " due entries settled";
  }
  auto left = q.close();
  for (TimerEntry* e : left) static_cast<Probe*>(e)->dropped.fetch_add(1);

  std::size_t wrong = 0, early = 0, far_fired = 0;
  for (std::size_t i = 0; i < total; ++i) {
    const int ends = p[i]->fired.load() + cancelled[i].load() + p[i]->dropped.load();
    wrong += ends != 1;
    early += p[i]->early.load();
    far_fired += i % 4 == 3 && p[i]->fired.load() != 0;
  }
  EXPECT_EQ(wrong, 0u) << "entries fired, cancelled or dropped other than exactly once";
  EXPECT_EQ(early, 0u) << "entries fired before their deadline";
  EXPECT_EQ(far_fired, 0u);
  const auto c = q.counts();
  EXPECT_EQ(c.armed, total);
  EXPECT_EQ(c.fired + c.cancelled + c.dropped, total);
  EXPECT_EQ(q.pending(), 0u);
}

// ---- The keeper (Q5) ---------------------------------------------------------------------

// One keeper at a time, only with an entry pending, never on a manual or closed queue; it
// sleeps until the earliest deadline.
TEST(TimerQueue, OneKeeperAtATimeOnlyWhileSomethingIsPending) {
  TimerQueue q(0, {});
  Clock::time_point until;
  EXPECT_FALSE(q.keep(&until)) << "nothing is pending";
  Probe far, near;
  far.deadline = Clock::now() + 2h;
  near.deadline = Clock::now() + 1h;
  ASSERT_TRUE(q.arm(&far));
  ASSERT_TRUE(q.arm(&near));
  ASSERT_TRUE(q.keep(&until));
  EXPECT_EQ(until, near.deadline);
  Clock::time_point other;
  EXPECT_FALSE(q.keep(&other)) << "a second keeper";
  q.resign(/*timed_out=*/false);
  EXPECT_TRUE(q.keep(&other)) << "the keeper resigned";
  q.resign(/*timed_out=*/true);
  EXPECT_EQ(q.fire_due(Clock::now()), 0u);
  (void)q.close();
  EXPECT_FALSE(q.keep(&until)) << "closed";

  TimerQueue manual(0, {}, /*manual=*/true);
  Probe m;
  m.deadline = kT0;
  ASSERT_TRUE(manual.arm(&m));
  EXPECT_FALSE(manual.keep(&until)) << "a manual queue is fired by its deterministic run";
  (void)manual.close();
}

// A keeper that never fires (its worker stays busy) delays an entry by the backstop at most:
// the thread still fires it. A thread that left the deadline to the keeper for good would
// show as the bounded wait timing out.
TEST(TimerQueue, TheThreadFiresWhatAKeeperLeaves) {
  TimerQueue q(0, {});
  Probe p;
  std::mutex mu;
  std::condition_variable cv;
  p.on_fire = [&](Probe&) {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  };
  p.deadline = Clock::now() + 20ms;
  ASSERT_TRUE(q.arm(&p));
  Clock::time_point until;
  ASSERT_TRUE(q.keep(&until));
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 60s, [&] { return p.fired.load() == 1; })) << "nobody fired the entry";
  }
  EXPECT_FALSE(p.early.load());
  q.resign(/*timed_out=*/true);
  EXPECT_EQ(q.fire_due(Clock::now()), 0u) << "the keeper found it fired already";
  (void)q.close();
  expect_counts_balance(q);
}

// T2 with keepers: two threads take turns as keepers (keep, wait a little, resign by
// timeout, fire_due) while others arm due entries, racing the timer thread. Each entry
// fires exactly once, never early, and the counts balance.
TEST(TimerQueueStress, KeepersAndTheThreadFireEachEntryOnce) {
  const std::size_t total = vitte::test::scaled(60'000);
  TimerQueue q(0, {});
  auto p = probes(total);
  const auto start = Clock::now();
  for (std::size_t i = 0; i < total; ++i) p[i]->deadline = start + std::chrono::microseconds(i % 2000);
  // Out of the heap is not fired yet (a batch fires without the lock, T2): the test waits
  // for the fires themselves.
  std::atomic<std::size_t> fired{0};
  for (auto& e : p) e->on_fire = [&](Probe&) { fired.fetch_add(1); };
  const auto give_up = Clock::now() + 120s;
  std::vector<std::thread> ts;
  for (int k = 0; k < 2; ++k)
    ts.emplace_back([&] {
      while (fired.load() < total && Clock::now() < give_up) {
        Clock::time_point until;
        if (!q.keep(&until)) {
          std::this_thread::yield();
          continue;
        }
        std::this_thread::sleep_until(std::min(until, Clock::now() + 200us));
        q.resign(/*timed_out=*/true);
        (void)q.fire_due(Clock::now());
      }
    });
  for (unsigned t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {
      for (std::size_t i = t; i < total; i += 2) EXPECT_TRUE(q.arm(p[i].get()));
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(fired.load(), total) << "entries left unfired";
  std::size_t wrong = 0, early = 0;
  for (auto& e : p) {
    wrong += e->fired.load() != 1;
    early += e->early.load();
  }
  EXPECT_EQ(wrong, 0u) << "entries fired other than exactly once";
  EXPECT_EQ(early, 0u);
  (void)q.close();
  expect_counts_balance(q);
}

// Q6: entries with one deadline fire in arming order (T3) even when a keeper and the thread
// fire at once: a keeper fires while the thread wakes at its backstop, over 2,000 entries
// whose fire() is slow enough for the two to overlap.
TEST(TimerQueueStress, EqualDeadlinesFireInArmingOrderAcrossFirers) {
  const std::size_t total = vitte::test::scaled(2'000);
  TimerQueue q(0, {});
  auto p = probes(total);
  std::mutex mu;
  std::vector<std::size_t> order;
  const auto when = Clock::now() + 5ms;
  for (std::size_t i = 0; i < total; ++i) {
    p[i]->deadline = when;
    p[i]->on_fire = [&, i](Probe&) {
      const auto until = Clock::now() + 2us;  // long enough for the thread to come in
      while (Clock::now() < until) {
      }
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    };
    ASSERT_TRUE(q.arm(p[i].get()));
  }
  Clock::time_point until;
  ASSERT_TRUE(q.keep(&until));
  std::this_thread::sleep_until(until);
  q.resign(/*timed_out=*/true);
  (void)q.fire_due(Clock::now());
  const auto give_up = Clock::now() + 60s;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (order.size() == total || Clock::now() > give_up) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(order.size(), total);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "two firers interleaved";
  (void)q.close();
}

// A keeper of an entry due at the end of time (a huge sleep saturates to time_point::max):
// the backstop saturates too, no overflow (UBSan checks it in the sanitizer build).
TEST(TimerQueue, AKeeperOfTheEndOfTimeDoesNotOverflow) {
  TimerQueue q(0, {});
  Probe last;
  last.deadline = Clock::time_point::max();
  ASSERT_TRUE(q.arm(&last));
  std::this_thread::sleep_for(1ms);  // the thread waits for it
  Clock::time_point until;
  ASSERT_TRUE(q.keep(&until));
  EXPECT_EQ(until, Clock::time_point::max());
  q.resign(/*timed_out=*/false);
  auto left = q.close();
  EXPECT_EQ(left.size(), 1u);
  EXPECT_EQ(last.fired.load(), 0);
}

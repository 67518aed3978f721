// ParkingLot (src/worker/parking_lot.hpp) on its own: enlist/delist bookkeeping (P1, P2),
// a waker's hand-over to the searching count (P3), which sleeper wake_one() picks (nearest
// node, the caller's CPU, the most recent sleeper), wake_all(), and a stress test of the
// sleep protocol of Worker::park against a producer: no wake-up is lost.
//
// The lot stores Worker pointers and uses only their node, os_cpu() and waiter, so the
// workers here are constructed but never started (their threads do not exist); a real
// scheduler of one worker supplies the SchedulerCore their constructor needs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/scheduler.hpp"
#include "worker/parking_lot.hpp"
#include "worker/worker.hpp"

using vitte::detail::IdleState;
using vitte::detail::ParkingLot;
using vitte::detail::Worker;

namespace {

// `nodes` nodes whose near order is n, then n+1, n+2, ... (wrapping).
std::vector<std::vector<unsigned>> ring_order(unsigned nodes) {
  std::vector<std::vector<unsigned>> order(nodes);
  for (unsigned n = 0; n < nodes; ++n)
    for (unsigned k = 0; k < nodes; ++k) order[n].push_back((n + k) % nodes);
  return order;
}

class Lot {
 public:
  explicit Lot(unsigned nodes) : lot(idle, ring_order(nodes)) {}
  // A worker on `node`, bound to Linux CPU `cpu` (-1: unpinned), never started.
  Worker& worker(unsigned node, int cpu = -1) {
    vitte::WorkerSlot slot;
    slot.index = static_cast<unsigned>(workers_.size());
    slot.node = node;
    slot.os_cpu = cpu;
    workers_.push_back(std::make_unique<Worker>(*vitte::detail::core_of(sched_), slot));
    return *workers_.back();
  }

  vitte::Scheduler sched_{1};
  IdleState idle;
  ParkingLot lot;

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Wakes one sleeper and names the worker that woke (its waiter's epoch moved) by its
// place in `ws`: 'a' for ws[0], 'b' for ws[1]...; '-' when wake_one found nobody.
char woken_by(Lot& l, const std::vector<Worker*>& ws, unsigned near, int cpu = -1) {
  std::vector<std::uint32_t> before;
  for (Worker* w : ws) before.push_back(w->waiter.epoch());
  if (!l.lot.wake_one(near, cpu)) return '-';
  char who = '?';
  int moved = 0;
  for (std::size_t i = 0; i < ws.size(); ++i)
    if (ws[i]->waiter.epoch() != before[i]) {
      who = static_cast<char>('a' + i);
      ++moved;
    }
  EXPECT_EQ(moved, 1) << "wake_one woke " << moved << " workers";
  return who;
}

}  // namespace

// P1, P2: enlist lists a worker once and counts it; delist takes it off again, and a
// second delist finds nothing.
TEST(ParkingLot, EnlistCountsDelistRemoves) {
  Lot l(2);
  Worker& a = l.worker(0);
  Worker& b = l.worker(1);
  l.lot.enlist(&a);
  l.lot.enlist(&b);
  EXPECT_EQ(l.idle.sleepers.load(), 2);
  EXPECT_EQ(l.lot.sleepers_on(0), 1);
  EXPECT_EQ(l.lot.sleepers_on(1), 1);
  EXPECT_TRUE(l.lot.delist(&a));
  EXPECT_FALSE(l.lot.delist(&a));
  EXPECT_EQ(l.idle.sleepers.load(), 1);
  EXPECT_EQ(l.lot.sleepers_on(0), 0);
  EXPECT_TRUE(l.lot.delist(&b));
  EXPECT_EQ(l.idle.sleepers.load(), 0);
  EXPECT_EQ(l.idle.searching.load(), 0) << "delisting oneself is not a wake-up (P3)";
}

// Nobody sleeps: wake_one reports it and changes nothing.
TEST(ParkingLot, WakeOneOnAnEmptyLotReturnsFalse) {
  Lot l(2);
  EXPECT_FALSE(l.lot.wake_one(0));
  EXPECT_FALSE(l.lot.wake_one(1, 3));
  EXPECT_EQ(l.idle.sleepers.load(), 0);
  EXPECT_EQ(l.idle.searching.load(), 0);
}

// P3: the waker takes the sleeper off the list, counts it as searching and bumps its
// waiter; the sleeper learns it was woken from delist() == false.
TEST(ParkingLot, WakeOneHandsTheSleeperToTheSearchers) {
  Lot l(1);
  Worker& a = l.worker(0);
  const std::uint32_t epoch = a.waiter.epoch();
  l.lot.enlist(&a);
  EXPECT_TRUE(l.lot.wake_one(0));
  EXPECT_NE(a.waiter.epoch(), epoch) << "the sleeper's waiter was not woken";
  EXPECT_EQ(l.idle.sleepers.load(), 0);
  EXPECT_EQ(l.idle.searching.load(), 1);
  EXPECT_EQ(l.lot.sleepers_on(0), 0);
  EXPECT_FALSE(l.lot.delist(&a)) << "a woken worker must learn a waker took it";
  // P1: once off the list it may enlist again.
  l.lot.enlist(&a);
  EXPECT_EQ(l.idle.sleepers.load(), 1);
  EXPECT_TRUE(l.lot.delist(&a));
}

// wake_one wakes exactly one of several sleepers, each only once.
TEST(ParkingLot, WakeOneWakesExactlyOne) {
  Lot l(1);
  std::vector<Worker*> ws{&l.worker(0), &l.worker(0), &l.worker(0)};
  for (Worker* w : ws) l.lot.enlist(w);
  std::string order;
  for (int i = 0; i < 3; ++i) {
    const char w = woken_by(l, ws, 0);
    ASSERT_NE(w, '-');
    EXPECT_EQ(order.find(w), std::string::npos) << w << " woken twice";
    order += w;
    EXPECT_EQ(l.idle.sleepers.load(), 2 - i);
    EXPECT_EQ(l.idle.searching.load(), i + 1);
  }
  EXPECT_EQ(woken_by(l, ws, 0), '-');
}

// The sleeper nearest to `near` is woken: its own node first, then the near order.
TEST(ParkingLot, WakeOnePrefersTheNearestNode) {
  Lot l(3);  // near orders: 0 -> {0,1,2}, 1 -> {1,2,0}, 2 -> {2,0,1}
  Worker& a = l.worker(0);
  Worker& b = l.worker(1);
  Worker& c = l.worker(2);
  const std::vector<Worker*> ws{&a, &b, &c};
  for (Worker* w : ws) l.lot.enlist(w);
  EXPECT_EQ(woken_by(l, ws, 1), 'b');
  EXPECT_EQ(woken_by(l, ws, 1), 'c') << "node 1's next nearest is node 2";
  EXPECT_EQ(woken_by(l, ws, 1), 'a');
  EXPECT_EQ(woken_by(l, ws, 1), '-');
}

// Within the node, the sleeper bound to the caller's CPU goes first; without a match the
// most recent sleeper does. The CPU never overrides the node order.
TEST(ParkingLot, WakeOnePrefersTheSleeperOnTheCallersCpu) {
  Lot l(2);
  const std::vector<Worker*> ws{&l.worker(0, 3), &l.worker(0, 5), &l.worker(0, 7), &l.worker(1, 9)};
  for (Worker* w : ws) l.lot.enlist(w);
  EXPECT_EQ(woken_by(l, ws, 0, 42), 'c') << "no match: the most recent sleeper";
  EXPECT_EQ(woken_by(l, ws, 0, 3), 'a') << "the CPU match, though it slept first";
  EXPECT_EQ(woken_by(l, ws, 0, 9), 'b') << "d is on CPU 9, but node 0 still has a sleeper";
  EXPECT_EQ(woken_by(l, ws, 0, 9), 'd');
}

// Without a CPU preference the most recent sleeper goes first (warmest caches).
TEST(ParkingLot, WakeOneTakesTheMostRecentSleeper) {
  Lot l(1);
  Worker& a = l.worker(0);
  Worker& b = l.worker(0);
  Worker& c = l.worker(0);
  const std::vector<Worker*> ws{&a, &b, &c};
  for (Worker* w : ws) l.lot.enlist(w);
  EXPECT_EQ(woken_by(l, ws, 0), 'c');
  EXPECT_EQ(woken_by(l, ws, 0), 'b');
  EXPECT_EQ(woken_by(l, ws, 0), 'a');
}

// delist() and a CPU-preferring wake_one() once removed from the middle of the list by
// swapping the last sleeper into the hole, so a later wake_one(near, -1) took an older
// sleeper than the most recent one the header promises (cache warmth, not correctness:
// P1-P3 held). They now erase in order.
TEST(ParkingLot, WakeOneTakesTheMostRecentSleeperAfterARemovalFromTheMiddle) {
  Lot l(1);
  Worker& a = l.worker(0, 3);
  Worker& b = l.worker(0);
  Worker& c = l.worker(0);
  Worker& d = l.worker(0);
  const std::vector<Worker*> ws{&a, &b, &c, &d};
  for (Worker* w : ws) l.lot.enlist(w);
  EXPECT_TRUE(l.lot.delist(&b));  // b found work on its re-check and left by itself
  EXPECT_EQ(woken_by(l, ws, 0), 'd');
  EXPECT_EQ(woken_by(l, ws, 0), 'c') << "after delist(b), c is the most recent sleeper left";
  // The same through a CPU-preferring wake: a (the oldest) leaves from the front.
  l.lot.enlist(&b);
  l.lot.enlist(&c);
  l.lot.enlist(&d);  // list: a b c d, d the most recent
  EXPECT_EQ(woken_by(l, ws, 0, 3), 'a');
  EXPECT_EQ(woken_by(l, ws, 0), 'd') << "after a left, d is still the most recent sleeper";
}

// wake_all wakes every sleeper on every node once, and hands each to the searchers (P3).
TEST(ParkingLot, WakeAllWakesEverySleeper) {
  Lot l(2);
  const std::vector<Worker*> ws{&l.worker(0), &l.worker(0), &l.worker(1)};
  std::vector<std::uint32_t> before;
  for (Worker* w : ws) {
    before.push_back(w->waiter.epoch());
    l.lot.enlist(w);
  }
  l.lot.wake_all();
  for (std::size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(ws[i]->waiter.epoch(), before[i] + 1) << i;
  EXPECT_EQ(l.idle.sleepers.load(), 0);
  EXPECT_EQ(l.idle.searching.load(), 3);
  EXPECT_EQ(l.lot.sleepers_on(0), 0);
  EXPECT_EQ(l.lot.sleepers_on(1), 0);
  for (Worker* w : ws) EXPECT_FALSE(l.lot.delist(w));
  EXPECT_FALSE(l.lot.wake_one(0));
}

// The sleep protocol of Worker::park against the producer's of wake_for_injection, on
// tokens instead of frames. Sleepers: epoch, enlist, seq_cst fence, re-check, wait, and
// after waking leave the searchers if a waker counted them (P3). Producer: make a token
// visible, seq_cst fence, wake one if the lot announces sleepers (P2's seq_cst count).
// Most tokens are posted one at a time, the next only once the last was taken, racing the
// taker on its way back to sleep; every fourth waits until all sleepers are listed, so
// that the wake-up path surely runs; the rest come in bursts. A lost wake-up leaves a
// token nobody takes while everyone sleeps: the bounded waits below then time out (a
// failure, not a synchronisation) and everyone is released.
TEST(ParkingLotStress, NoWakeUpIsLostAndTheCountsSettle) {
  const std::int64_t n = static_cast<std::int64_t>(vitte::test::scaled(20'000));
  const unsigned sleepers = 3;
  Lot l(2);
  std::vector<Worker*> ws;
  for (unsigned i = 0; i < sleepers; ++i) ws.push_back(&l.worker(i % 2, static_cast<int>(i)));
  std::atomic<std::int64_t> tokens{0}, consumed{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable taken;

  auto active = [&] { return !stop.load() && consumed.load() < n; };
  std::vector<std::thread> ts;
  for (Worker* w : ws)
    ts.emplace_back([&, w] {
      while (active()) {
        std::int64_t t = tokens.load();
        while (t > 0 && !tokens.compare_exchange_weak(t, t - 1)) {
        }
        if (t > 0) {
          consumed.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          taken.notify_all();
          continue;
        }
        const std::uint32_t epoch = w->waiter.epoch();
        l.lot.enlist(w);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (tokens.load() == 0 && active()) w->waiter.wait(epoch);
        if (!l.lot.delist(w)) l.idle.searching.fetch_sub(1);  // P3: a waker counted us
      }
    });
  bool lost = false;
  std::int64_t wakes = 0;
  for (std::int64_t i = 0; i < n && !lost; ++i) {
    // Everyone listed: a state to wait for (it comes once the last token is taken).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (i % 4 == 0 && l.idle.sleepers.load() < static_cast<std::int32_t>(sleepers) && !lost) {
      lost = std::chrono::steady_clock::now() > deadline;
      std::this_thread::yield();
    }
    tokens.fetch_add(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (l.idle.sleepers.load(std::memory_order_relaxed) > 0)
      wakes += l.lot.wake_one(static_cast<unsigned>(i % 2), static_cast<int>(i % 4) - 1);
    if (i % 8 < 6 || i + 1 == n) {  // wait until this token is taken; the other two: a burst
      std::unique_lock<std::mutex> lock(mu);
      lost = !taken.wait_for(lock, std::chrono::seconds(60), [&] { return consumed.load() == i + 1; });
    }
  }
  EXPECT_FALSE(lost) << "lost wake-up: " << tokens.load() << " token(s) left while every sleeper slept";
  stop.store(true);
  l.lot.wake_all();  // releases those parked at the end (they re-check `stop` first)
  for (auto& t : ts) t.join();

  EXPECT_EQ(consumed.load(), n);
  EXPECT_EQ(tokens.load(), 0);
  EXPECT_GE(wakes, n / 4) << "every fourth token found all sleepers listed";
  EXPECT_EQ(l.idle.sleepers.load(), 0) << "P2";
  EXPECT_EQ(l.idle.searching.load(), 0) << "P3: a wake-up counted twice or never";
  EXPECT_EQ(l.lot.sleepers_on(0), 0);
  EXPECT_EQ(l.lot.sleepers_on(1), 0);
}

// The Waiter under the parking lot (waiter.hpp W1-W2): a timed sleep nobody wakes ends at
// its deadline, not before; a wake-up ends a sleep without a deadline; and a ping-pong of
// wake-ups between two threads loses none (a lost one shows as the bounded run hanging).
TEST(Waiter, TimedSleepEndsAtItsDeadlineAndWakeUpsAreNotLost) {
  using Clock = std::chrono::steady_clock;
  vitte::detail::Waiter w;
  const auto deadline = Clock::now() + std::chrono::milliseconds(20);
  EXPECT_FALSE(w.wait_until(w.epoch(), deadline)) << "nobody woke it";
  EXPECT_GE(Clock::now(), deadline);
  // A deadline before the clock's epoch has passed: no spin on the kernel's refusal.
  EXPECT_FALSE(w.wait_until(w.epoch(), Clock::time_point(-std::chrono::milliseconds(1500))));

  // Turns: odd ones are the helper's, even ones main's; each side sleeps on its own Waiter
  // until its turn comes, re-checking the turn after reading the epoch (the protocol).
  vitte::detail::Waiter mine, its;
  std::atomic<int> turn{0};
  const int rounds = static_cast<int>(vitte::test::scaled(20'000));
  auto sleep_until_turn = [&](vitte::detail::Waiter& on, int want) {
    for (;;) {
      const std::uint32_t e = on.epoch();
      if (turn.load() == want) return true;
      if (!on.wait_until(e, Clock::now() + std::chrono::seconds(60))) return turn.load() == want;
    }
  };
  std::thread t([&] {
    for (int i = 0; i < rounds; ++i) {
      if (!sleep_until_turn(its, 2 * i + 1)) return;
      turn.store(2 * i + 2);
      mine.wake();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    turn.store(2 * i + 1);
    its.wake();
    if (!sleep_until_turn(mine, 2 * i + 2)) {
      ADD_FAILURE() << "round " << i << ": a wake-up was lost";
      break;
    }
  }
  t.join();
}

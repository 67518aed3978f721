// Timers (timer.hpp, src/timer/): deadlines and their order, periodic runs, cancellation,
// errors, accounting with join_all(), the shutdown contract, what an idle scheduler with
// pending timers costs, memory after a million cancelled timers, and a concurrent stress
// test for the sanitizer builds. Lateness bounds here are generous on purpose (contracts,
// not speed); the benchmarks measure lateness.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "timer/timer_heap.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Counts live copies of a closure: a timer's closure must be destroyed exactly when it ends.
struct Tracked {
  explicit Tracked(std::shared_ptr<int> t) : token(std::move(t)) {}
  std::shared_ptr<int> token;
};

// Waits (up to `limit`) for `pred`; returns its final value.
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// This process's threads: (name, /proc/self/task/<tid>).
std::vector<std::pair<std::string, std::filesystem::path>> threads() {
  std::vector<std::pair<std::string, std::filesystem::path>> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string n;
    std::getline(comm, n);
    out.emplace_back(n, e.path());
  }
  return out;
}

}  // namespace

// ---- the heap on its own ------------------------------------------------------------

TEST(TimerHeap, PopsInDeadlineThenSeqOrderAndRemovesAnywhere) {
  std::mt19937 rng(7);
  const std::size_t n = 5000;
  std::vector<vitte::detail::TimerEntry> e(n);
  vitte::detail::TimerHeap h;
  const auto t0 = Clock::time_point{} + 1h;
  for (std::size_t i = 0; i < n; ++i) {
    e[i].deadline = t0 + std::chrono::microseconds(rng() % 100);  // many equal deadlines
    e[i].seq = i;
    h.push(&e[i]);
  }
  ASSERT_TRUE(h.check());
  // Remove a third of them from arbitrary places.
  std::vector<bool> removed(n, false);
  for (std::size_t i = 0; i < n; i += 3) {
    h.remove(&e[i]);
    removed[i] = true;
    EXPECT_EQ(e[i].slot, vitte::detail::TimerEntry::kNotQueued);
  }
  ASSERT_TRUE(h.check());
  const vitte::detail::TimerEntry* prev = nullptr;
  std::size_t popped = 0;
  while (!h.empty()) {
    const vitte::detail::TimerEntry* x = h.pop();
    EXPECT_FALSE(removed[x->seq]);
    if (prev != nullptr) {
      EXPECT_TRUE(vitte::detail::TimerHeap::before(prev, x)) << popped;
    }
    prev = x;
    ++popped;
  }
  EXPECT_EQ(popped, n - (n + 2) / 3);
}

TEST(TimerHeap, GivesItsMemoryBackAsItEmpties) {
  const std::size_t n = 200'000;
  std::vector<vitte::detail::TimerEntry> e(n);
  vitte::detail::TimerHeap h;
  for (std::size_t i = 0; i < n; ++i) {
    e[i].deadline = Clock::time_point{} + std::chrono::nanoseconds(i);
    e[i].seq = i;
    h.push(&e[i]);
  }
  EXPECT_GE(h.capacity(), n);
  for (std::size_t i = 0; i < n; ++i) h.remove(&e[i]);  // cancelled in arming order
  EXPECT_TRUE(h.empty());
  EXPECT_LE(h.capacity(), vitte::detail::TimerHeap::kKeepCapacity);
}

// ---- one-shot timers --------------------------------------------------------------------

TEST(Timer, FiresAfterItsDelayNeverEarly) {
  vitte::Scheduler sched(2);
  for (auto delay : {0ms, 1ms, 10ms, 30ms}) {
    std::atomic<std::int64_t> ran_at{0};
    const auto armed = Clock::now();
    vitte::Timer t = sched.after(delay, [&] { ran_at = Clock::now().time_since_epoch().count(); });
    EXPECT_TRUE(t.deadline() >= armed + delay);
    sched.join_all();  // a pending one-shot timer is detached work
    const Clock::time_point ran{Clock::duration(ran_at.load())};
    EXPECT_GE(ran, t.deadline()) << "a " << delay.count() << " ms timer fired early";
    EXPECT_LT(ran - armed, delay + 2s) << "a " << delay.count() << " ms timer fired far too late";
    EXPECT_EQ(t.state(), vitte::TimerState::Done);
    EXPECT_EQ(t.runs(), 1u);
    EXPECT_FALSE(t.periodic());
    EXPECT_FALSE(t.cancel()) << "nothing left to prevent";
  }
}

TEST(Timer, AtFiresAtTheTimePointAndAPastOneAtOnce) {
  vitte::Scheduler sched(1);
  const auto when = Clock::now() + 20ms;
  std::atomic<std::int64_t> ran_at{0};
  vitte::Timer t = sched.at(when, [&] { ran_at = Clock::now().time_since_epoch().count(); });
  EXPECT_EQ(t.deadline(), when);
  EXPECT_EQ(t.state(), vitte::TimerState::Pending);
  sched.join_all();
  EXPECT_GE(Clock::time_point{Clock::duration(ran_at.load())}, when);
  std::atomic<bool> past{false};
  sched.at(Clock::now() - 1h, [&] { past = true; });  // the handle may be ignored
  sched.join_all();
  EXPECT_TRUE(past.load());
}

TEST(Timer, DroppingTheHandleDoesNotCancel) {
  vitte::Scheduler sched(1);
  std::atomic<bool> ran{false};
  { vitte::Timer t = sched.after(5ms, [&] { ran = true; }); }
  sched.join_all();
  EXPECT_TRUE(ran.load());
}

TEST(Timer, TimersFireInDeadlineOrderOnOneWorker) {
  vitte::Scheduler sched(1);
  const std::size_t n = 300;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::vector<std::size_t> fired;  // written by the one worker only
  std::mutex mu;
  const auto base = Clock::now() + 50ms;
  for (std::size_t i : order)
    sched.at(base + i * 50us, [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      fired.push_back(i);
    });
  sched.join_all();
  ASSERT_EQ(fired.size(), n);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
}

TEST(Timer, EqualDeadlinesFireInArmingOrder) {
  vitte::Scheduler sched(1);
  const std::size_t n = 200;
  std::vector<std::size_t> fired;
  std::mutex mu;
  const auto when = Clock::now() + 30ms;
  for (std::size_t i = 0; i < n; ++i)
    sched.at(when, [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      fired.push_back(i);
    });
  sched.join_all();
  ASSERT_EQ(fired.size(), n);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
}

TEST(Timer, RunsOnAWorkerOfItsNode) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("pack:2 numa:1 core:2 pu:1");
  vitte::Scheduler sched(std::move(o));
  ASSERT_EQ(sched.topology().nodes().size(), 2u);
  for (int node : {0, 1, 1, 0}) {
    std::atomic<int> worker{-1};
    sched.after(1ms, [&] { worker = vitte::Scheduler::current_worker(); }, {.node = static_cast<unsigned>(node)});
    sched.join_all();
    ASSERT_GE(worker.load(), 0);
    EXPECT_EQ(sched.plan().workers[static_cast<std::size_t>(worker.load())].node, static_cast<unsigned>(node));
  }
  // From a task, node -1 is the calling worker's node.
  std::atomic<int> outer{-1}, inner{-1};
  sched.submit(vitte::Task([&] {
                 outer = vitte::Scheduler::current_worker();
                 vitte::Scheduler::current()->after(1ms, [&] { inner = vitte::Scheduler::current_worker(); });
               }), {.node = 1});
  sched.join_all();
  ASSERT_GE(inner.load(), 0);
  EXPECT_EQ(sched.plan().workers[static_cast<std::size_t>(inner.load())].node,
            sched.plan().workers[static_cast<std::size_t>(outer.load())].node);
}

// ---- periodic timers ---------------------------------------------------------------------

TEST(Timer, FixedRateKeepsItsGridAndNeverOverlaps) {
  vitte::Scheduler sched(2);
  std::atomic<int> inside{0}, overlaps{0}, early{0};
  std::vector<Clock::time_point> deadlines;
  std::mutex mu;
  std::atomic<vitte::Timer*> self{nullptr};
  vitte::Timer t = sched.every(20ms, [&] {
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    const auto now = Clock::now();
    while (self.load() == nullptr) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (now < self.load()->deadline()) early.fetch_add(1);
      deadlines.push_back(self.load()->deadline());
    }
    inside.fetch_sub(1);
  });
  self = &t;
  const auto first = t.deadline();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(t.cancel());
  ASSERT_TRUE(eventually([&] { return t.state() == vitte::TimerState::Cancelled; }));
  sched.join_all();
  EXPECT_TRUE(t.periodic());
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(early.load(), 0);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(deadlines.size(), 3u) << "15 ticks were due in 300 ms";
  EXPECT_LE(deadlines.size(), 16u);
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    const auto since = deadlines[i] - first;
    EXPECT_EQ(since % 20ms, 0ns) << "run " << i << " is off the 20 ms grid";
    if (i > 0) {
      EXPECT_GE(deadlines[i] - deadlines[i - 1], 20ms);
    }
  }
  EXPECT_EQ(t.runs(), deadlines.size());
}

TEST(Timer, FixedRateSkipsMissedTicksInsteadOfBursting) {
  vitte::Scheduler sched(2);
  std::vector<Clock::time_point> starts;
  std::mutex mu;
  std::atomic<int> inside{0}, overlaps{0};
  vitte::Timer t = sched.every(10ms, [&] {
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu);
      starts.push_back(Clock::now());
    }
    std::this_thread::sleep_for(25ms);  // longer than the period
    inside.fetch_sub(1);
  });
  std::this_thread::sleep_for(300ms);
  t.cancel();
  sched.join_all();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(t.missed(), 0u);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(starts.size(), 2u);
  // No burst: a run never starts right after the previous one ended to catch up.
  for (std::size_t i = 1; i < starts.size(); ++i) EXPECT_GE(starts[i] - starts[i - 1], 25ms) << i;
  EXPECT_LE(starts.size(), 12u) << "300 ms of 25 ms runs with skipped ticks";
}

TEST(Timer, FixedDelayWaitsThePeriodAfterEachRun) {
  vitte::Scheduler sched(2);
  std::vector<std::pair<Clock::time_point, Clock::time_point>> runs;  // start, end
  std::mutex mu;
  vitte::Timer t = sched.every(15ms, [&] {
    const auto start = Clock::now();
    std::this_thread::sleep_for(10ms);
    std::lock_guard<std::mutex> lock(mu);
    runs.emplace_back(start, Clock::now());
  }, {}, vitte::Periodic::FixedDelay);
  std::this_thread::sleep_for(250ms);
  t.cancel();
  sched.join_all();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(runs.size(), 2u);
  for (std::size_t i = 1; i < runs.size(); ++i)
    EXPECT_GE(runs[i].first - runs[i - 1].second, 15ms) << "run " << i << " started before end + period";
  EXPECT_EQ(t.missed(), 0u);
}

// ---- cancellation -----------------------------------------------------------------------

TEST(Timer, CancelPendingNeverRunsAndDestroysTheClosure) {
  vitte::Scheduler sched(2);
  auto token = std::make_shared<int>(0);
  std::atomic<bool> ran{false};
  vitte::Timer t = sched.after(10s, [&ran, keep = Tracked(token)] { ran = true; });
  EXPECT_EQ(token.use_count(), 2);
  const auto t0 = Clock::now();
  EXPECT_TRUE(t.cancel());
  EXPECT_EQ(token.use_count(), 1) << "the closure outlived cancel()";
  EXPECT_EQ(t.state(), vitte::TimerState::Cancelled);
  EXPECT_FALSE(t.cancel()) << "a second cancel prevents nothing";
  sched.join_all();  // the cancelled one-shot no longer counts
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_FALSE(ran.load());
  EXPECT_FALSE(vitte::Timer().cancel());
}

TEST(Timer, PeriodicCancelStopsItWithinOnePeriod) {
  vitte::Scheduler sched(2);
  auto token = std::make_shared<int>(0);
  std::atomic<int> runs{0};
  vitte::Timer t = sched.every(10ms, [&runs, keep = Tracked(token)] { runs.fetch_add(1); });
  ASSERT_TRUE(eventually([&] { return runs.load() >= 3; }));
  EXPECT_TRUE(t.cancel());
  // A run in progress finishes; after that no run starts.
  ASSERT_TRUE(eventually([&] { return t.state() == vitte::TimerState::Cancelled && token.use_count() == 1; }, 10ms + 2s));
  const int at_cancel = runs.load();
  std::this_thread::sleep_for(60ms);  // six more periods
  EXPECT_EQ(runs.load(), at_cancel);
  sched.join_all();
}

TEST(Timer, CancelFromInsideTheCallback) {
  vitte::Scheduler sched(2);
  std::atomic<int> runs{0};
  std::atomic<bool> cancelled_inside{false};
  vitte::Timer t;
  std::atomic<vitte::Timer*> self{nullptr};
  t = sched.every(2ms, [&] {
    while (self.load() == nullptr) std::this_thread::yield();
    if (runs.fetch_add(1) + 1 == 3) cancelled_inside = self.load()->cancel();
  });
  self = &t;
  ASSERT_TRUE(eventually([&] { return t.state() == vitte::TimerState::Cancelled; }));
  sched.join_all();
  EXPECT_TRUE(cancelled_inside.load()) << "cancel() from the callback prevents the next run";
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(runs.load(), 3);

  // A one-shot cancelling itself: its only run has started, nothing to prevent.
  std::atomic<int> result{-1};
  vitte::Timer once;
  std::atomic<vitte::Timer*> once_self{nullptr};
  once = sched.after(1ms, [&] {
    while (once_self.load() == nullptr) std::this_thread::yield();
    result = once_self.load()->cancel() ? 1 : 0;
  });
  once_self = &once;
  sched.join_all();
  EXPECT_EQ(result.load(), 0);
  EXPECT_EQ(once.state(), vitte::TimerState::Done);
}

// ---- errors and accounting ----------------------------------------------------------------

TEST(Timer, ACallbacksExceptionReachesJoinAll) {
  vitte::Scheduler sched(2);
  sched.after(1ms, [] { throw std::runtime_error("timer boom"); });
  try {
    sched.join_all();
    FAIL() << "join_all() must rethrow the callback's error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "timer boom");
  }
  // A periodic timer stops at its first error.
  std::atomic<int> runs{0};
  vitte::Timer t = sched.every(2ms, [&] {
    if (runs.fetch_add(1) + 1 == 2) throw std::runtime_error("tick boom");
  });
  ASSERT_TRUE(eventually([&] { return t.state() == vitte::TimerState::Done; }));
  EXPECT_THROW(sched.join_all(), std::runtime_error);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(t.runs(), 2u);
}

TEST(Timer, JoinAllWaitsForAPendingOneShot) {
  vitte::Scheduler sched(2);
  std::atomic<bool> ran{false};
  const auto t0 = Clock::now();
  sched.after(80ms, [&] { ran = true; });
  sched.join_all();
  EXPECT_TRUE(ran.load());
  EXPECT_GE(Clock::now() - t0, 80ms);
}

TEST(Timer, BadArgumentsAreRefusedNamingTheValue) {
  vitte::Scheduler sched(1);
  auto token = std::make_shared<int>(0);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const vitte::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string nodes = std::to_string(sched.topology().nodes().size());
  std::string m = message([&] { (void)sched.after(1ms, [keep = Tracked(token)] {}, {.node = 99}); });
  EXPECT_NE(m.find("node 99 (TaskOptions::node)"), std::string::npos) << m;
  m = message([&] { (void)sched.every(0ms, [keep = Tracked(token)] {}); });
  EXPECT_NE(m.find("got 0 ns"), std::string::npos) << m;
  m = message([&] { (void)sched.every(-5ms, [keep = Tracked(token)] {}); });
  EXPECT_NE(m.find("got -5000000 ns"), std::string::npos) << m;
  m = message([&] { (void)sched.at(Clock::now(), [keep = Tracked(token)] {}, {.deadline = -2ns}); });
  EXPECT_NE(m.find("-2"), std::string::npos) << m;
  EXPECT_EQ(token.use_count(), 1) << "refused timers' closures are destroyed";
  sched.join_all();  // nothing was counted
}

TEST(Timer, MetricsCountArmedFiredCancelledDropped) {
  vitte::Scheduler sched(1);
  const vitte::MetricsSnapshot before = sched.metrics();
  sched.after(1ms, [] {});
  vitte::Timer c = sched.after(10s, [] {});
  c.cancel();
  sched.join_all();
  vitte::Timer d = sched.after(10s, [] {});
  testing::internal::CaptureStderr();
  sched.shutdown();
  (void)testing::internal::GetCapturedStderr();
  const vitte::MetricsSnapshot m = sched.metrics() - before;
  EXPECT_EQ(m.timers.armed, 3u);
  EXPECT_EQ(m.timers.fired, 1u);
  EXPECT_EQ(m.timers.cancelled, 1u);
  EXPECT_EQ(m.timers.dropped, 1u);
  EXPECT_EQ(m.timers.pending(), 0u);
  ASSERT_EQ(m.nodes.size(), 1u);
  EXPECT_EQ(m.nodes[0].timers.armed, 3u);
}

// ---- threads and cost ---------------------------------------------------------------------

TEST(Timer, TheTimerThreadStartsWithTheFirstTimerAndIsNamed) {
  vitte::Scheduler sched(2);
  const std::size_t before = vitte::test::thread_count();
  auto has_timer_thread = [] {
    const auto all = threads();
    return std::any_of(all.begin(), all.end(), [](const auto& t) { return t.first == "vitte-t/n0"; });
  };
  EXPECT_FALSE(has_timer_thread()) << "a scheduler that never used a timer has no timer thread";
  sched.after(1ms, [] {});
  sched.join_all();
  EXPECT_EQ(vitte::test::thread_count(), before + 1);
  EXPECT_TRUE(has_timer_thread());
  for (int i = 0; i < 10; ++i) sched.after(1ms, [] {});
  sched.join_all();
  EXPECT_EQ(vitte::test::thread_count(), before + 1) << "one timer thread per node";
  sched.shutdown();
  EXPECT_FALSE(has_timer_thread()) << "shutdown joins it";
}

// Pinned workers: the timer thread runs on their CPUs (the union of the node's workers').
TEST(Timer, TheTimerThreadRunsOnItsNodesWorkerCpus) {
  vitte::Scheduler sched(1);
  const int cpu = sched.plan().workers[0].os_cpu;
  if (cpu < 0) GTEST_SKIP() << "the plan leaves the worker unpinned (" << sched.plan().binding_reason << ")";
  sched.after(0ms, [] {});
  sched.join_all();
  std::string allowed;
  for (const auto& [name, dir] : threads()) {
    if (name != "vitte-t/n0") continue;
    std::ifstream status(dir / "status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("Cpus_allowed_list:", 0) == 0) allowed = line.substr(line.find_first_not_of(" \t", 18));
  }
  EXPECT_EQ(allowed, std::to_string(cpu));
}

TEST(Timer, IdleSchedulerWithPendingTimersBurnsAlmostNoCpu) {
  const int rc = vitte::test::in_child([] {
    vitte::Scheduler sched(2);
    std::atomic<int> ticks{0};
    vitte::Timer tick = sched.every(100ms, [&] { ticks.fetch_add(1); });
    vitte::Timer later = sched.after(10s, [] {});
    std::this_thread::sleep_for(250ms);  // the workers have parked after start-up
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(1s);
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double per_second = cpu / wall;
    std::printf("idle with 2 pending timers: %.2f ms of CPU per second, %d ticks\n", per_second * 1e3, ticks.load());
    tick.cancel();
    later.cancel();
    if (ticks.load() < 3) return 2;
    return per_second < 0.030 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0) << "1: more than 30 ms of CPU per idle second; 2: the periodic timer did not tick; -1: crash";
}

TEST(Timer, AMillionTimersArmedThenCancelledGiveTheirMemoryBack) {
  const int rc = vitte::test::in_child([] {
    vitte::Scheduler sched(1);
    const std::size_t n = vitte::test::scaled(1'000'000);
    sched.after(1ms, [] {});  // the timer thread and its first allocations exist before we measure
    sched.join_all();
    (void)sched.metrics();  // and whatever the first metrics() loads for good
    const std::size_t before = rss_kib();
    auto token = std::make_shared<int>(0);
    std::size_t peak = 0;
    {
      std::vector<vitte::Timer> timers;
      timers.reserve(n);
      for (std::size_t i = 0; i < n; ++i)
        timers.push_back(sched.after(1h + std::chrono::microseconds(i % 1000), [keep = Tracked(token)] {}));
      peak = rss_kib();
      if (sched.metrics().timers.pending() != n) return 3;
      for (auto& t : timers)
        if (!t.cancel()) return 4;
    }
    if (token.use_count() != 1) return 5;  // every closure destroyed
    const vitte::MetricsSnapshot m = sched.metrics();
    if (m.timers.pending() != 0 || m.timers.cancelled != n) return 6;
    sched.join_all();  // nothing left counted
    const std::size_t after = rss_kib();
    std::printf("RSS %zu KiB before, %zu KiB with %zu timers, %zu KiB after cancelling them\n", before, peak, n, after);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 0;  // sanitizer allocators keep freed memory (quarantine, shadow); the counts above hold
#else
    if (peak < before + n / 16) return 2;  // a timer costs memory while it is pending
    return after < before + (peak - before) / 8 ? 0 : 1;
#endif
  }, std::chrono::seconds(120));
  EXPECT_EQ(rc, 0) << "1: memory not given back; 2: pending timers cost nothing?; 3: not all pending; "
                      "4: a cancel failed; 5: closures kept; 6: counts; -1: crash or timeout";
}

// ---- shutdown -----------------------------------------------------------------------------

TEST(Timer, ShutdownDropsPendingTimersAndSaysSo) {
  auto token = std::make_shared<int>(0);
  std::atomic<int> ran{0};
  vitte::Timer once, twice, tick, done;
  std::string err;
  const auto t0 = Clock::now();
  {
    vitte::Scheduler sched(2);
    done = sched.after(0ms, [&ran] { ran.fetch_add(100); });
    sched.join_all();
    once = sched.after(10s, [&ran, keep = Tracked(token)] { ran.fetch_add(1); });
    twice = sched.at(Clock::now() + 1h, [&ran, keep = Tracked(token)] { ran.fetch_add(1); });
    tick = sched.every(5s, [&ran, keep = Tracked(token)] { ran.fetch_add(1); });
    EXPECT_EQ(token.use_count(), 4);
    testing::internal::CaptureStderr();
    sched.shutdown();
    err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(once.state(), vitte::TimerState::Dropped);
    EXPECT_EQ(twice.state(), vitte::TimerState::Dropped);
    EXPECT_EQ(tick.state(), vitte::TimerState::Dropped);
    EXPECT_EQ(done.state(), vitte::TimerState::Done);
    EXPECT_EQ(token.use_count(), 1) << "dropped timers' closures are destroyed";
    // Arming is refused from now on, and the refused closures are destroyed too.
    EXPECT_THROW(sched.after(1ms, [keep = Tracked(token)] {}), vitte::UsageError);
    EXPECT_THROW(sched.at(Clock::now(), [keep = Tracked(token)] {}), vitte::UsageError);
    EXPECT_THROW(sched.every(1ms, [keep = Tracked(token)] {}), vitte::UsageError);
    EXPECT_EQ(token.use_count(), 1);
    EXPECT_FALSE(once.cancel());
  }
  EXPECT_LT(Clock::now() - t0, 5s) << "shutdown must not wait for pending timers";
  EXPECT_EQ(ran.load(), 100) << "dropped callbacks never run";
  EXPECT_NE(err.find("vitte: shutdown dropped 2 pending timer(s)"), std::string::npos) << err;
  EXPECT_EQ(once.state(), vitte::TimerState::Dropped) << "the handle outlives its scheduler";
}

TEST(Timer, ShutdownWithOnlyPeriodicTimersPrintsNothingAndRunsInFlightFinish) {
  std::atomic<int> finished{0};
  std::atomic<bool> started{false};
  vitte::Timer slow;
  std::string err;
  {
    vitte::Scheduler sched(2);
    slow = sched.every(1ms, [&] {
      started = true;
      std::this_thread::sleep_for(50ms);
      finished.fetch_add(1);
    });
    ASSERT_TRUE(eventually([&] { return started.load(); }));
    testing::internal::CaptureStderr();
    sched.shutdown();  // the run in progress finishes; its re-arm is refused
    err = testing::internal::GetCapturedStderr();
  }
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(slow.state(), vitte::TimerState::Dropped);
  EXPECT_EQ(err.find("dropped"), std::string::npos) << err;
}

TEST(Timer, ATaskArmingDuringShutdownGetsUsageError) {
  std::atomic<int> refused{0};
  std::atomic<bool> go{false};
  {
    vitte::Scheduler sched(2);
    vitte::Scheduler* s = &sched;
    sched.submit(vitte::Task([&, s] {
      while (!go.load()) std::this_thread::yield();
      // shutdown() has begun: it waits for this task, after dropping the timers.
      std::this_thread::sleep_for(20ms);
      try {
        s->after(1ms, [] {});
      } catch (const vitte::UsageError&) {
        refused.fetch_add(1);
      }
    }));
    go = true;
    sched.shutdown();
  }
  EXPECT_EQ(refused.load(), 1);
}

// ---- stress (also under TSan and ASan+UBSan) ------------------------------------------------

// External threads, tasks and timer callbacks arm one-shot and periodic timers while others
// fire; everybody cancels timers at random, also other threads' timers, and some cancels
// land while the timer fires or runs. Each one-shot timer must end exactly once: it ran,
// or exactly one cancel() returned true. Every closure is destroyed, the counts balance.
TEST(TimerStress, ThreadsTasksAndCallbacksArmAndCancelWhileTimersFire) {
  vitte::Scheduler sched(2);
  struct Rec {
    std::atomic<int> ran{0}, cancelled{0};
    bool periodic = false;
    vitte::Timer timer;
  };
  std::mutex mu;
  std::vector<std::shared_ptr<Rec>> all;  // under mu; the handles stay alive until the end
  std::atomic<std::int64_t> live_closures{0};
  struct Counted {
    explicit Counted(std::atomic<std::int64_t>* c) : live(c) { live->fetch_add(1); }
    Counted(const Counted& o) : live(o.live) { live->fetch_add(1); }
    Counted(Counted&& o) noexcept : live(o.live) { live->fetch_add(1); }
    ~Counted() { live->fetch_sub(1); }
    std::atomic<std::int64_t>* live;
  };
  auto pick = [&](std::mt19937& rng) {
    std::lock_guard<std::mutex> lock(mu);
    return all.empty() ? nullptr : all[rng() % all.size()];
  };
  auto cancel = [](const std::shared_ptr<Rec>& r) {
    if (r && r->timer.cancel()) r->cancelled.fetch_add(1);
  };
  // Arms one timer and returns it; `depth` > 0: its callback arms another one-shot timer.
  std::function<std::shared_ptr<Rec>(std::mt19937&, int, bool)> arm = [&](std::mt19937& rng, int depth,
                                                                          bool periodic) {
    auto r = std::make_shared<Rec>();
    r->periodic = periodic;
    const unsigned seed = static_cast<unsigned>(rng());
    auto body = [&, r, depth, seed, c = Counted(&live_closures)] {
      r->ran.fetch_add(1);
      std::mt19937 local(seed);
      if (depth > 0) arm(local, depth - 1, false);
      if (local() % 4 == 0) cancel(pick(local));  // a callback cancelling some timer
    };
    const auto delay = std::chrono::microseconds(rng() % 2000);
    if (r->periodic)
      r->timer = sched.every(std::chrono::microseconds(500 + rng() % 1500), body, {},
                             rng() % 2 ? vitte::Periodic::FixedRate : vitte::Periodic::FixedDelay);
    else
      r->timer = sched.after(delay, body);
    std::lock_guard<std::mutex> lock(mu);
    all.push_back(r);
    return r;
  };
  const std::size_t per = vitte::test::scaled(10000);
  // Each producer keeps at most 3 periodic timers alive (cancelling its oldest), so the
  // machine is busy but not flooded with ticks.
  auto producer = [&](unsigned seed, std::size_t count) {
    std::mt19937 rng(seed);
    std::vector<std::shared_ptr<Rec>> ticking;
    for (std::size_t i = 0; i < count; ++i) {
      const bool periodic = rng() % 32 == 0;
      auto r = arm(rng, rng() % 16 == 0 ? 2 : 0, periodic);
      if (periodic) ticking.push_back(std::move(r));
      if (ticking.size() > 3) {
        cancel(ticking.front());
        ticking.erase(ticking.begin());
      }
      if (rng() % 3 == 0) cancel(pick(rng));
    }
    for (auto& t : ticking) cancel(t);
  };
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < 4; ++p) threads.emplace_back(producer, 100 + p, per);
  for (unsigned k = 0; k < 4; ++k) sched.submit(vitte::Task([&, k] { producer(200 + k, per / 8); }));
  for (auto& t : threads) t.join();
  sched.join_all();  // the producing tasks, and every one-shot, including those armed by callbacks
  std::vector<std::shared_ptr<Rec>> snapshot;
  {
    std::lock_guard<std::mutex> lock(mu);
    snapshot = all;
  }
  std::size_t one_shots = 0;
  for (const auto& r : snapshot) {
    if (r->periodic) {
      EXPECT_LE(r->cancelled.load(), 1);
      EXPECT_NE(r->timer.state(), vitte::TimerState::Pending);
      continue;
    }
    ++one_shots;
    ASSERT_EQ(r->ran.load() + r->cancelled.load(), 1) << "a one-shot timer ran " << r->ran.load()
                                                      << " time(s) and was cancelled " << r->cancelled.load();
    EXPECT_EQ(r->timer.state(), r->ran.load() == 1 ? vitte::TimerState::Done : vitte::TimerState::Cancelled);
  }
  EXPECT_GT(one_shots, per);
  ASSERT_TRUE(eventually([&] { return live_closures.load() == 0; })) << live_closures.load() << " closures alive";
  const vitte::MetricsSnapshot m = sched.metrics();
  EXPECT_EQ(m.timers.pending(), 0u);
  EXPECT_EQ(m.timers.armed, m.timers.fired + m.timers.cancelled);
}

// The Scheduler's public contract: the origin API, detached tasks, futures, shutdown,
// external submitters, hooks, memory that does not grow with finished tasks.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <latch>
#include <stdexcept>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

TEST(Scheduler, OriginExampleRuns) {
  std::atomic<int> ran{0};
  {
    vitte::Scheduler sched(4);
    auto task = vitte::Task([&] {
      std::printf("task on thread %zu\n", std::hash<std::thread::id>{}(std::this_thread::get_id()));
      ran.fetch_add(1);
    });
    sched.submit(std::move(task));
    sched.join_all();
    EXPECT_EQ(ran.load(), 1);
    EXPECT_EQ(sched.num_workers(), 4u);
  }
}

TEST(Scheduler, ZeroWorkersIsAClearError) {
  try {
    vitte::Scheduler s(0);
    FAIL() << "Scheduler(0) must throw";
  } catch (const vitte::PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("0"), std::string::npos) << e.what();
  }
}

TEST(Scheduler, HugeWorkerCountsAreRefusedBeforeAnyThreadStarts) {
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::size_t n : {std::size_t{100000}, static_cast<std::size_t>(-1)}) {
    try {
      vitte::Scheduler s(n);
      FAIL() << "Scheduler(" << n << ") must throw";
    } catch (const vitte::PlanError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(n) + " workers"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(Scheduler, UnsubmittedTaskIsDestroyedNotRun) {
  std::atomic<int> ran{0};
  auto token = std::make_shared<int>(7);
  {
    auto t = vitte::Task([&ran, token] { ran.fetch_add(1); });
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1) << "the closure was destroyed";
  EXPECT_EQ(ran.load(), 0);
}

TEST(Scheduler, EmptyTaskSubmitIsRefused) {
  vitte::Scheduler s(2);
  vitte::Task t;
  EXPECT_THROW(s.submit(std::move(t)), vitte::UsageError);
}

// 1M tasks spawned recursively (a binary tree of detached spawns): each runs exactly once.
TEST(SchedulerStress, MillionRecursiveTasksRunExactlyOnce) {
  const std::size_t n = vitte::test::scaled(1'000'000);
  std::vector<std::atomic<unsigned char>> seen(n);
  vitte::Scheduler sched(4);
  std::function<void(std::size_t)> node = [&](std::size_t i) {
    seen[i].fetch_add(1, std::memory_order_relaxed);
    for (std::size_t c = 2 * i + 1; c <= 2 * i + 2; ++c)
      if (c < n) vitte::spawn([&node, c] { node(c); });
  };
  const auto before = sched.metrics();
  sched.submit(vitte::Task([&] { node(0); }));
  sched.join_all();
  std::size_t bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  EXPECT_EQ(bad, 0u);
  const auto m = sched.metrics() - before;
  EXPECT_EQ(m.total.executed, n) << "the root task plus n - 1 spawned nodes";
}

TEST(SchedulerStress, ManyExternalThreadsSubmitAtOnce) {
  const unsigned threads = 8;
  const std::size_t per = vitte::test::scaled(20'000);
  std::atomic<std::size_t> count{0};
  vitte::Scheduler sched(2);
  std::vector<std::thread> ts;
  std::latch go(threads);
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      go.arrive_and_wait();
      for (std::size_t i = 0; i < per; ++i)
        sched.submit(vitte::Task([&] { count.fetch_add(1, std::memory_order_relaxed); }));
    });
  for (auto& t : ts) t.join();
  sched.join_all();
  EXPECT_EQ(count.load(), threads * per);
}

TEST(Scheduler, JoinAllRethrowsTheFirstErrorAndCountsTheRest) {
  vitte::Scheduler sched(2);
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i)
    sched.submit(vitte::Task([&, i] {
      if (i % 25 == 0) throw std::runtime_error("task " + std::to_string(i) + " failed");
      ok.fetch_add(1);
    }));
  try {
    sched.join_all();
    FAIL() << "join_all must rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos);
  }
  EXPECT_EQ(ok.load(), 96) << "a detached error cancels nothing else";
  EXPECT_EQ(sched.metrics().total.failed, 4u);
  EXPECT_NO_THROW(sched.join_all()) << "an error is reported once";
}

TEST(Scheduler, JoinAllFromInsideATaskIsAUsageError) {
  vitte::Scheduler sched(2);
  auto f = sched.async([&] {
    try {
      sched.join_all();
    } catch (const vitte::UsageError&) {
      return true;
    }
    return false;
  });
  EXPECT_TRUE(f.get());
}

TEST(Scheduler, ShutdownRunsEveryPendingTask) {
  const std::size_t n = vitte::test::scaled(20'000);
  std::atomic<std::size_t> count{0};
  {
    vitte::Scheduler sched(2);
    for (std::size_t i = 0; i < n; ++i)
      sched.submit(vitte::Task([&count, i] {
        std::this_thread::sleep_for(std::chrono::microseconds(i % 64 == 0 ? 50 : 0));
        vitte::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); });
      }));
    // No join_all(): the destructor must drain the queues, descendants included.
  }
  EXPECT_EQ(count.load(), n);
}

TEST(Scheduler, SubmitAfterShutdownBeganIsRefusedAndTheTaskKept) {
  std::atomic<bool> release{false};
  std::atomic<bool> started{false};
  std::atomic<int> ran{0};
  vitte::Scheduler sched(2);
  sched.submit(vitte::Task([&] {
    started = true;
    while (!release.load()) std::this_thread::sleep_for(1ms);
    ran++;
  }));
  while (!started.load()) std::this_thread::sleep_for(1ms);
  std::thread stopper([&] { sched.shutdown(); });  // blocks until the task above ends
  bool refused = false;
  for (int i = 0; i < 5000 && !refused; ++i) {
    auto t = vitte::Task([&] { ran++; });
    try {
      sched.submit(std::move(t));
    } catch (const vitte::UsageError& e) {
      refused = true;
      EXPECT_TRUE(static_cast<bool>(t)) << "a refused task stays with the caller";
      EXPECT_NE(std::string(e.what()).find("shutting down"), std::string::npos) << e.what();
    }
    std::this_thread::sleep_for(1ms);
  }
  vitte::TaskGroup late(sched);
  EXPECT_THROW(late.run([] {}), vitte::UsageError);
  release = true;
  stopper.join();
  EXPECT_TRUE(refused);
  const int accepted_before_refusal = ran.load();
  EXPECT_GE(accepted_before_refusal, 1) << "work accepted before the refusal still ran";
  EXPECT_THROW(sched.submit(vitte::Task([] {})), vitte::UsageError);
  EXPECT_NO_THROW(sched.shutdown()) << "idempotent";
}

TEST(Scheduler, ShutdownRethrowsAnUnreportedDetachedError) {
  vitte::Scheduler sched(2);
  sched.submit(vitte::Task([] { throw std::runtime_error("lost?"); }));
  EXPECT_THROW(sched.shutdown(), std::runtime_error);
}

TEST(Scheduler, FuturesCarryValuesAndExceptions) {
  vitte::Scheduler sched(2);
  auto a = sched.async([] { return 6 * 7; });
  auto b = sched.async([]() -> int { throw std::logic_error("no answer"); });
  auto c = sched.async([] {});
  EXPECT_EQ(a.get(), 42);
  EXPECT_THROW(b.get(), std::logic_error);
  EXPECT_NO_THROW(c.get());
  EXPECT_FALSE(a.valid());
  EXPECT_THROW(a.get(), vitte::UsageError);
  sched.join_all();
}

TEST(Scheduler, FutureGetInsideATaskHelpsInsteadOfDeadlocking) {
  vitte::Scheduler sched(1);
  auto outer = sched.async([&] {
    auto inner = sched.async([] { return 5; });
    return inner.get() + 1;  // the only worker runs `inner` while it waits
  });
  EXPECT_EQ(outer.get(), 6);
}

TEST(Scheduler, BigClosuresAreBoxedAndStillRun) {
  vitte::Scheduler sched(2);
  std::array<char, 300> big{};
  big[299] = 9;
  auto f = sched.async([&sched, big] {
    std::atomic<int> got{0};
    vitte::TaskGroup g;
    g.run([big, &got] { got = big[299]; });
    g.wait();
    (void)sched;
    return got.load();
  });
  EXPECT_EQ(f.get(), 9);
  EXPECT_GE(sched.metrics().total.boxed, 1u);
}

TEST(Scheduler, WorkerHooksRunOncePerWorker) {
  std::atomic<int> started{0}, stopped{0};
  std::vector<std::atomic<int>> per(3);
  {
    vitte::Options o;
    o.workers = 3;
    o.on_worker_start = [&](const vitte::WorkerInfo& w) {
      started++;
      per[w.index]++;
      EXPECT_EQ(vitte::Scheduler::current_worker(), static_cast<int>(w.index));
    };
    o.on_worker_stop = [&](const vitte::WorkerInfo&) { stopped++; };
    vitte::Scheduler sched(std::move(o));
    EXPECT_EQ(started.load(), 3);
    EXPECT_EQ(stopped.load(), 0);
  }
  EXPECT_EQ(stopped.load(), 3);
  for (auto& p : per) EXPECT_EQ(p.load(), 1);
}

TEST(Scheduler, SubmitToANodeThatDoesNotExistNamesIt) {
  vitte::Scheduler sched(2);
  try {
    sched.submit(vitte::Task([] {}), {.node = 5});
    FAIL();
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("node 5"), std::string::npos) << e.what();
  }
}

TEST(Scheduler, WorkForACpuLessNodeGoesToTheNearestArena) {
  vitte::Options o;
  o.topology = vitte::Topology::from_xml(vitte::test::topology_file("64intel64-fakeKNL-SNC4-hybrid.xml"));
  o.workers = 4;
  vitte::Scheduler sched(std::move(o));
  ASSERT_FALSE(sched.topology().nodes()[1].has_cpus());
  // Node 1 is KNL MCDRAM: memory without CPUs. Its work must still run.
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) sched.submit(vitte::Task([&] { ran++; }), {.node = 1});
  auto f = sched.async([] { return vitte::Scheduler::current_worker(); }, {.node = 1u});
  EXPECT_GE(f.get(), 0);
  sched.join_all();
  EXPECT_EQ(ran.load(), 100);
}

namespace {
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}
}  // namespace

// After a short bounded spin, idle workers sleep: 300 ms of idleness costs (almost) no CPU,
// and a task submitted afterwards still starts promptly.
TEST(Scheduler, IdleWorkersParkAndBurnNoCpu) {
  vitte::Scheduler sched(2);
  sched.submit(vitte::Task([] {}));
  sched.join_all();
  std::this_thread::sleep_for(50ms);  // well past the spin
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(300ms);
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used, 0.03) << "idle workers used " << used << " s of CPU in 0.3 s";
  EXPECT_GE(sched.metrics().total.parks, 2u);
  const auto t0 = std::chrono::steady_clock::now();
  auto f = sched.async([] { return std::chrono::steady_clock::now(); });
  EXPECT_LT(f.get() - t0, 50ms) << "a parked worker took too long to wake";
}

namespace {
std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4;  // 4 KiB pages
}
}  // namespace

// Finished tasks give their frames back: memory after 10x more tasks stays flat.
TEST(SchedulerStress, MemoryDoesNotGrowWithFinishedTasks) {
  vitte::Scheduler sched(2);
  auto batch = [&] {
    for (int r = 0; r < 4; ++r) {
      for (int i = 0; i < 50'000; ++i) sched.submit(vitte::Task([] {}));
      sched.join_all();
    }
  };
  batch();
  batch();
  const std::size_t warm = rss_kib();
  const std::int64_t frames_warm = sched.metrics().frames_live;
  const std::size_t rounds = vitte::test::scaled(10);
  for (std::size_t i = 0; i < rounds; ++i) batch();
  const std::size_t after = rss_kib();
  const std::int64_t frames_after = sched.metrics().frames_live;
  // Exact, allocator-independent: frames held after 10x more tasks are bounded by the two
  // workers' pool caps, whatever the number of finished tasks.
  EXPECT_LE(frames_after, 2 * 4096) << "frames held: " << frames_warm << " after warm-up, " << frames_after
                                    << " after " << rounds * 200'000 << " more tasks";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan's quarantine keeps freed memory resident, and TSan's shadow grows with every
  // address its allocator hands out, so RSS says nothing about us here (measured under
  // TSan: +8.04 MiB against the 8 MiB bound); the exact frame count above still holds.
  (void)warm;
  (void)after;
#else
  EXPECT_LT(after, warm + 8 * 1024) << "RSS grew from " << warm << " KiB to " << after << " KiB after "
                                    << rounds * 200'000 << " more tasks";
#endif
}

TEST(Scheduler, SubmitToTheLargestNodeNumberIsRefused) {
  vitte::Scheduler sched(1);
  EXPECT_THROW(sched.submit(vitte::Task([] {}), {.node = ~0u}), vitte::UsageError)
      << "~0u is not a node (it was an internal 'any node' sentinel)";
}

// The spellings that #18 deprecated (CHANGELOG.md) still do what they did.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
vitte::task<int> seven() { co_return 7; }
TEST(Scheduler, DeprecatedSpellingsStillWork) {
  vitte::Scheduler sched(1);
  std::atomic<int> ran{0};
  sched.submit(vitte::Task::spawn([&] { ran.fetch_add(1); }));
  sched.submit(vitte::Task([&] { ran.fetch_add(1); }), 0);
  EXPECT_THROW(sched.submit(vitte::Task([] {}), -1), vitte::UsageError);
  EXPECT_THROW(sched.submit(vitte::Task([] {}), ~0u), vitte::UsageError);
  EXPECT_EQ(sched.async(0u, [] { return 3; }).get(), 3);
  sched.spawn(seven());
  vitte::Graph g("old");
  g.add([&] { ran.fetch_add(1); }).on_node(0);
  sched.run(g).wait();
  sched.join_all();
  EXPECT_EQ(ran.load(), 3);
}
#pragma GCC diagnostic pop

TEST(Scheduler, AsyncToANodeNumberOf2To31OrMoreIsRefused) {
  // The node was cast to int: 2^31 and above became -1, "the caller's node" (issue #17).
  vitte::Scheduler sched(1);
  std::atomic<int> ran{0};
  for (unsigned node : {~0u, 1u << 31, static_cast<unsigned>(sched.topology().nodes().size())}) {
    try {
      (void)sched.async([&] { ran++; }, {.node = node});
      ADD_FAILURE() << "async(" << node << ", fn) was accepted";
    } catch (const vitte::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("node " + std::to_string(node)), std::string::npos) << e.what();
    }
  }
  sched.join_all();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(sched.async([] { return 3; }, {.node = 0u}).get(), 3);
}

TEST(Scheduler, ClosuresBoxedOffTheWorkersAreCounted) {
  // Task::spawn on a thread that is not a worker boxes where no worker counts it; the
  // scheduler that takes the task does (issue #17: 1.1 M boxed, 100,000 reported).
  vitte::Scheduler sched(2);
  std::array<char, 300> big{};
  const std::uint64_t before = sched.metrics().total.boxed;
  constexpr int kOutside = 1000;
  for (int i = 0; i < kOutside; ++i) sched.submit(vitte::Task([big] { (void)big; }));
  vitte::TaskGroup g(sched);
  for (int i = 0; i < kOutside; ++i) g.run([big] { (void)big; });
  g.wait();
  { auto unsubmitted = vitte::Task([big] { (void)big; }); }  // never reaches a scheduler
  sched.join_all();
  EXPECT_EQ(sched.metrics().total.boxed - before, 2u * kOutside);
}

// Backpressure: a bounded scheduler keeps each node's external backlog at the bound.
TEST(Scheduler, BoundedBacklogFailsWithTheTaskKept) {
  vitte::Options o;
  o.workers = 1;
  o.max_backlog = 4;
  o.on_backlog_full = vitte::Options::BacklogFullAction::Fail;
  vitte::Scheduler sched(o);
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  // Occupy the only worker, then fill the backlog.
  sched.submit(vitte::Task([&] {
    while (!release.load()) std::this_thread::sleep_for(1ms);
  }));
  while (sched.metrics().total.injected_taken == 0) std::this_thread::sleep_for(1ms);
  for (int i = 0; i < 4; ++i) sched.submit(vitte::Task([&] { ran++; }));
  auto t = vitte::Task([&] { ran += 100; });
  EXPECT_THROW(sched.submit(std::move(t)), vitte::BacklogFull);
  EXPECT_TRUE(static_cast<bool>(t)) << "a refused task stays with the caller";
  release = true;
  sched.join_all();
  EXPECT_EQ(ran.load(), 4);
  sched.submit(std::move(t));  // room again
  sched.join_all();
  EXPECT_EQ(ran.load(), 104);
}

TEST(SchedulerStress, BoundedBacklogBlocksProducersAndLosesNothing) {
  vitte::Options o;
  o.workers = 2;
  o.max_backlog = 64;
  vitte::Scheduler sched(o);
  std::atomic<std::int64_t> queued_peak{0}, queued{0};
  std::atomic<std::size_t> ran{0};
  const std::size_t per = vitte::test::scaled(20'000);
  std::vector<std::thread> producers;
  for (int p = 0; p < 3; ++p)
    producers.emplace_back([&] {
      for (std::size_t i = 0; i < per; ++i) {
        const std::int64_t q = queued.fetch_add(1) + 1;
        std::int64_t peak = queued_peak.load();
        while (q > peak && !queued_peak.compare_exchange_weak(peak, q)) {
        }
        sched.submit(vitte::Task([&] {
          queued.fetch_sub(1);
          ran.fetch_add(1, std::memory_order_relaxed);
        }));
      }
    });
  for (auto& t : producers) t.join();
  sched.join_all();
  EXPECT_EQ(ran.load(), 3 * per);
  // Tasks counted before submit() and uncounted when they start: at most the bound
  // queued, plus one being submitted per producer, plus one running per worker.
  EXPECT_LE(queued_peak.load(), 64 + 3 + 2);
}

// A backlog of external work leaves freed heap behind; once every worker is idle the
// runtime hands it back to the system.
TEST(Scheduler, MemoryIsGivenBackOnceIdleAfterABigBacklog) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer allocators keep freed memory resident by design";
#else
  // In a process of its own: the huge heap it leaves (even trimmed) would make RSS-based
  // tests that follow measure its re-use, not themselves.
  const int rc = vitte::test::in_child([] {
    vitte::Scheduler sched(1);
    const std::size_t before = rss_kib();
    std::atomic<bool> release{false};
    sched.submit(vitte::Task([&] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
    }));
    const std::size_t n = 1'000'000;  // 128 MB of frames queued
    for (std::size_t i = 0; i < n; ++i) sched.submit(vitte::Task([] {}));
    const std::size_t queued = rss_kib();
    release = true;
    sched.join_all();
    for (int i = 0; i < 200 && rss_kib() > before + (queued - before) / 4; ++i) std::this_thread::sleep_for(10ms);
    const std::size_t idle = rss_kib();
    std::printf("RSS %zu KiB before, %zu KiB with the backlog, %zu KiB idle after it\n", before, queued, idle);
    if (queued < before + 64 * 1024) return 2;  // the backlog should have cost memory
    return idle < before + (queued - before) / 4 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0) << "1: memory was not given back; 2: the backlog cost no memory; -1: crashed or hung";
#endif
}

TEST(Scheduler, StackSizeIsAppliedAndCheckedAndWorkersAreNamed) {
  vitte::Options o;
  o.workers = 1;
  o.stack_size = 1000;
  EXPECT_THROW(vitte::Scheduler bad(o), vitte::PlanError);
  o.stack_size = SIZE_MAX;  // must not wrap round to "the default"
  EXPECT_THROW(vitte::Scheduler bad(o), vitte::PlanError);
  o.stack_size = 256 * 1024 + 1;  // rounded up to pages
  vitte::Scheduler sched(o);
  auto [stack, name] = sched.async([] {
                              pthread_attr_t a;
                              std::size_t size = 0;
                              pthread_getattr_np(pthread_self(), &a);
                              pthread_attr_getstacksize(&a, &size);
                              pthread_attr_destroy(&a);
                              char n[16] = {};
                              pthread_getname_np(pthread_self(), n, sizeof n);
                              return std::pair<std::size_t, std::string>(size, n);
                            }).get();
  EXPECT_GE(stack, 256u * 1024 + 1);
  // glibc adds the static TLS block to a requested stack (large under the sanitizers), so
  // the upper bound only says "not the 8 MiB default".
  EXPECT_LT(stack, std::size_t{4} << 20);
  EXPECT_EQ(name, "vitte-w0/n0");
}

// Work the workers inject themselves (submit to a node from a task) counts towards the
// backlog but takes no slot; it must not open extra room for external producers.
TEST(Scheduler, WorkerInjectionsDoNotWidenTheBound) {
  vitte::Options o;
  o.workers = 1;
  o.max_backlog = 4;
  o.on_backlog_full = vitte::Options::BacklogFullAction::Fail;
  vitte::Scheduler sched(o);
  std::atomic<int> ran{0};
  sched.async([&] {
         for (int i = 0; i < 100; ++i) sched.submit(vitte::Task([&] { ran++; }), {.node = 0});
       }).get();
  sched.join_all();  // those 100 ran and gave their places back
  std::atomic<bool> release{false};
  sched.submit(vitte::Task([&] {
    while (!release.load()) std::this_thread::sleep_for(1ms);
  }));
  while (sched.metrics().total.injected_taken < 102) std::this_thread::sleep_for(1ms);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    try {
      sched.submit(vitte::Task([&] { ran++; }));
      ++accepted;
    } catch (const vitte::BacklogFull&) {
    }
  }
  release = true;
  sched.join_all();
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(ran.load(), 104);
}

// A worker about to sleep counts only work it may take: with steal_scope = "node", a backlog
// on another node (its injection queue, behind a busy worker) does not keep it spinning.
TEST(Scheduler, WorkOfAnotherNodeItMayNotTakeDoesNotKeepAWorkerAwake) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("node:2 core:1 pu:1");
  o.placement = vitte::Placement::Unpinned;
  o.config = vitte::Config::parse("[scheduling]\nsteal_scope = \"node\"\n", "node-only.toml");
  vitte::Scheduler sched(o);
  std::atomic<bool> release{false};
  sched.submit(vitte::Task([&] {
                 while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
               }), {.node = 1});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  sched.submit(vitte::Task([] {}), {.node = 1});  // waits behind node 1's busy worker
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double cpu0 = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double used = process_cpu_seconds() - cpu0;
  release = true;
  sched.join_all();
  // The busy worker sleeps in 1 ms steps; node 0's worker must be parked, not spinning.
  EXPECT_LT(used, 0.1) << "CPU seconds used by an idle scheduler in 300 ms";
}

// vitte::dist under mpirun (tests/meson.build runs it on 1, 2, 3 and 4 ranks). Every rank
// runs every test in the same order; the cluster is made once, in main().
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dist/cluster_core.hpp"
#include "dist/messages.hpp"
#include "tests/dist/dist_kernels.hpp"
#include "vitte/coro.hpp"
#include "vitte/dist.hpp"

namespace vd = vitte::dist;

namespace vitte::dist::detail {
struct ClusterAccess {
  static ClusterCore* core(Cluster& c) { return c.core_.get(); }
};
}  // namespace vitte::dist::detail
namespace k = vitte::dist_kernels;

namespace {

vd::Cluster* g_cluster = nullptr;
vd::Cluster& cluster() { return *g_cluster; }

int whoami() { return vd::Cluster::current()->rank(); }

long pfib(int n, int cutoff) {
  if (n < cutoff) return k::fib_serial(n);
  auto a = cluster().spawn<&pfib>(n - 1, cutoff);
  const long b = pfib(n - 2, cutoff);
  return a.get() + b;
}

long queens_task(int n, std::uint32_t cols, std::uint32_t d1, std::uint32_t d2) { return k::queens_from(n, cols, d1, d2); }

// Splits nqueens(n) after the first two rows into pool tasks; sums their futures.
long pqueens(int n) {
  const std::uint32_t all = (1u << n) - 1;
  std::vector<vitte::Future<long>> parts;
  for (int a = 0; a < n; ++a) {
    const std::uint32_t b1 = 1u << a;
    std::uint32_t free = all & ~(b1 | ((b1 << 1) & all) | (b1 >> 1));
    while (free != 0) {
      const std::uint32_t b2 = free & (0u - free);
      free ^= b2;
      parts.push_back(cluster().spawn<&queens_task>(n, b1 | b2, (((b1 << 1) | b2) << 1) & all, ((b1 >> 1) | b2) >> 1));
    }
  }
  long total = 0;
  for (auto& f : parts) total += f.get();
  return total;
}

std::atomic<std::uint64_t> g_uts_nodes{0};

// Explores a subtree depth-first; every 64 nodes it gives the oldest half of its stack
// back to the pool, where idle ranks can steal it.
void uts_task(std::uint64_t id, int depth, k::UtsParams p) {
  const std::uint64_t count = k::uts_explore(id, depth, p, 64, [&p](std::uint64_t n, int d) {
    (void)cluster().spawn<&uts_task>(n, d, p);
  });
  g_uts_nodes.fetch_add(count, std::memory_order_relaxed);
}

std::atomic<std::uint64_t> g_slow_runs{0};
void slow_task() {
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  g_slow_runs.fetch_add(1, std::memory_order_relaxed);
}

std::string boom(std::string what) { throw std::runtime_error("boom: " + what); }

std::atomic<std::uint64_t> g_chain_links{0};
void chain(int left) {
  g_chain_links.fetch_add(1, std::memory_order_relaxed);
  if (left > 0) (void)cluster().async<&chain>((whoami() + 1) % cluster().size(), left - 1);
}

std::atomic<std::uint64_t> g_tree_nodes{0};
void tree(int depth, int salt) {
  g_tree_nodes.fetch_add(1, std::memory_order_relaxed);
  if (depth == 0) return;
  // One child by explicit placement on another rank, one into the pool.
  (void)cluster().async<&tree>((whoami() + 1 + salt) % cluster().size(), depth - 1, salt + 1);
  (void)cluster().spawn<&tree>(depth - 1, salt + 2);
}

std::vector<int> echo_vec(std::vector<int> v, std::string s) {
  v.push_back(static_cast<int>(s.size()));
  return v;
}

struct Point {  // trivially copyable: sent as bytes
  double x, y;
};
Point mirror(Point p) { return Point{p.y, p.x}; }

void tiny(std::uint64_t) {}

// A user type whose cereal save() throws once its flag is set: shipping it fails.
struct Touchy {
  int value = 0;
  bool refuse = false;
  template <class A>
  void save(A& ar) const {
    if (refuse) throw std::domain_error("Touchy refuses to travel");
    ar(value);
  }
  template <class A>
  void load(A& ar) {
    ar(value);
  }
};
int touchy_sleep(Touchy t) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return t.value;
}

vd::Functions functions() {
  vd::Functions f;
  f.add<&whoami>("whoami")
      .add<&pfib>("pfib")
      .add<&queens_task>("queens")
      .add<&uts_task>("uts")
      .add<&slow_task>("slow")
      .add<&boom>("boom")
      .add<&chain>("chain")
      .add<&tree>("tree")
      .add<&echo_vec>("echo_vec")
      .add<&mirror>("mirror")
      .add<&tiny>("tiny")
      .add<&touchy_sleep>("touchy_sleep");
  return f;
}

vitte::task<long> coro_calls(int target) {
  auto who = cluster().async<&whoami>(target);
  const int r = co_await who;
  std::string msg;
  const std::string arg = "coro";
  auto failing = cluster().async<&boom>(target, arg);
  try {
    (void)co_await failing;
  } catch (const vd::RemoteError& e) {
    msg = e.what();
  } catch (const std::runtime_error& e) {
    msg = e.what();  // target was this rank: the exception itself
  }
  co_return r * 1000 + (msg.find("boom: coro") != std::string::npos ? 1 : 0);
}

}  // namespace

TEST(Dist, AsyncRunsOnTheNamedRank) {
  for (int r = 0; r < cluster().size(); ++r) EXPECT_EQ(cluster().async<&whoami>(r).get(), r);
  cluster().join_all();
}

TEST(Dist, ArgumentsAndResultsRoundTrip) {
  const int other = (cluster().rank() + 1) % cluster().size();
  auto v = cluster().async<&echo_vec>(other, std::vector<int>{1, 2, 3}, std::string("four")).get();
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3, 4}));
  auto p = cluster().async<&mirror>(other, Point{1.5, -2.0}).get();
  EXPECT_EQ(p.x, -2.0);
  EXPECT_EQ(p.y, 1.5);
  cluster().join_all();
}

TEST(Dist, FibWithCutoffThroughThePool) {
  if (cluster().rank() == 0) EXPECT_EQ(pfib(27, 18), 196418);
  cluster().join_all();
}

TEST(Dist, NQueens12) {
  if (cluster().rank() == 0) EXPECT_EQ(pqueens(12), 14200);
  cluster().join_all();
}

TEST(Dist, UnbalancedTreeSearchCountsEveryNode) {
  k::UtsParams p;
  p.root_children = 64;
  p.seed = 34;  // 67,369 nodes, 60 % of them under one child of the root
  p.work = 20;
  const std::uint64_t expect = k::uts_serial(p.seed, 0, p);
  ASSERT_GT(expect, 10000u);  // a tree worth distributing
  g_uts_nodes.store(0);
  cluster().join_all();  // every rank reset its count before any task can reach it
  if (cluster().rank() == 0) (void)cluster().spawn<&uts_task>(p.seed, 0, p);
  cluster().join_all();
  EXPECT_EQ(cluster().sum(g_uts_nodes.load()), expect);
}

TEST(Dist, IdleRanksStealFromTheBusyOne) {
  if (cluster().size() < 2) GTEST_SKIP() << "one rank: nobody to steal";
  g_slow_runs.store(0);
  // Before the barrier: once rank 0 leaves it and spawns, this rank may steal at once,
  // even before its program thread returns from join_all().
  const auto before = cluster().stats();
  cluster().join_all();  // every rank reset its count before any task can reach it
  // 400 tasks of 1 ms on rank 0: with 2 workers it alone needs 200 ms, and the other ranks
  // ask for work within a millisecond of their pools running dry.
  if (cluster().rank() == 0)
    for (int i = 0; i < 400; ++i) (void)cluster().spawn<&slow_task>();
  cluster().join_all();
  const auto after = cluster().stats();
  const std::uint64_t here = g_slow_runs.load();
  EXPECT_EQ(cluster().sum(here), 400u);
  const std::uint64_t elsewhere = cluster().sum(cluster().rank() == 0 ? std::uint64_t{0} : here);
  EXPECT_GT(elsewhere, 0u) << "no task ran outside rank 0";
  const auto stolen_in = after.tasks_stolen_in - before.tasks_stolen_in;
  EXPECT_EQ(cluster().sum(stolen_in), cluster().sum(after.tasks_given - before.tasks_given));
}

TEST(Dist, RemoteExceptionsNameTheRank) {
  const int other = (cluster().rank() + 1) % cluster().size();
  auto f = cluster().async<&boom>(other, std::string("x"));
  if (other == cluster().rank()) {
    EXPECT_THROW(f.get(), std::runtime_error);
  } else {
    try {
      f.get();
      ADD_FAILURE() << "no exception";
    } catch (const vd::RemoteError& e) {
      EXPECT_EQ(e.rank(), other);
      EXPECT_EQ(e.function(), "boom");
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(other)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("std::runtime_error: boom: x"), std::string::npos) << e.what();
    }
  }
  // A pool task that throws fails its future wherever it ran, and nothing hangs.
  std::vector<vitte::Future<std::string>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(cluster().spawn<&boom>(std::to_string(i)));
  int failed = 0;
  for (auto& x : fs) {
    try {
      x.get();
    } catch (const std::runtime_error&) {
      ++failed;
    }
  }
  EXPECT_EQ(failed, 50);
  cluster().join_all();
}

TEST(Dist, CoroutinesAwaitRemoteFutures) {
  const int other = (cluster().rank() + 1) % cluster().size();
  EXPECT_EQ(vitte::sync_wait(cluster().scheduler(), coro_calls(other)), other * 1000 + 1);
  cluster().join_all();
}

TEST(Dist, TerminationCountsChainsAndTrees) {
  g_chain_links.store(0);
  g_tree_nodes.store(0);
  cluster().join_all();  // every rank reset its counts before any task can reach them
  // Every rank starts a chain of 40 hops around the ring and a tree of depth 7 (each node
  // one remote call and one pool spawn, futures dropped): join_all() must see them all.
  (void)cluster().async<&chain>((cluster().rank() + 1) % cluster().size(), 39);
  (void)cluster().spawn<&tree>(7, cluster().rank());
  cluster().join_all();
  const auto n = static_cast<std::uint64_t>(cluster().size());
  EXPECT_EQ(cluster().sum(g_chain_links.load()), 40 * n);
  EXPECT_EQ(cluster().sum(g_tree_nodes.load()), ((1u << 8) - 1) * n);
}

// Messages a correct rank never sends, forged through the core: each is refused with an
// error naming the rank, and nothing waits forever.
TEST(Dist, ProtocolErrorsNameTheRank) {
  if (cluster().size() < 2) GTEST_SKIP() << "one rank: nobody to send to";
  auto* core = vd::detail::ClusterAccess::core(cluster());
  auto expect_remote = [](vitte::Future<int> f, const std::string& part) {
    try {
      f.get();
      ADD_FAILURE() << "no error";
    } catch (const vd::RemoteError& e) {
      EXPECT_EQ(e.rank(), 1);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  if (cluster().rank() == 0) {
    vitte::Promise<int> unknown(cluster().scheduler());
    auto f1 = unknown.get_future();
    vd::detail::send_call(core, 1, 9999, "", std::make_unique<vd::detail::TypedSlot<int>>(std::move(unknown)));
    expect_remote(std::move(f1), "rank 1 has no function #9999");
    vitte::Promise<int> garbled(cluster().scheduler());
    auto f2 = garbled.get_future();
    const auto fn = vd::detail::index_of(core, vd::detail::Fn<&whoami>::key(), "test");
    vd::detail::send_call(core, 1, fn, "garbage", std::make_unique<vd::detail::TypedSlot<int>>(std::move(garbled)));
    expect_remote(std::move(f2), "malformed arguments for \"whoami\" sent to rank 1");
    core->post(1, vd::detail::kTasks, "xyz");
  }
  if (cluster().rank() == 1) {
    try {
      cluster().join_all();
      ADD_FAILURE() << "join_all() reported nothing";
    } catch (const vitte::Error& e) {
      EXPECT_NE(std::string(e.what()).find("refused a malformed tasks message from rank 0"), std::string::npos)
          << e.what();
    }
  } else {
    cluster().join_all();
  }
  cluster().join_all();  // the error was reported once
}

std::size_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

// Finished cluster work leaves nothing behind: reply slots, pool items, tokens and sent
// buffers are all freed. The allocators' caches fill during the first rounds (a few MiB on
// rank 0, and 1-2 MiB of noise after: 2 million tasks on one rank added 1 MiB in all,
// 2026-12-07); after that, 45 more rounds of 10,000 spawns (futures dropped, some stolen)
// must not add 4 MiB: a leak of 10 bytes per task would.
TEST(Dist, MemoryDoesNotGrowWithFinishedTasks) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "sanitizers keep freed memory in quarantine";
#endif
  auto round = [] {
    if (cluster().rank() == 0)
      for (std::uint64_t i = 0; i < 10'000; ++i) (void)cluster().spawn<&tiny>(i);
    cluster().join_all();
  };
  for (int i = 0; i < 5; ++i) round();
  const std::size_t warm = rss_kib();
  for (int i = 0; i < 45; ++i) round();
  const std::size_t after = rss_kib();
  std::printf("rank %d RSS: %zu KiB after 5 rounds, %zu KiB after 50\n", cluster().rank(), warm, after);
  EXPECT_LT(after, warm + 4096) << "RSS grew by more than 4 MiB over 450,000 finished tasks";
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// An idle rank (workers parked, the communication thread backed off, Open MPI's own
// threads included) costs little CPU: the process's CPU per idle second, like the single-
// machine scheduler's Timer.IdleSchedulerWithPendingTimersBurnsAlmostNoCpu.
TEST(Dist, IdleClusterBurnsLittleCpu) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "sanitizers multiply the cost of each wake-up";
#endif
  cluster().join_all();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // past the spin and yield phases
  const auto s0 = cluster().stats();
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per_second = (cpu_seconds() - cpu0) / wall;
  const auto s1 = cluster().stats();
  const double comm = (s1.comm_idle_cpu_seconds - s0.comm_idle_cpu_seconds) /
                      std::max(1e-9, s1.comm_idle_seconds - s0.comm_idle_seconds);
  std::printf("rank %d idle: %.2f ms of CPU per second (process), communication thread %.2f ms per idle second\n",
              cluster().rank(), per_second * 1e3, comm * 1e3);
  EXPECT_LT(per_second, 0.030);
  cluster().join_all();
}

// A task whose arguments cannot be serialised when a thief takes it fails its own future
// with the exception; the others run, and nothing hangs or terminates.
TEST(Dist, ArgumentsThatRefuseToTravelFailTheirFuture) {
  if (cluster().size() < 2) GTEST_SKIP() << "one rank: nothing is shipped";
  int failed = 0, ran = 0;
  if (cluster().rank() == 0) {
    std::vector<vitte::Future<int>> fs;
    for (int i = 0; i < 200; ++i) fs.push_back(cluster().spawn<&touchy_sleep>(Touchy{i, i % 2 == 0}));
    for (auto& f : fs) {
      try {
        (void)f.get();
        ++ran;
      } catch (const std::domain_error& e) {
        EXPECT_STREQ(e.what(), "Touchy refuses to travel");
        ++failed;
      }
    }
    EXPECT_EQ(failed + ran, 200);
    EXPECT_GE(ran, 100);  // every odd one, and the even ones that ran here
  }
  cluster().join_all();
}

TEST(Dist, MisuseIsRefused) {
  EXPECT_THROW((void)cluster().async<&whoami>(cluster().size()), vitte::UsageError);
  EXPECT_THROW((void)cluster().async<&whoami>(-1), vitte::UsageError);
  vd::Functions f;
  f.add<&whoami>("a");
  EXPECT_THROW(f.add<&whoami>("b"), vitte::UsageError);
  EXPECT_THROW(f.add<&pfib>("a"), vitte::UsageError);
  EXPECT_THROW(f.add<&pfib>(""), vitte::UsageError);
  EXPECT_THROW(vd::Cluster(cluster().scheduler(), f), vd::SetupError);  // one per process
  cluster().join_all();
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  vitte::Scheduler sched(2);
  const auto fns = functions();
  vd::Cluster c(sched, fns, &argc, &argv);
  g_cluster = &c;
  // Only rank 0 prints the progress; every rank's failures still reach stderr.
  if (c.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  const int failed = static_cast<int>(c.sum(static_cast<long>(rc != 0)));
  c.shutdown();
  // Work after shutdown() is refused, not lost silently.
  int refused = 0;
  try {
    (void)c.spawn<&whoami>();
  } catch (const vitte::UsageError&) {
    ++refused;
  }
  try {
    (void)c.async<&whoami>(c.rank());
  } catch (const vitte::UsageError&) {
    ++refused;
  }
  try {
    (void)c.sum(1);
  } catch (const vitte::UsageError&) {
    ++refused;
  }
  if (refused != 3) {
    std::fprintf(stderr, "rank %d: work after shutdown() was accepted\n", c.rank());
    return 1;
  }
  if (c.rank() == 0 && failed != 0) std::fprintf(stderr, "dist_test: %d rank(s) failed\n", failed);
  return failed != 0 ? 1 : 0;
}

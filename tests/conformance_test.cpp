// The same test bodies in real and deterministic mode (issue #11): the deterministic mode runs
// the public API unchanged. Each body checks results, never timings.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "det_kernels.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

namespace {

struct Mode {
  const char* name;
  bool deterministic;
  std::uint64_t seed;
  vitte::Strategy strategy;
};

class Conformance : public testing::TestWithParam<Mode> {
 protected:
  vitte::Options options(std::size_t workers = 3) const {
    vitte::Options o;
    o.workers = workers;
    if (GetParam().deterministic)
      o.deterministic = vitte::DeterministicOptions{.seed = GetParam().seed, .strategy = GetParam().strategy};
    return o;
  }
};

using vitte::test::cofib;
using vitte::test::fib;

}  // namespace

TEST_P(Conformance, ForkJoinAndParallelFor) {
  vitte::Scheduler s(options());
  long r = 0;
  vitte::TaskGroup g(s);
  g.run([&] { r = fib(18); });
  g.wait();
  EXPECT_EQ(r, 2584);
  std::vector<int> v(10000, 0);
  vitte::parallel_for(s, 0, v.size(), 64, [&](std::size_t i) { v[i] = static_cast<int>(i % 7); });
  long sum = std::accumulate(v.begin(), v.end(), 0L);
  long want = 0;
  for (std::size_t i = 0; i < v.size(); ++i) want += static_cast<long>(i % 7);
  EXPECT_EQ(sum, want);
}

TEST_P(Conformance, DetachedTasksAndJoinAll) {
  vitte::Scheduler s(options());
  std::atomic<int> n{0};
  for (int i = 0; i < 500; ++i) s.submit(vitte::Task([&] { n.fetch_add(1); }));
  s.join_all();
  EXPECT_EQ(n.load(), 500);
}

TEST_P(Conformance, FuturesAndContinuations) {
  vitte::Scheduler s(options());
  vitte::Future<int> f = s.async([] { return 20; }).then([](int x) { return x + 1; }).then([](int x) { return x * 2; });
  EXPECT_EQ(f.get(), 42);
  auto [a, b] = vitte::when_all(s.async([] { return 1; }), s.async([] { return std::string("two"); })).get();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  vitte::Promise<int> p(s);
  vitte::Future<int> pf = p.get_future().then([](int x) { return x + 1; });
  s.submit(vitte::Task([p = std::move(p)]() mutable { p.set_value(9); }));
  EXPECT_EQ(pf.get(), 10);
  vitte::Future<int> bad = s.async([]() -> int { throw std::runtime_error("x"); });
  EXPECT_THROW(bad.get(), std::runtime_error);
}

TEST_P(Conformance, Coroutines) {
  vitte::Scheduler s(options());
  EXPECT_EQ(vitte::sync_wait(s, cofib(15)), 610);
  auto body = [](vitte::Scheduler& sched) -> vitte::task<int> {
    int total = 0;
    for (int i = 0; i < 5; ++i) {
      co_await vitte::yield();
      total += co_await sched.async([i] { return i; });
    }
    co_await vitte::sleep_for(2ms);
    co_return total;
  };
  EXPECT_EQ(vitte::sync_wait(s, body(s)), 10);
  std::stop_source stop;
  std::atomic<bool> cancelled{false};
  auto forever = [&]() -> vitte::task<void> {
    try {
      co_await vitte::sleep_for(std::chrono::hours(1000));
    } catch (const vitte::Cancelled&) {
      cancelled = true;
    }
  };
  s.start(forever(), {}, stop.get_token());
  s.after(1ms, [&] { stop.request_stop(); });
  s.join_all();
  EXPECT_TRUE(cancelled.load());
}

TEST_P(Conformance, GraphsWithSubflowsAndErrors) {
  vitte::Scheduler s(options());
  vitte::Graph g("conformance");
  std::atomic<int> leaves{0};
  std::vector<int> order;
  auto a = g.add([&] { order.push_back(1); });
  auto b = g.add([&](vitte::Subflow& sf) {
    for (int i = 0; i < 10; ++i) sf.add([&] { leaves.fetch_add(1); });
  });
  auto c = g.add([&] { order.push_back(2); });
  a.precede(b);
  b.precede(c);
  for (int run = 0; run < 3; ++run) s.run(g).wait();
  EXPECT_EQ(leaves.load(), 30);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2, 1, 2}));
  vitte::Graph bad("bad");
  auto x = bad.add([] { throw std::runtime_error("graph"); });
  auto y = bad.add([] {});
  x.precede(y);
  EXPECT_THROW(s.run(bad).wait(), std::runtime_error);
}

TEST_P(Conformance, TimersRunAndCancel) {
  vitte::Scheduler s(options());
  std::atomic<int> once{0}, ticks{0};
  s.after(2ms, [&] { once.fetch_add(1); });
  vitte::Timer never = s.after(1h, [&] { once.fetch_add(100); });
  EXPECT_TRUE(never.cancel());
  vitte::Timer tick = s.every(1ms, [&] { ticks.fetch_add(1); });
  auto wait3 = [&]() -> vitte::task<void> {
    while (ticks.load() < 3) co_await vitte::sleep_for(1ms);
  };
  vitte::sync_wait(s, wait3());
  tick.cancel();
  s.join_all();
  EXPECT_EQ(once.load(), 1);
  EXPECT_GE(ticks.load(), 3);
}

TEST_P(Conformance, PoliciesOrderTheirWork) {
  vitte::Options o = options(1);  // one worker: the order is the policy's alone
  o.policy = vitte::Policy::Priority;
  vitte::Scheduler s(o);
  std::vector<int> order;
  // Queued from a task on the only worker: nothing runs until it returns, so the queue
  // alone decides the order.
  s.submit(vitte::Task([&] {
    for (int i = 0; i < 3; ++i)
      s.submit(vitte::Task([&order, i] { order.push_back(i); }),
               vitte::TaskOptions{.priority = vitte::Priority::Low});
    s.submit(vitte::Task([&order] { order.push_back(9); }), vitte::TaskOptions{.priority = vitte::Priority::High});
  }));
  s.join_all();
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order.front(), 9) << "High before Low";
}

TEST_P(Conformance, IsolationRegions) {
  vitte::Scheduler s(options());
  std::atomic<int> n{0};
  vitte::TaskGroup g(s);
  g.run([&] {
    vitte::isolate([&] {
      vitte::TaskGroup inner;
      for (int i = 0; i < 20; ++i) inner.run([&] { n.fetch_add(1); });
      inner.wait();
    });
  });
  g.wait();
  EXPECT_EQ(n.load(), 20);
}

INSTANTIATE_TEST_SUITE_P(Modes, Conformance,
                         testing::Values(Mode{"real", false, 0, vitte::Strategy::Random},
                                         Mode{"random_seed1", true, 1, vitte::Strategy::Random},
                                         Mode{"random_seed2", true, 2, vitte::Strategy::Random},
                                         Mode{"pct_seed3", true, 3, vitte::Strategy::Pct}),
                         [](const testing::TestParamInfo<Mode>& i) { return std::string(i.param.name); });

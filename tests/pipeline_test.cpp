// run_pipeline: order, exclusion, the in-flight bound, move-only items, errors,
// cancellation, options, isolation and every kind of caller.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

using vitte::StageMode;

// Work of a length that varies with the item: about `spins` loop turns, 0 to 4x.
std::uint64_t burn(std::uint64_t seed, unsigned spins) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  const unsigned n = static_cast<unsigned>((x >> 40) % (4 * spins + 1));
  for (unsigned i = 0; i < n; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

// A source of the items 0 .. n-1.
auto count_to(std::size_t n, std::atomic<std::size_t>* calls = nullptr) {
  return vitte::source([n, calls, i = std::size_t{0}](vitte::PipelineStop& stop) mutable -> std::size_t {
    if (calls != nullptr) calls->fetch_add(1, std::memory_order_relaxed);
    if (i == n) stop.done();
    return i++;
  });
}

// Items alive right now, for checking that every item is destroyed.
std::atomic<long> g_alive{0};
struct Tracked {
  std::size_t v;
  explicit Tracked(std::size_t x) : v(x) { g_alive.fetch_add(1); }
  Tracked(Tracked&& o) noexcept : v(o.v) { g_alive.fetch_add(1); }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { g_alive.fetch_sub(1); }
};

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The in-order output of a pipeline with parallel middle stages of random lengths.
std::vector<std::size_t> ordered_run(vitte::Scheduler& s, std::size_t n, std::size_t cap, StageMode middle) {
  std::vector<std::size_t> out;
  vitte::run_pipeline(s, cap, count_to(n),
                      vitte::stage(StageMode::Parallel, [](std::size_t i) { return std::make_pair(i, burn(i, 200)); }),
                      vitte::stage(middle, [](std::pair<std::size_t, std::uint64_t> p) { return p.first + 0 * burn(p.second, 50); }),
                      vitte::sink(StageMode::SerialInOrder, [&](std::size_t i) { out.push_back(i); }));
  return out;
}

}  // namespace

TEST(Pipeline, InOrderSinkSeesTheSourceOrder) {
  const std::size_t n = vitte::test::scaled(20'000);
  std::vector<std::size_t> expect(n);
  for (std::size_t i = 0; i < n; ++i) expect[i] = i;
  for (std::size_t workers : {1u, 2u, 4u}) {
    vitte::Scheduler s(workers);
    for (std::size_t cap : {std::size_t{1}, std::size_t{3}, 4 * workers, std::size_t{64}}) {
      EXPECT_EQ(ordered_run(s, n, cap, StageMode::Parallel), expect) << workers << " workers, cap " << cap;
      EXPECT_EQ(ordered_run(s, n, cap, StageMode::SerialInOrder), expect) << workers << " workers, cap " << cap;
      EXPECT_EQ(ordered_run(s, n, cap, StageMode::SerialOutOfOrder), expect) << workers << " workers, cap " << cap;
    }
  }
}

// A serial middle stage in order sees the source order too, and so does a second one.
TEST(Pipeline, InOrderMiddleStagesSeeTheSourceOrder) {
  vitte::Scheduler s(4);
  const std::size_t n = vitte::test::scaled(20'000);
  std::size_t next1 = 0, next2 = 0, done = 0;
  bool ordered1 = true, ordered2 = true;  // one per stage: the two stages run concurrently
  vitte::run_pipeline(s, 16, count_to(n), vitte::stage(StageMode::Parallel, [](std::size_t i) { return i + 0 * burn(i, 100); }),
                      vitte::stage(StageMode::SerialInOrder,
                                   [&](std::size_t i) {
                                     ordered1 = ordered1 && i == next1++;
                                     return i;
                                   }),
                      vitte::stage(StageMode::Parallel, [](std::size_t i) { return i + 0 * burn(i + 7, 100); }),
                      vitte::stage(StageMode::SerialInOrder,
                                   [&](std::size_t i) {
                                     ordered2 = ordered2 && i == next2++;
                                     return i;
                                   }),
                      vitte::sink(StageMode::Parallel, [&](std::size_t) { /* any order */ }),
                      vitte::TaskOptions{});
  done = next2;
  EXPECT_TRUE(ordered1);
  EXPECT_TRUE(ordered2);
  EXPECT_EQ(done, n);
}

// Serial stages never run concurrently with themselves; an out-of-order one sees every item.
TEST(Pipeline, SerialStagesNeverOverlapThemselves) {
  for (std::size_t workers : {2u, 4u}) {
    vitte::Scheduler s(workers);
    const std::size_t n = vitte::test::scaled(20'000);
    std::atomic<int> inside{0}, inside_sink{0};
    int worst = 0, worst_sink = 0;
    std::vector<char> seen(n, 0);
    std::atomic<int> par_inside{0}, par_worst{0};
    vitte::run_pipeline(
        s, 8 * workers, count_to(n),
        vitte::stage(StageMode::Parallel,
                     [&](std::size_t i) {
                       vitte::test::raise_max(par_worst, par_inside.fetch_add(1) + 1);
                       (void)burn(i, 300);
                       par_inside.fetch_sub(1);
                       return i;
                     }),
        vitte::stage(StageMode::SerialOutOfOrder,
                     [&](std::size_t i) {
                       worst = std::max(worst, inside.fetch_add(1) + 1);
                       seen[i]++;
                       (void)burn(i, 30);
                       inside.fetch_sub(1);
                       return i;
                     }),
        vitte::sink(StageMode::SerialOutOfOrder, [&](std::size_t i) {
          worst_sink = std::max(worst_sink, inside_sink.fetch_add(1) + 1);
          (void)burn(i, 30);
          inside_sink.fetch_sub(1);
        }));
    EXPECT_EQ(worst, 1) << workers << " workers";
    EXPECT_EQ(worst_sink, 1) << workers << " workers";
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(n)) << "each item once";
    EXPECT_GE(par_worst.load(), 1);
  }
}

// At most max_in_flight items live between the source's call and the sink's.
TEST(Pipeline, MaxInFlightIsNeverExceeded) {
  vitte::Scheduler s(4);
  const std::size_t n = vitte::test::scaled(20'000);
  for (std::size_t cap : {1u, 2u, 5u, 16u}) {
    std::atomic<long> live{0}, worst{0};
    std::set<const void*> slots;  // where the items live: reused, not one per item
    vitte::run_pipeline(
        s, cap, vitte::source([&, i = std::size_t{0}](vitte::PipelineStop& stop) mutable {
          if (i == n) stop.done();
          vitte::test::raise_max(worst, live.fetch_add(1) + 1);
          return i++;
        }),
        vitte::stage(StageMode::Parallel, [](std::size_t i) { return i + 0 * burn(i, 200); }),
        vitte::stage(StageMode::SerialOutOfOrder,
                     [&](std::size_t&& i) {
                       slots.insert(&i);
                       return i;
                     }),
        vitte::sink(cap % 2 ? StageMode::SerialInOrder : StageMode::Parallel, [&](std::size_t) { live.fetch_sub(1); }));
    // The call that said done() counted itself and made no item.
    EXPECT_EQ(live.load(), 1) << cap;
    EXPECT_LE(worst.load(), static_cast<long>(cap)) << cap;
    EXPECT_GE(worst.load(), 1);
    EXPECT_LE(slots.size(), cap) << "memory grows with the items";
  }
}

// Items are moved, never copied; every one is destroyed, also the one done() discards.
TEST(Pipeline, MoveOnlyItems) {
  vitte::Scheduler s(2);
  const std::size_t n = vitte::test::scaled(10'000);
  std::size_t sum = 0;
  vitte::run_pipeline(
      s, 8, vitte::source([&, i = std::size_t{0}](vitte::PipelineStop& stop) mutable {
        if (i == n) stop.done();
        return std::make_unique<Tracked>(i++);
      }),
      vitte::stage(StageMode::Parallel, [](std::unique_ptr<Tracked> p) { return Tracked(p->v * 2); }),
      vitte::stage(StageMode::SerialOutOfOrder, [](Tracked t) { return std::make_unique<Tracked>(t.v + 1); }),
      vitte::sink(StageMode::SerialInOrder, [&](std::unique_ptr<Tracked> p) { sum += p->v; }));
  EXPECT_EQ(sum, n * (n - 1) + n);
  EXPECT_EQ(g_alive.load(), 0);
}

TEST(Pipeline, ZeroItemsAndUsageErrors) {
  vitte::Scheduler s(2);
  std::atomic<std::size_t> calls{0};
  bool sunk = false;
  vitte::run_pipeline(s, 4, count_to(0, &calls), vitte::sink(StageMode::SerialInOrder, [&](std::size_t) { sunk = true; }));
  EXPECT_EQ(calls.load(), 1u);
  EXPECT_FALSE(sunk);
  const std::string m = what_of([&] {
    vitte::run_pipeline(s, 0, count_to(3), vitte::sink(StageMode::Parallel, [](std::size_t) {}));
  });
  EXPECT_NE(m.find("max_in_flight"), std::string::npos) << m;
  EXPECT_THROW((void)vitte::source(StageMode::Parallel, [](vitte::PipelineStop&) { return 1; }), vitte::UsageError);
}

// The first exception from the source, a middle stage or the sink stops the pipeline and
// comes out; no item is left behind; the source is not called after an error.
TEST(Pipeline, ErrorsStopThePipelineAndAreRethrown) {
  const std::size_t n = vitte::test::scaled(20'000), bad = n / 3, cap = 8;
  for (std::size_t workers : {1u, 2u, 4u}) {
    vitte::Scheduler s(workers);
    for (int where = 0; where < 3; ++where) {
      std::atomic<std::size_t> made{0}, sunk{0}, made_at_throw{0};
      std::atomic<bool> after_source_error{false};
      std::atomic<bool> thrown{false};
      auto fail = [&](std::size_t v) {
        made_at_throw = made.load();
        thrown = true;
        throw std::runtime_error("bad " + std::to_string(v));
      };
      const std::string m = what_of([&] {
        vitte::run_pipeline(
            s, cap, vitte::source([&, i = std::size_t{0}](vitte::PipelineStop& stop) mutable {
              if (where == 0 && thrown.load()) after_source_error = true;
              if (i == n) stop.done();
              if (where == 0 && i == bad) fail(i);
              made.fetch_add(1);
              return std::make_unique<Tracked>(i++);
            }),
            vitte::stage(StageMode::Parallel,
                         [&](std::unique_ptr<Tracked> p) {
                           (void)burn(p->v, 100);
                           if (where == 1 && p->v == bad) fail(p->v);
                           return p;
                         }),
            vitte::sink(StageMode::SerialInOrder, [&](std::unique_ptr<Tracked> p) {
              if (where == 2 && p->v == bad) fail(p->v);
              sunk.fetch_add(1);
            }));
      });
      EXPECT_EQ(m, "bad " + std::to_string(bad)) << workers << " workers, stage " << where;
      EXPECT_FALSE(after_source_error.load()) << "the source ran after it threw";
      EXPECT_LE(made.load(), made_at_throw.load() + cap) << "items kept coming after the error";
      EXPECT_LE(sunk.load(), where == 2 ? bad : made.load());
      if (where == 2) {
        EXPECT_EQ(sunk.load(), bad) << "the in-order sink took every item before the bad one";
      }
      EXPECT_EQ(g_alive.load(), 0) << "an item in flight was not destroyed";
    }
  }
}

// vitte::Cancelled from a stage, and a stop token, stop it the same way and come out as
// vitte::Cancelled; an error wins over a cancellation.
TEST(Pipeline, Cancellation) {
  vitte::Scheduler s(2);
  const std::size_t n = vitte::test::scaled(10'000);
  EXPECT_EQ(what_of([&] {
              vitte::run_pipeline(s, 8, count_to(n), vitte::stage(StageMode::Parallel, [](std::size_t i) {
                                    if (i == 100) throw vitte::Cancelled("told to stop");
                                    return i;
                                  }),
                                  vitte::sink(StageMode::SerialInOrder, [](std::size_t) {}));
            }),
            "told to stop");
  std::stop_source src;
  std::atomic<std::size_t> sunk{0}, made{0};
  EXPECT_THROW(vitte::run_pipeline(
                   s, 8, vitte::source([&, i = std::size_t{0}](vitte::PipelineStop& stop) mutable {
                     if (i == n) stop.done();
                     if (i == 50) src.request_stop();
                     made.fetch_add(1);
                     return i++;
                   }),
                   vitte::sink(StageMode::SerialInOrder, [&](std::size_t) { sunk.fetch_add(1); }), vitte::TaskOptions{},
                   src.get_token()),
               vitte::Cancelled);
  EXPECT_LE(made.load(), 51u) << "the source ran on after its token stopped it";
  EXPECT_LE(sunk.load(), 51u);
  // Stopped before it starts: the source is never called.
  std::atomic<std::size_t> calls{0};
  EXPECT_THROW(vitte::run_pipeline(s, 8, count_to(n, &calls), vitte::sink(StageMode::Parallel, [](std::size_t) {}),
                                   src.get_token()),
               vitte::Cancelled);
  EXPECT_EQ(calls.load(), 0u);
  // An error wins: item 0's stage call throws after item 1's was called off.
  std::atomic<bool> off{false};
  EXPECT_EQ(what_of([&] {
              vitte::run_pipeline(s, 4, count_to(n), vitte::stage(StageMode::Parallel, [&](std::size_t i) {
                                    if (i == 1) {
                                      off = true;
                                      throw vitte::Cancelled("off");
                                    }
                                    if (i == 0) {
                                      while (!off.load()) std::this_thread::yield();
                                      throw std::runtime_error("real");
                                    }
                                    return i;
                                  }),
                                  vitte::sink(StageMode::SerialInOrder, [](std::size_t) {}));
            }),
            "real");
}

// Options hold for every task: the name counts in the group's metrics.
TEST(Pipeline, OptionsPlaceEveryTask) {
  vitte::Scheduler s(2);
  vitte::Group g = s.make_group({.name = "pass"});
  std::size_t sunk = 0;
  const std::size_t n = vitte::test::scaled(2'000);
  vitte::run_pipeline(s, 4, count_to(n), vitte::stage(StageMode::Parallel, [](std::size_t i) { return i + 0 * burn(i, 100); }),
                      vitte::sink(StageMode::SerialInOrder, [&](std::size_t) { ++sunk; }),
                      vitte::TaskOptions{.group = g, .name = "pipe"});
  EXPECT_EQ(sunk, n);
  const vitte::MetricsSnapshot m = s.metrics();
  std::uint64_t in_pass = 0, in_arena = 0;
  for (const vitte::GroupMetrics& gm : m.groups)
    for (const vitte::GroupMetrics::Named& nm : gm.named)
      if (nm.name == "pipe") (gm.name == "pass" ? in_pass : in_arena) += nm.runs;
  EXPECT_GE(in_pass, 1u);
  EXPECT_EQ(in_arena, 0u);
  // Options that cannot apply are refused, naming the entry point.
  vitte::Scheduler other(1);
  vitte::Group theirs = other.make_group({.name = "theirs"});
  const std::string msg = what_of([&] {
    vitte::run_pipeline(s, 4, count_to(n), vitte::sink(StageMode::Parallel, [](std::size_t) {}),
                        vitte::TaskOptions{.group = theirs});
  });
  EXPECT_NE(msg.find("run_pipeline"), std::string::npos) << msg;
}

// From a worker, an external thread and a coroutine; a coroutine's own stop token.
TEST(Pipeline, EveryKindOfCaller) {
  vitte::Scheduler s(2);
  const std::size_t n = vitte::test::scaled(5'000);
  std::vector<std::size_t> expect(n);
  for (std::size_t i = 0; i < n; ++i) expect[i] = i;
  EXPECT_EQ(s.async([&] { return ordered_run(s, n, 8, StageMode::Parallel); }).get(), expect);
  std::vector<std::size_t> from_thread;
  std::thread t([&] { from_thread = ordered_run(s, n, 8, StageMode::SerialOutOfOrder); });
  t.join();
  EXPECT_EQ(from_thread, expect);
  auto coro = [&]() -> vitte::task<std::vector<std::size_t>> {
    std::vector<std::size_t> out;
    const std::stop_token token = co_await vitte::get_stop_token();
    vitte::run_pipeline(s, 8, count_to(n), vitte::stage(StageMode::Parallel, [](std::size_t i) { return i + 0 * burn(i, 50); }),
                        vitte::sink(StageMode::SerialInOrder, [&](std::size_t i) { out.push_back(i); }), token);
    co_return out;
  };
  EXPECT_EQ(vitte::sync_wait(s, coro()), expect);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_THROW(vitte::sync_wait(s, coro(), stop.get_token()), vitte::Cancelled);
}

// Inside isolate, the pipeline's waits run none of the unrelated tasks queued before it.
TEST(Pipeline, IsolatedRunsNoForeignTask) {
  vitte::Scheduler s(2);
  const std::size_t n = vitte::test::scaled(5'000);
  std::atomic<std::thread::id> in_pipeline{};
  std::atomic<int> foreign_inside{0}, foreign_ran{0};
  s.async([&] {
     for (int i = 0; i < 64; ++i)
       vitte::spawn([&] {
         if (in_pipeline.load() == std::this_thread::get_id()) foreign_inside++;
         foreign_ran++;
       });
     vitte::isolate([&] {
       in_pipeline = std::this_thread::get_id();
       const auto out = ordered_run(s, n, 8, StageMode::Parallel);
       in_pipeline = std::thread::id{};
       EXPECT_EQ(out.size(), n);
     });
   }).get();
  s.join_all();
  EXPECT_EQ(foreign_inside.load(), 0);
  EXPECT_EQ(foreign_ran.load(), 64);
}

// Many short pipelines of random shapes: everything comes out once, in order where asked.
TEST(Pipeline, StressRandomShapes) {
  vitte::Scheduler s(4);
  const int rounds = static_cast<int>(vitte::test::scaled(300));
  std::uint64_t r = 12345;
  auto rnd = [&](unsigned m) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<unsigned>(r >> 33) % m;
  };
  for (int round = 0; round < rounds; ++round) {
    const std::size_t n = rnd(500), cap = 1 + rnd(12);
    const StageMode a = static_cast<StageMode>(rnd(3)), b = static_cast<StageMode>(rnd(3));
    std::vector<std::size_t> out;
    std::atomic<long> live{0}, worst{0};
    vitte::run_pipeline(
        s, cap, vitte::source([&, i = std::size_t{0}](vitte::PipelineStop& stop) mutable {
          if (i == n) stop.done();
          vitte::test::raise_max(worst, live.fetch_add(1) + 1);
          return std::make_unique<Tracked>(i++);
        }),
        vitte::stage(a, [](std::unique_ptr<Tracked> p) { return Tracked(p->v + 0 * burn(p->v, 20)); }),
        vitte::stage(b, [](Tracked t) { return t.v; }),
        vitte::sink(StageMode::SerialInOrder, [&](std::size_t i) {
          out.push_back(i);
          live.fetch_sub(1);
        }));
    ASSERT_EQ(out.size(), n) << round;
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], i) << round;
    ASSERT_LE(worst.load(), static_cast<long>(cap)) << round;
    ASSERT_EQ(g_alive.load(), 0) << round;
  }
}

// Cancellation is not failure (docs/errors.md), in every model and in both modes: work that
// ends with vitte::Cancelled (its stop token, its group, a when_any it lost, shutdown) is
// counted as cancelled, never as failed, and the joins that return no value
// (TaskGroup::wait, join_all, GraphRun::wait) rethrow it only when asked; a real error
// still is rethrown, whatever came first. Calls that return the work's result rethrow it.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "vitte/metrics_export.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

namespace {

struct Mode {
  const char* name;
  bool deterministic;
};

class Cancellation : public testing::TestWithParam<Mode> {
 protected:
  bool deterministic() const { return GetParam().deterministic; }
  vitte::Options options() const {
    vitte::Options o;
    o.topology = vitte::Topology::from_synthetic("node:1 core:2 pu:1");
    o.workers = 2;
    if (deterministic()) o.deterministic = vitte::DeterministicOptions{.seed = 11};
    return o;
  }
};

[[noreturn]] void called_off() { throw vitte::Cancelled("told to stop"); }

// What `join` threw: "" for nothing, else "Cancelled: ..." or "Error: ...".
template <class F>
std::string thrown(F&& join) {
  try {
    join();
  } catch (const vitte::Cancelled& c) {
    return std::string("Cancelled: ") + c.what();
  } catch (const std::exception& e) {
    return std::string("Error: ") + e.what();
  }
  return "";
}

TEST_P(Cancellation, TaskGroupCountsItAndRethrowsOnlyWhenAsked) {
  vitte::Scheduler s(options());
  std::atomic<int> ran{0};
  vitte::TaskGroup g(s);
  g.run([] { called_off(); });
  for (int i = 0; i < 8; ++i) g.run([&] { ran.fetch_add(1); });
  EXPECT_EQ(thrown([&] { g.wait(); }), "");
  EXPECT_EQ(ran.load(), 8) << "a cancelled task skipped its siblings, as an error would";
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_EQ(m.total.cancelled, 1u);
  EXPECT_EQ(m.total.failed, 0u);
  EXPECT_EQ(m.total.skipped, 0u);

  g.run([] { called_off(); });
  EXPECT_EQ(thrown([&] { g.wait(vitte::Rethrow::ErrorsAndCancellations); }), "Cancelled: told to stop");
  // Taken with the wait: the next wait starts clean.
  g.run([&] { ran.fetch_add(1); });
  EXPECT_EQ(thrown([&] { g.wait(vitte::Rethrow::ErrorsAndCancellations); }), "");
}

TEST_P(Cancellation, AnErrorWinsOverACancellationWhateverCameFirst) {
  vitte::Scheduler s(options());
  vitte::TaskGroup g(s);
  g.run([] { called_off(); });
  g.wait(vitte::Rethrow::Errors);  // nothing
  // One worker's group, run in order on a deterministic run; on a real one either order.
  vitte::TaskGroup h(s);
  h.run([] { called_off(); });
  h.run([] { throw std::runtime_error("disk full"); });
  EXPECT_EQ(thrown([&] { h.wait(vitte::Rethrow::ErrorsAndCancellations); }), "Error: disk full");
  h.run([] { throw std::runtime_error("disk full"); });
  h.run([] { called_off(); });
  EXPECT_EQ(thrown([&] { h.wait(); }), "Error: disk full");
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_EQ(m.total.failed, 2u);
  // The second group's error may skip its cancellation (an error cancels the group).
  EXPECT_EQ(m.total.cancelled + m.total.skipped, 3u);
}

TEST_P(Cancellation, JoinAllCountsItAndRethrowsOnlyWhenAsked) {
  vitte::Scheduler s(options());
  s.submit(vitte::Task([] { called_off(); }));
  s.submit(vitte::Task([] { vitte::spawn([] { called_off(); }); }));
  EXPECT_EQ(thrown([&] { s.join_all(); }), "");
  EXPECT_EQ(s.metrics().total.cancelled, 2u);
  EXPECT_EQ(s.metrics().total.failed, 0u);
  s.submit(vitte::Task([] { called_off(); }));
  EXPECT_EQ(thrown([&] { s.join_all(vitte::Rethrow::ErrorsAndCancellations); }), "Cancelled: told to stop");
  EXPECT_EQ(thrown([&] { s.join_all(vitte::Rethrow::ErrorsAndCancellations); }), "");
  s.submit(vitte::Task([] { throw std::runtime_error("bad input"); }));
  EXPECT_EQ(thrown([&] { s.join_all(); }), "Error: bad input");
}

// The README's pattern: a coroutine started under a stop token, which the caller triggers.
vitte::task<void> poll(std::atomic<bool>* sleeping) {
  for (;;) {
    sleeping->store(true);
    co_await vitte::sleep_for(1h);
  }
}

TEST_P(Cancellation, ACoroutineStoppedByItsTokenIsNotAFailure) {
  vitte::Scheduler s(options());
  std::stop_source stop;
  std::atomic<bool> sleeping{false};
  s.start(poll(&sleeping), {}, stop.get_token());
  // A real run: stop it while it sleeps (the suspended path); a deterministic run runs it
  // only inside join_all, so there it meets the triggered token at its first sleep.
  if (!deterministic())
    while (!sleeping.load()) std::this_thread::yield();
  stop.request_stop();
  EXPECT_EQ(thrown([&] { s.join_all(); }), "");
  EXPECT_EQ(s.metrics().total.cancelled, 1u);
  EXPECT_EQ(s.metrics().total.failed, 0u);

  std::stop_source again;
  sleeping = false;
  s.start(poll(&sleeping), {}, again.get_token());
  again.request_stop();
  EXPECT_NE(thrown([&] { s.join_all(vitte::Rethrow::ErrorsAndCancellations); }).find("Cancelled: "), std::string::npos);
}

TEST_P(Cancellation, ShutdownCancelsSleepersWithoutAnError) {
  vitte::Scheduler s(options());
  std::atomic<bool> sleeping{false};
  s.start(poll(&sleeping));
  if (!deterministic())
    while (!sleeping.load()) std::this_thread::yield();
  EXPECT_EQ(thrown([&] { s.shutdown(); }), "");
  EXPECT_EQ(s.metrics().total.cancelled, 1u);
  EXPECT_EQ(s.metrics().total.failed, 0u);
}

TEST_P(Cancellation, AWhenAnyLoserIsNotAFailure) {
  vitte::Scheduler s(options());
  auto slow = []() -> vitte::task<int> {
    for (;;) co_await vitte::yield();  // resumes with Cancelled once the winner finished
    co_return 1;
  };
  auto quick = []() -> vitte::task<int> { co_return 2; };
  auto race = [&]() -> vitte::task<void> {
    auto r = co_await vitte::when_any(slow(), quick());
    if (r.index != 1 || r.value != 2) throw std::logic_error("the quick one did not win");
  };
  s.start(race());
  EXPECT_EQ(thrown([&] { s.join_all(vitte::Rethrow::ErrorsAndCancellations); }), "");
  EXPECT_EQ(s.metrics().total.failed, 0u);
}

TEST_P(Cancellation, AGraphTaskCalledOffEndsTheRunButIsNoError) {
  vitte::Scheduler s(options());
  std::atomic<int> after{0};
  std::atomic<bool> stop{true};
  vitte::Graph g("build");
  vitte::TaskRef a = g.add([&] {
    if (stop.load()) called_off();
  });
  vitte::TaskRef b = g.add([&] { after.fetch_add(1); });
  a.precede(b);
  EXPECT_EQ(thrown([&] { s.run(g).wait(); }), "");
  EXPECT_EQ(after.load(), 0) << "a successor ran after the task it needs was called off";
  EXPECT_EQ(thrown([&] { s.run(g).wait(vitte::Rethrow::ErrorsAndCancellations); }), "Cancelled: told to stop");
  EXPECT_EQ(s.metrics().total.cancelled, 2u);
  EXPECT_EQ(s.metrics().total.failed, 0u);
  stop = false;  // the graph runs whole again after a cancelled run
  s.run(g).wait();
  EXPECT_EQ(after.load(), 1);
}

TEST_P(Cancellation, NamedWorkCountsItApart) {
  vitte::Scheduler s(options());
  s.submit(vitte::Task([] { called_off(); }), {.name = "lex"});
  s.submit(vitte::Task([] { throw std::runtime_error("x"); }), {.name = "lex"});
  s.submit(vitte::Task([] {}), {.name = "lex"});
  EXPECT_EQ(thrown([&] { s.join_all(); }), "Error: x");
  const vitte::MetricsSnapshot m = s.metrics();
  ASSERT_FALSE(m.groups.empty());
  ASSERT_EQ(m.groups[0].named.size(), 1u);
  EXPECT_EQ(m.groups[0].named[0].runs, 3u);
  EXPECT_EQ(m.groups[0].named[0].failed, 1u);
  EXPECT_EQ(m.groups[0].named[0].cancelled, 1u);
  const std::string prom = vitte::metrics_prometheus(m);
  EXPECT_NE(prom.find("vitte_named_cancelled_total{id=\"0\",group=\"\",name=\"lex\"} 1"), std::string::npos) << prom;
  EXPECT_NE(prom.find("vitte_tasks_cancelled_total"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(vitte::metrics_json(m))["total"]["cancelled"], 1);
}

// Where the call returns the work's result, there is none to return: Cancelled comes out,
// and is still counted as cancelled where a task frame ran it.
TEST_P(Cancellation, CallsThatReturnAResultRethrowIt) {
  vitte::Scheduler s(options());
  EXPECT_EQ(thrown([&] { s.async([]() -> int { called_off(); }).get(); }), "Cancelled: told to stop");
  auto child = []() -> vitte::task<int> {
    called_off();
    co_return 1;
  };
  EXPECT_EQ(thrown([&] { vitte::sync_wait(s, child()); }), "Cancelled: told to stop");
  EXPECT_EQ(thrown([&] { vitte::parallel_for(s, 0, 64, 1, [](std::size_t i) { if (i == 5) called_off(); }); }),
            "Cancelled: told to stop");
  EXPECT_EQ(s.metrics().total.failed, 0u);
  EXPECT_GE(s.metrics().total.cancelled, 1u);  // the parallel_for piece
}

// An error wins over a cancellation that ended first, in the joins that return a value too.
TEST_P(Cancellation, AnErrorWinsInWhenAllAndParallelFor) {
  vitte::Scheduler s(options());
  std::atomic<bool> gone{false};
  auto first_off = s.async([&]() -> int {
    gone = true;
    called_off();
  });
  auto then_error = s.async([&]() -> int {
    while (!deterministic() && !gone.load()) std::this_thread::yield();
    throw std::runtime_error("real");
  });
  EXPECT_EQ(thrown([&] { vitte::when_all(std::move(first_off), std::move(then_error)).get(); }), "Error: real");

  // Coroutines: the error comes without a suspension after the cancellation (one would
  // resume with Cancelled: the first child's end asks its siblings to stop).
  std::atomic<bool> off{false};
  auto off_now = [&]() -> vitte::task<int> {
    off = true;
    called_off();
    co_return 0;
  };
  auto error_later = [&]() -> vitte::task<int> {
    while (!deterministic() && !off.load()) std::this_thread::yield();
    throw std::runtime_error("real");
    co_return 0;
  };
  auto both = [&]() -> vitte::task<void> { (void)co_await vitte::when_all(off_now(), error_later()); };
  EXPECT_EQ(thrown([&] { vitte::sync_wait(s, both()); }), "Error: real");

  // A loop: piece 0 is called off while piece 1 runs, then piece 1 fails. (Real runs only:
  // the pieces wait for each other, which a deterministic run's turns do not allow.)
  if (deterministic()) return;
  std::atomic<bool> started{false}, thrown_off{false};
  EXPECT_EQ(thrown([&] {
              vitte::parallel_for(s, 0, 2, 1, [&](std::size_t i) {
                if (i == 0) {
                  while (!started.load()) std::this_thread::yield();
                  thrown_off = true;
                  called_off();
                }
                started = true;
                while (!thrown_off.load()) std::this_thread::yield();
                std::this_thread::sleep_for(1ms);
                throw std::runtime_error("real");
              });
            }),
            "Error: real");
}

// A coroutine that a sibling's win or failure called off counts as cancelled, once.
TEST_P(Cancellation, ASiblingCalledOffCountsAsCancelled) {
  vitte::Scheduler s(options());
  auto sleeper = []() -> vitte::task<int> {
    co_await vitte::sleep_for(1h);
    co_return 1;
  };
  auto quick = []() -> vitte::task<int> { co_return 2; };
  auto race = [&]() -> vitte::task<void> { (void)co_await vitte::when_any(sleeper(), quick()); };
  s.start(race());
  EXPECT_EQ(thrown([&] { s.join_all(); }), "");
  EXPECT_EQ(s.metrics().total.cancelled, 1u);
  EXPECT_EQ(s.metrics().total.failed, 0u);
}

// Named work counts its failures and cancellations in every model that keeps its own
// errors: a future's task, a graph task, a coroutine, a loop.
TEST_P(Cancellation, NamedWorkCountsEndsInEveryModel) {
  vitte::Scheduler s(options());
  (void)thrown([&] { s.async([]() -> int { called_off(); }, {.name = "async"}).get(); });
  vitte::Graph g("g");
  g.add([] { throw std::runtime_error("x"); }).options({.name = "graph"});
  (void)thrown([&] { s.run(g).wait(); });
  auto off = []() -> vitte::task<void> {
    called_off();
    co_return;
  };
  s.start(off(), {.name = "coro"});
  (void)thrown([&] { s.join_all(); });
  (void)thrown([&] { vitte::parallel_for(s, 0, 1, 1, [](std::size_t) { called_off(); }, {.name = "loop"}); });
  // A future completes inside its task, before that task is counted: let it finish.
  vitte::TaskGroup settle(s);
  for (std::size_t i = 0; i < s.num_workers(); ++i) settle.run([] {});
  settle.wait();
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics();
  auto named = [&](const std::string& n) {
    for (const vitte::GroupMetrics::Named& x : m.groups[0].named)
      if (x.name == n) return x;
    ADD_FAILURE() << "no name " << n;
    return vitte::GroupMetrics::Named{};
  };
  EXPECT_EQ(named("async").cancelled, 1u);
  EXPECT_EQ(named("graph").failed, 1u);
  EXPECT_EQ(named("coro").cancelled, 1u);
  EXPECT_EQ(named("loop").cancelled, 1u);
}

// join_all() while other threads keep submitting work that is called off or fails: the
// error and cancellation slots change hands without a race (ThreadSanitizer runs this).
TEST(CancellationStress, JoinAllRacesWithTasksThatEnd) {
  vitte::Scheduler s(2);
  std::atomic<bool> done{false};
  const int n = static_cast<int>(vitte::test::scaled(20000));
  std::thread producer([&] {
    for (int i = 0; i < n; ++i)
      s.submit(vitte::Task([i] {
        if (i % 7 == 0) throw std::runtime_error("e");
        called_off();
      }));
    done = true;
  });
  int errors = 0;
  while (!done.load()) {
    const std::string t = thrown([&] { s.join_all(vitte::Rethrow::ErrorsAndCancellations); });
    errors += t.rfind("Error: ", 0) == 0;
  }
  producer.join();
  errors += thrown([&] { s.join_all(); }).rfind("Error: ", 0) == 0;
  EXPECT_GE(errors, 1);
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_EQ(m.total.failed + m.total.cancelled, static_cast<std::uint64_t>(n));
  EXPECT_EQ(m.total.failed, static_cast<std::uint64_t>((n + 6) / 7));
}

INSTANTIATE_TEST_SUITE_P(Modes, Cancellation, testing::Values(Mode{"real", false}, Mode{"deterministic", true}),
                         [](const testing::TestParamInfo<Mode>& i) { return std::string(i.param.name); });

}  // namespace

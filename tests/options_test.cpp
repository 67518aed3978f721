// TaskOptions at every entry point (task_options.hpp): one test body per option, run
// through each way work enters the scheduler, in real and deterministic mode. Each body
// checks what the option promises (where the work ran, what its group counted, what a
// trace shows) or that a bad option is refused with a message naming it.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <latch>
#include <string>
#include <tuple>
#include <vector>

#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

namespace {

using Body = std::function<void()>;

// One way work enters the scheduler: runs `body` once under `opts` on `s` and waits for it
// (the errors of the entry point, or of the work, come out of run()).
struct EntryPoint {
  const char* name;
  bool coroutine;  // takes no deadline (coro.hpp)
  void (*run)(vitte::Scheduler& s, const vitte::TaskOptions& opts, const Body& body);
};

vitte::task<void> call(Body body) {
  body();
  co_return;
}
vitte::task<void> rescheduled(vitte::TaskOptions opts, Body body) {
  co_await vitte::reschedule(opts);
  body();
}

const EntryPoint kEntryPoints[] = {
    {"submit", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       s.submit(vitte::Task(b), o);
       s.join_all();
     }},
    {"task_group", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       vitte::TaskGroup g(s, o);
       g.run(b);
       g.wait();
     }},
    {"spawn", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       s.submit(vitte::Task([o, b] { vitte::spawn(b, o); }));
       s.join_all();
     }},
    {"async", false, [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) { s.async(b, o).get(); }},
    {"then", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       vitte::Promise<void> p(s);
       vitte::Future<void> f = p.get_future().then(b, o);
       p.set_value();
       f.get();
     }},
    {"parallel_for", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       vitte::parallel_for(s, 0, 1, 1, [&](std::size_t) { b(); }, o);
     }},
    {"coroutine_start", true,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       s.start(call(b), o);
       s.join_all();
     }},
    {"sync_wait", true,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) { vitte::sync_wait(s, call(b), o); }},
    {"reschedule", true,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) { vitte::sync_wait(s, rescheduled(o, b)); }},
    {"graph_run", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       vitte::Graph g("options");
       g.add(b);
       s.run(g, vitte::RunOptions{.options = o}).wait();
     }},
    {"graph_task", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       vitte::Graph g("options");
       g.add([] {});
       g.add(b).options(o);
       s.run(g).wait();
     }},
    {"timer", false,
     [](vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) {
       (void)s.after(0ms, b, o);
       s.join_all();
     }},
};

struct Mode {
  const char* name;
  bool deterministic;
};
const Mode kModes[] = {{"real", false}, {"deterministic", true}};

class Options : public testing::TestWithParam<std::tuple<Mode, EntryPoint>> {
 protected:
  const EntryPoint& entry() const { return std::get<1>(GetParam()); }
  // Two nodes of one worker each, so that a node option has a visible effect.
  vitte::Options options(std::optional<vitte::Policy> policy = std::nullopt) const {
    vitte::Options o;
    o.topology = vitte::Topology::from_synthetic("node:2 core:1 pu:1");
    o.workers = 2;
    o.policy = policy;
    if (std::get<0>(GetParam()).deterministic) o.deterministic = vitte::DeterministicOptions{.seed = 7};
    return o;
  }
  void run(vitte::Scheduler& s, const vitte::TaskOptions& o, const Body& b) const { entry().run(s, o, b); }
  // Until every worker finished the task it ran: a future or a coroutine completes inside
  // its task, before the task's trace slice closes. A deterministic run's turns end with
  // the task already.
  void quiesce(vitte::Scheduler& s) const {
    if (std::get<0>(GetParam()).deterministic) return;
    std::latch all(static_cast<std::ptrdiff_t>(s.num_workers()));
    vitte::TaskGroup g(s);
    for (std::size_t i = 0; i < s.num_workers(); ++i) g.run([&] { all.arrive_and_wait(); });
    g.wait();
  }
  // The UsageError `o` gets at this entry point ("" if none).
  std::string refusal(vitte::Scheduler& s, const vitte::TaskOptions& o) const {
    std::atomic<int> ran{0};
    try {
      run(s, o, [&] { ran.fetch_add(1); });
    } catch (const vitte::UsageError& e) {
      EXPECT_EQ(ran.load(), 0) << "refused work ran";
      return e.what();
    }
    return "";
  }
};

const vitte::GroupMetrics* find_group(const vitte::MetricsSnapshot& m, const std::string& name) {
  for (const vitte::GroupMetrics& g : m.groups)
    if (g.name == name) return &g;
  return nullptr;
}

std::uint64_t named_runs(const vitte::GroupMetrics& g, const std::string& name) {
  for (const vitte::GroupMetrics::Named& n : g.named)
    if (n.name == name) return n.runs;
  return 0;
}

int node_here(vitte::Scheduler& s) {
  const int w = vitte::Scheduler::current_worker();
  return w < 0 ? -1 : static_cast<int>(s.plan().workers[static_cast<unsigned>(w)].node);
}

}  // namespace

TEST_P(Options, NoOptionsRunsTheWork) {
  vitte::Scheduler s(options());
  std::atomic<int> ran{0};
  run(s, {}, [&] { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 1);
}

TEST_P(Options, NodeRunsItOnThatNode) {
  // Workers of the other node may take queued work once they ran out of their own, after
  // their patience (task_options.hpp): steal_scope = "node" rules that out, so that where
  // it ran is the node's choice alone.
  vitte::Options o = options();
  o.config = vitte::Config::parse("[scheduling]\nsteal_scope = \"node\"\n", "node-only.toml");
  vitte::Scheduler s(o);
  for (unsigned node : {1u, 0u, 1u}) {
    std::atomic<int> seen{-2};
    run(s, {.node = node}, [&] { seen.store(node_here(s)); });
    EXPECT_EQ(seen.load(), static_cast<int>(node)) << entry().name << " with node " << node;
  }
}

TEST_P(Options, AGroupCountsItsWork) {
  vitte::Scheduler s(options());
  vitte::Group g = s.make_group({.name = "pass"});
  std::atomic<int> ran{0};
  run(s, {.group = g}, [&] { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 1);
  const vitte::MetricsSnapshot snapshot = s.metrics();
  const vitte::GroupMetrics* m = find_group(snapshot, "pass");
  ASSERT_NE(m, nullptr);
  EXPECT_GE(m->tasks, 1u) << entry().name << ": the group saw none of the work given to it";
}

TEST_P(Options, APriorityAppliesAtAPriorityLevelAndIsRefusedElsewhere) {
  vitte::Scheduler s(options());
  vitte::Group urgent = s.make_group({.name = "urgent", .policy = vitte::Policy::Priority});
  std::atomic<int> ran{0};
  run(s, {.group = urgent, .priority = vitte::Priority::High}, [&] { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 1);
  const vitte::MetricsSnapshot snapshot = s.metrics();
  EXPECT_GE(find_group(snapshot, "urgent")->tasks, 1u);
  // The arena's policy is Fifo: a High priority there would not apply.
  const std::string why = refusal(s, {.priority = vitte::Priority::High});
  EXPECT_NE(why.find("priority high would not apply"), std::string::npos) << entry().name << ": " << why;
}

TEST_P(Options, ADeadlineIsCountedOrRefusedForACoroutine) {
  vitte::Scheduler s(options());
  if (entry().coroutine) {
    const std::string why = refusal(s, {.deadline = 10s});
    EXPECT_NE(why.find("deadline does not apply to a coroutine"), std::string::npos) << entry().name << ": " << why;
    return;
  }
  std::atomic<int> ran{0};
  run(s, {.deadline = 10s}, [&] { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 1);
  quiesce(s);  // a future completes inside its task, before the task's deadline is counted
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_GE(m.deadlines_met, 1u) << entry().name << ": the deadline was not applied";
  EXPECT_EQ(m.deadlines_missed, 0u);
  const std::string why = refusal(s, {.deadline = -1ms});
  EXPECT_NE(why.find("TaskOptions::deadline"), std::string::npos) << entry().name << ": " << why;
}

TEST_P(Options, ANameShowsInTheTraceAndInItsGroupsMetrics) {
  vitte::Scheduler s(options());
  vitte::Group g = s.make_group({.name = "lexing"});
  s.start_trace();
  run(s, {.name = "lex-file"}, [] {});
  run(s, {.group = g, .name = "lex-grouped"}, [] {});
  quiesce(s);
  const vitte::Trace t = s.stop_trace();
  EXPECT_NE(t.json().find("lex-file"), std::string::npos) << entry().name;
  EXPECT_NE(t.json().find("lex-grouped"), std::string::npos) << entry().name;
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_GE(named_runs(*find_group(m, ""), "lex-file"), 1u) << entry().name << ": the arena did not count the name";
  EXPECT_GE(named_runs(*find_group(m, "lexing"), "lex-grouped"), 1u) << entry().name;
  EXPECT_EQ(named_runs(*find_group(m, ""), "lex-grouped"), 0u) << "named work counts in its own group only";
}

TEST_P(Options, BadOptionsAreRefusedNamingTheCulprit) {
  vitte::Scheduler s(options());
  std::string why = refusal(s, {.node = 99});
  EXPECT_NE(why.find("node 99"), std::string::npos) << entry().name << ": " << why;
  vitte::Scheduler other(2);  // real: a thread drives one deterministic scheduler at a time
  vitte::Group foreign = other.make_group({.name = "theirs"});
  why = refusal(s, {.group = foreign});
  EXPECT_NE(why.find("belongs to another scheduler"), std::string::npos) << entry().name << ": " << why;
}

INSTANTIATE_TEST_SUITE_P(
    EveryEntryPoint, Options, testing::Combine(testing::ValuesIn(kModes), testing::ValuesIn(kEntryPoints)),
    [](const testing::TestParamInfo<std::tuple<Mode, EntryPoint>>& i) {
      return std::string(std::get<0>(i.param).name) + "_" + std::get<1>(i.param).name;
    });

namespace {

std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const vitte::UsageError& e) {
    return e.what();
  }
  return "";
}

// A refusal names the entry point the caller used, not the one it is built on.
TEST(OptionsRefusal, NamesTheEntryPointUsed) {
  vitte::Scheduler s(2);
  EXPECT_NE(usage_error([&] { (void)s.async([] { return 1; }, {.node = 99}); }).find("async(fn, options)"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { s.submit(vitte::Task([] {}), {.node = 99}); }).find("submit(task, options)"),
            std::string::npos);
}

// A name goes into traces and Prometheus labels as it is, so control characters are
// refused where the name is made, with the byte and its position.
TEST(OptionsName, ControlCharactersAreRefusedWithTheirPosition) {
  const std::string why = usage_error([] { vitte::Name n(std::string_view("l\nex", 4)); });
  EXPECT_NE(why.find("\"l\\x0aex\""), std::string::npos) << why;
  EXPECT_NE(why.find("control character 10 at position 1"), std::string::npos) << why;
  EXPECT_NE(usage_error([] { vitte::Name n(std::string_view("a\0b", 3)); }).find("position 1"), std::string::npos);
  EXPECT_NE(usage_error([] { vitte::Name n("del\x7f"); }).find("control character 127 at position 3"),
            std::string::npos);
  EXPECT_EQ(usage_error([] { vitte::Name n("pass \"lex\" — ünïcode ok"); }), "");
  // Not UTF-8: a stray continuation byte, a truncated sequence, an overlong '/', a surrogate.
  for (const std::string_view bad : {std::string_view("x\xff\xfe"), std::string_view("ab\xc3"),
                                     std::string_view("\xc0\xaf"), std::string_view("\xed\xa0\x80")}) {
    const std::string w = usage_error([&] { vitte::Name n(bad); });
    EXPECT_NE(w.find("not UTF-8 at byte"), std::string::npos) << w;
  }
  EXPECT_NE(usage_error([] { vitte::Name n("x\xff"); }).find("\"x\\xff\": not UTF-8 at byte 1"), std::string::npos);
  EXPECT_EQ(vitte::Name("lex").view(), "lex");
}

}  // namespace

namespace {

// A graph task's bad options name the task: at once where the graph alone can tell (a
// deadline), at run() where the scheduler must (a priority its level cannot order).
TEST(OptionsGraph, RefusalsNameTheTask) {
  vitte::Graph g("build");
  vitte::TaskRef lex = g.add([] {});
  lex.name("lex");
  EXPECT_NE(usage_error([&] { lex.options({.deadline = std::chrono::nanoseconds(0)}); })
                .find("task 'lex': TaskOptions::deadline = 0 ns"),
            std::string::npos);
  lex.options({.priority = vitte::Priority::High});
  vitte::Scheduler s(2);  // a Fifo arena: no priority applies
  const std::string why = usage_error([&] { s.run(g).wait(); });
  EXPECT_NE(why.find("graph 'build', task 'lex': TaskOptions::priority"), std::string::npos) << why;
}

}  // namespace

// Trace: the JSON file's tracks, slices and flows against the metrics, sampling, graph and
// timer names, overflow, start/stop while work runs, refusals.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fork_join_tree.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

using vitte::Scheduler;
using vitte::Task;
using vitte::TraceOptions;
using namespace std::chrono_literals;

// Four unpinned workers on two nodes, so that the grouping by node is real.
Scheduler two_nodes(std::size_t workers = 4) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("node:2 core:2 pu:1");
  o.placement = vitte::Placement::Unpinned;
  o.workers = workers;
  return Scheduler(std::move(o));
}

struct Parsed {
  nlohmann::json doc;
  std::vector<nlohmann::json> slices(const std::string& cat) const {
    std::vector<nlohmann::json> out;
    for (const auto& e : doc["traceEvents"])
      if (e["ph"] == "X" && e["cat"] == cat) out.push_back(e);
    return out;
  }
  std::size_t count(const std::string& ph, const std::string& cat) const {
    std::size_t n = 0;
    for (const auto& e : doc["traceEvents"]) n += e["ph"] == ph && e["cat"] == cat;
    return n;
  }
  const nlohmann::json& meta() const { return doc["metadata"]["vitte"]; }
};

Parsed parse(const vitte::Trace& t) { return Parsed{nlohmann::json::parse(t.json())}; }

// A task that spawns a child and spins until another worker has run it: a steal for sure.
void forced_steal() {
  std::atomic<bool> ran{false};
  vitte::TaskGroup g;
  g.run([&] { ran.store(true, std::memory_order_release); });
  while (!ran.load(std::memory_order_acquire)) std::this_thread::yield();
  g.wait();
}

TEST(Trace, TracksPerWorkerGroupedByNodeAndOneSliceForEveryTask) {
  Scheduler s = two_nodes();
  const vitte::MetricsSnapshot before = s.metrics();
  s.start_trace();
  s.submit(Task([] { forced_steal(); }), {.node = 0});
  s.submit(Task([] { vitte::test::tree(8); }), {.node = 1});
  s.join_all();
  const vitte::Trace t = s.stop_trace();
  const vitte::MetricsSnapshot d = s.metrics() - before;
  const Parsed p = parse(t);

  // Tracks: a process per node, a thread per worker inside its node's process.
  std::map<int, std::string> processes;
  std::map<int, std::pair<int, std::string>> threads;  // tid -> (pid, name)
  for (const auto& e : p.doc["traceEvents"]) {
    if (e["ph"] != "M") continue;
    if (e["name"] == "process_name") processes[e["pid"].get<int>()] = e["args"]["name"];
    if (e["name"] == "thread_name") threads[e["tid"].get<int>()] = {e["pid"].get<int>(), e["args"]["name"]};
  }
  EXPECT_EQ(processes, (std::map<int, std::string>{{1, "node 0"}, {2, "node 1"}}));
  ASSERT_EQ(threads.size(), 4u);
  for (const vitte::WorkerSlot& w : s.plan().workers) {
    const auto& [pid, name] = threads.at(static_cast<int>(w.index) + 1);
    EXPECT_EQ(pid, static_cast<int>(w.node) + 1) << name;
    EXPECT_EQ(name, "worker " + std::to_string(w.index));
  }

  // One task slice per task run, each on a worker's track.
  const auto tasks = p.slices("task");
  EXPECT_EQ(tasks.size(), d.total.executed);
  EXPECT_EQ(t.task_slices(), d.total.executed);
  EXPECT_EQ(t.tasks_run(), d.total.executed);
  EXPECT_EQ(p.meta()["worker_count"], 4);
  EXPECT_EQ(p.meta()["sample_every"], 1);
  EXPECT_EQ(p.meta()["dropped_events"], 0);
  for (const auto& e : tasks) EXPECT_TRUE(threads.count(e["tid"].get<int>())) << e.dump();

  // Steals: an "s" on the victim's track and an "f" bound to the thief's slice, same id.
  std::map<std::uint64_t, nlohmann::json> starts, ends;
  for (const auto& e : p.doc["traceEvents"]) {
    if (e["ph"] == "s") starts[e["id"].get<std::uint64_t>()] = e;
    if (e["ph"] == "f") ends[e["id"].get<std::uint64_t>()] = e;
  }
  ASSERT_GE(starts.size(), 1u);
  EXPECT_LE(starts.size(), d.total.steals());
  ASSERT_EQ(starts.size(), ends.size());
  for (const auto& [id, s_ev] : starts) {
    ASSERT_TRUE(ends.count(id)) << id;
    const auto& f_ev = ends[id];
    EXPECT_EQ(f_ev["bp"], "e");
    EXPECT_EQ(s_ev["cat"], f_ev["cat"]);
    EXPECT_NE(s_ev["tid"], f_ev["tid"]) << "a steal goes from one worker to another";
    // The f binds to a task slice that starts exactly there on the thief's track.
    bool bound = false;
    for (const auto& e : tasks) bound |= e["tid"] == f_ev["tid"] && e["ts"] == f_ev["ts"];
    EXPECT_TRUE(bound) << f_ev.dump();
  }
}

TEST(Trace, ParksAndWakeUpsAreRecorded) {
  Scheduler s(1);
  const vitte::MetricsSnapshot before = s.metrics();
  s.start_trace();
  // Some sleep of the worker begins after start_trace(): after this task at the latest.
  const std::uint64_t parks = s.metrics().total.parks;
  s.submit(Task([] {}));
  s.join_all();
  while (s.metrics().total.parks == parks) std::this_thread::yield();
  // It sleeps (the count rises after its last look for work), so this task must wake it;
  // the sleep's slice and the wake-up are recorded before the task runs.
  s.submit(Task([] {}));
  s.join_all();
  const vitte::Trace t = s.stop_trace();
  const vitte::MetricsSnapshot d = s.metrics() - before;
  const Parsed p = parse(t);
  EXPECT_GE(p.slices("park").size(), 1u);
  EXPECT_LE(p.slices("park").size(), d.total.parks);
  EXPECT_GE(p.count("i", "wake"), 1u);
  EXPECT_EQ(p.count("i", "wake"), d.total.wakeups);
}

TEST(Trace, SamplingRecordsOneTaskInNAndSaysSo) {
  constexpr unsigned kEvery = 8;
  Scheduler s = two_nodes();
  const vitte::MetricsSnapshot before = s.metrics();
  s.start_trace({.sample_every = kEvery});
  s.submit(Task([] { vitte::test::tree(10); }));
  s.join_all();
  const vitte::Trace t = s.stop_trace();
  const vitte::MetricsSnapshot d = s.metrics() - before;
  const Parsed p = parse(t);
  EXPECT_EQ(p.meta()["sample_every"], kEvery);
  EXPECT_EQ(t.tasks_run(), d.total.executed);
  // Each worker records its first task and every kEvery-th after it.
  std::uint64_t want = 0, run = 0;
  for (const auto& w : p.meta()["workers"]) {
    const std::uint64_t n = w["tasks_run"];
    run += n;
    want += (n + kEvery - 1) / kEvery;
  }
  EXPECT_EQ(run, d.total.executed);
  EXPECT_EQ(p.slices("task").size(), want);
  EXPECT_EQ(t.task_slices(), want);
  EXPECT_LT(want, d.total.executed / 4) << "sampling must record a small share";
}

TEST(Trace, GraphTasksAndTimersAreNamedAndOutliveThem) {
  Scheduler s = two_nodes();
  s.start_trace();
  {
    vitte::Graph g("passes");
    auto a = g.add([] {}, "alpha");
    auto b = g.add([] {}, "beta");
    auto c = g.add([] {});
    auto sub = g.add([](vitte::Subflow& sf) { sf.add([] {}, "inner"); }, "spawner");
    a.precede(b);
    b.precede(c);
    c.precede(sub);
    s.run(g).wait();
  }  // the graph is gone before the trace is read
  {
    const std::string name = "tick";
    s.after(0ms, [] {}, {.name = name});
  }
  s.join_all();
  const vitte::Trace t = s.stop_trace();
  const Parsed p = parse(t);
  std::multiset<std::string> graph;
  for (const auto& e : p.slices("graph")) graph.insert(e["name"].get<std::string>());
  EXPECT_EQ(graph, (std::multiset<std::string>{"alpha", "beta", "passes", "spawner", "inner"}));
  std::size_t ticks = 0;
  for (const auto& e : p.slices("task")) ticks += e["name"] == "tick";
  EXPECT_EQ(ticks, 1u);
}

TEST(Trace, AFullBufferCountsWhatItDrops) {
  Scheduler s = two_nodes(2);
  s.start_trace({.events_per_worker = 4});
  s.submit(Task([] { vitte::test::tree(8); }));
  s.join_all();
  const vitte::Trace t = s.stop_trace();
  const Parsed p = parse(t);
  EXPECT_GT(t.dropped(), 0u);
  EXPECT_EQ(p.meta()["dropped_events"], t.dropped());
  std::uint64_t events = 0;
  for (const auto& w : p.meta()["workers"]) {
    EXPECT_LE(w["events"].get<std::uint64_t>(), 4u);
    events += w["events"].get<std::uint64_t>();
  }
  // Every task is either a slice or a dropped event (no steal flows: two are at most 8 events).
  EXPECT_LE(t.task_slices(), events);
  EXPECT_GE(t.task_slices() + t.dropped(), t.tasks_run());
}

TEST(Trace, StartAndStopWhileWorkRuns) {
  Scheduler s = two_nodes();
  std::atomic<bool> done{false};
  // The load: fork-join trees, back to back, from a thread of its own.
  std::thread load([&] {
    while (!done.load()) {
      s.submit(Task([] { vitte::test::tree(6); }));
      s.join_all();
    }
  });
  const std::size_t rounds = vitte::test::scaled(100);
  std::uint64_t recorded = 0;
  for (std::size_t i = 0; i < rounds; ++i) {
    s.start_trace({.events_per_worker = 256, .sample_every = 1 + static_cast<unsigned>(i % 3)});
    // Let the workers run (and write) some tasks into this trace before it stops.
    const std::uint64_t executed = s.metrics().total.executed;
    while (s.metrics().total.executed < executed + 20) std::this_thread::yield();
    const vitte::Trace t = s.stop_trace();
    EXPECT_LE(t.task_slices(), t.tasks_run());
    recorded += t.task_slices();
    if (i % 32 == 0) {
      EXPECT_TRUE(nlohmann::json::accept(t.json()));
    }
  }
  EXPECT_GT(recorded, 0u);
  // And stopped from a task on a worker, while the others keep running the load.
  s.start_trace();
  auto f = s.async([&s] { return s.stop_trace(); });
  const vitte::Trace from_task = f.get();
  EXPECT_FALSE(s.tracing());
  EXPECT_TRUE(nlohmann::json::accept(from_task.json()));
  done.store(true);
  load.join();
}

TEST(Trace, RefusalsNameTheCulprit) {
  Scheduler s(2);
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const vitte::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no UsageError");
  };
  EXPECT_NE(message([&] { (void)s.stop_trace(); }).find("no trace is recording"), std::string::npos);
  EXPECT_NE(message([&] { s.start_trace({.events_per_worker = 0}); }).find("events_per_worker"), std::string::npos);
  EXPECT_NE(message([&] { s.start_trace({.sample_every = 0}); }).find("sample_every"), std::string::npos);
  EXPECT_NE(message([&] { s.start_trace({.events_per_worker = SIZE_MAX}); }).find("events_per_worker"),
            std::string::npos)
      << "a vitte error naming the field, not std::bad_array_new_length";
  EXPECT_FALSE(s.tracing());
  s.start_trace();
  EXPECT_TRUE(s.tracing());
  EXPECT_NE(message([&] { s.start_trace(); }).find("already recording"), std::string::npos);
  const vitte::Trace t = s.stop_trace();
  try {
    t.write("/nonexistent-dir/trace.json");
    ADD_FAILURE() << "write() to a missing directory succeeded";
  } catch (const vitte::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/trace.json"), std::string::npos) << e.what();
  }
}

TEST(Trace, ShutdownEndsTheRecordingCleanly) {
  {
    Scheduler s = two_nodes(2);
    s.start_trace();
    s.submit(Task([] { vitte::test::tree(4); }));
    s.shutdown();
    try {
      s.start_trace();  // still recording, but shutting down is what stands in the way
      ADD_FAILURE() << "start_trace() after shutdown() was accepted";
    } catch (const vitte::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("shutting down"), std::string::npos) << e.what();
    }
    const vitte::Trace t = s.stop_trace();
    EXPECT_EQ(t.tasks_run(), s.metrics().total.executed);
    EXPECT_THROW(s.start_trace(), vitte::UsageError);
  }
  Scheduler dropped = two_nodes(2);  // destroyed while recording: frees the buffers
  dropped.start_trace();
  dropped.submit(Task([] { vitte::test::tree(4); }));
}

}  // namespace

// The metrics module beyond the always-on counts: steals by distance, idle time and worker
// state, submit-to-start latency, sampled queue depths, event counters (PAPI, or Linux's
// software events) per worker, node and group, and the settings that turn them on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fork_join_tree.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Holds `n` workers inside tasks until release(): a scheduler whose workers are all busy.
struct Blockers {
  std::atomic<int> inside{0};
  std::atomic<bool> go{false};
  void occupy(vitte::Scheduler& s, int n) {
    for (int i = 0; i < n; ++i)
      s.submit(vitte::Task([this] {
        inside.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
      }));
    while (inside.load() < n) std::this_thread::yield();
  }
  void release() { go.store(true); }
};

std::string usage_error(vitte::Options o) {
  try {
    vitte::Scheduler s(std::move(o));
  } catch (const vitte::Error& e) {
    return e.what();
  }
  return "";
}

std::string config_error(const std::string& text) {
  try {
    vitte::Config::parse(text, "m.toml");
  } catch (const vitte::ConfigError& e) {
    return e.what();
  }
  return "";
}

std::size_t index_of(const std::vector<std::string>& v, const std::string& name) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] == name) return i;
  return v.size();
}

bool listed_unavailable(const vitte::CounterInfo& info, const std::string& name) {
  for (const auto& m : info.unavailable)
    if (m.event == name) return !m.why.empty();
  return false;
}

}  // namespace

TEST(LatencyHistogram, BucketsBoundTheirValuesWithinAnEighth) {
  using H = vitte::LatencyHistogram;
  std::int64_t last_edge = -1;
  for (unsigned b = 0; b + 1 < H::kBuckets; ++b) {
    const std::int64_t edge = H::upper_edge(b);
    ASSERT_GT(edge, last_edge) << "bucket " << b;
    EXPECT_EQ(H::bucket_of(edge), b);
    EXPECT_EQ(H::bucket_of(edge + 1), b + 1);
    last_edge = edge;
  }
  for (std::int64_t v : {0ll, 1ll, 7ll, 8ll, 9ll, 100ll, 1000ll, 123456ll, 1ll << 30, 987654321012ll}) {
    const std::int64_t edge = H::upper_edge(H::bucket_of(v));
    EXPECT_GE(edge, v);
    EXPECT_LE(static_cast<double>(edge - v), static_cast<double>(v) / 8.0 + 1.0) << v;
  }
}

TEST(LatencyHistogram, PercentilesOfKnownData) {
  vitte::LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0);
  for (std::int64_t v = 1; v <= 1000; ++v) {  // 1..1000 ns
    ++h.buckets[vitte::LatencyHistogram::bucket_of(v * 1000)];
    ++h.count;
    h.max_ns = v * 1000;
  }
  const std::int64_t p50 = h.percentile(0.5), p99 = h.percentile(0.99);
  EXPECT_GE(p50, 500'000);
  EXPECT_LE(p50, 500'000 + 500'000 / 8);
  EXPECT_GE(p99, 990'000);
  EXPECT_LE(p99, 1'000'000);  // never above the maximum
  EXPECT_EQ(h.percentile(1.0), 1'000'000);
}

TEST(Metrics, StealBinsAddUpToStealsAndCarryTheTopologysDistances) {
  vitte::Options o;
  o.topology = vitte::Topology::from_xml(vitte::test::topology_file("16amd64-4distances.xml"));
  o.workers = 8;
  vitte::Scheduler s(std::move(o));
  const vitte::Topology& topo = s.topology();
  std::atomic<std::uint64_t> sum{0};
  const int roots = static_cast<int>(vitte::test::scaled(64));
  for (int r = 0; r < roots; ++r) s.submit(vitte::Task([&] { sum += vitte::test::tree(12); }), {.node = 0});
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics();
  std::uint64_t remote = 0;
  for (const vitte::WorkerMetrics& w : m.workers) {
    std::uint64_t in_bins = 0;
    for (const vitte::StealBin& b : w.steal_bins) {
      in_bins += b.steals;
      if (b.scope != vitte::StealScope::Remote) {
        EXPECT_EQ(b.distance, 10u);
        continue;
      }
      remote += b.steals;
      std::set<unsigned> distances;
      for (unsigned n = 0; n < topo.nodes().size(); ++n)
        if (n != w.node) distances.insert(topo.distance(w.node, n));
      EXPECT_TRUE(distances.count(b.distance)) << "worker " << w.worker << ": remote bin at distance " << b.distance;
    }
    EXPECT_EQ(in_bins, w.counts.steals()) << "worker " << w.worker;
  }
  EXPECT_EQ(remote, m.total.steals_remote);
  EXPECT_GT(remote, 0u) << "the other nodes' workers took none of node 0's work";
  std::uint64_t total_bins = 0;
  for (const vitte::StealBin& b : m.steal_bins) total_bins += b.steals;
  EXPECT_EQ(total_bins, m.total.steals());
}

TEST(Metrics, IdleTimeAndStateOfEachWorker) {
  vitte::Scheduler s(2);
  std::this_thread::sleep_for(60ms);
  vitte::MetricsSnapshot m = s.metrics();
  for (const vitte::WorkerMetrics& w : m.workers) {
    EXPECT_GE(w.idle_ns, 40'000'000u) << "worker " << w.worker << " had nothing to do for 60 ms";
    EXPECT_LE(w.idle_ns, w.alive_ns);
    EXPECT_NE(w.state, vitte::WorkerState::Running);
  }
  Blockers b;
  b.occupy(s, 2);
  const vitte::MetricsSnapshot busy_from = s.metrics();
  std::this_thread::sleep_for(30ms);
  m = s.metrics() - busy_from;
  for (const vitte::WorkerMetrics& w : m.workers) {
    EXPECT_EQ(w.state, vitte::WorkerState::Running) << "worker " << w.worker;
    EXPECT_LT(w.idle_ns, 5'000'000u) << "worker " << w.worker << " ran a task all along";
    EXPECT_GE(w.alive_ns, 25'000'000u);
  }
  b.release();
  s.join_all();
  s.shutdown();
  for (const vitte::WorkerMetrics& w : s.metrics().workers) EXPECT_EQ(w.state, vitte::WorkerState::Stopped);
}

TEST(Metrics, SubmitLatencyCountsExternalSubmissionsOnly) {
  vitte::Scheduler s(2);
  const vitte::MetricsSnapshot before = s.metrics();
  const int n = 200;
  for (int i = 0; i < n; ++i)
    s.submit(vitte::Task([] {
      vitte::TaskGroup g;  // spawned inside a task: not an external submission
      for (int k = 0; k < 4; ++k) g.run([] {});
      g.wait();
    }));
  auto f = s.async([] { return 1; });
  EXPECT_EQ(f.get(), 1);
  s.submit(vitte::Task([] {}), vitte::TaskOptions{.priority = vitte::Priority::Normal});
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics() - before;
  EXPECT_EQ(m.submit_latency.count, static_cast<std::uint64_t>(n + 2));
  EXPECT_LE(m.submit_latency.percentile(0.5), m.submit_latency.percentile(0.99));
  EXPECT_LE(m.submit_latency.percentile(0.99), m.submit_latency.max_ns);
  EXPECT_GT(m.submit_latency.max_ns, 0);
  std::uint64_t by_node = 0;
  for (const vitte::NodeMetrics& nm : m.nodes) by_node += nm.submit_latency.count;
  EXPECT_EQ(by_node, m.submit_latency.count);

  // A task that waits behind busy workers shows the wait.
  Blockers b;
  b.occupy(s, 2);
  const vitte::MetricsSnapshot from = s.metrics();
  s.submit(vitte::Task([] {}));
  std::this_thread::sleep_for(30ms);
  b.release();
  s.join_all();
  const vitte::MetricsSnapshot late = s.metrics() - from;
  ASSERT_EQ(late.submit_latency.count, 1u);
  EXPECT_GE(late.submit_latency.max_ns, 30'000'000);
  EXPECT_GE(late.submit_latency.percentile(0.5), 30'000'000);
}

TEST(Metrics, QueueDepthIsSampledWhenAsked) {
  {
    vitte::Scheduler plain(2);
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(plain.metrics().nodes[0].queue_depth.samples, 0u) << "no sampler unless asked";
  }
  vitte::Options o;
  o.workers = 2;
  o.metrics.sample_interval = 1ms;
  vitte::Scheduler s(std::move(o));
  Blockers b;
  b.occupy(s, 2);
  const int queued = 100;
  for (int i = 0; i < queued; ++i) s.submit(vitte::Task([] {}));
  const vitte::MetricsSnapshot from = s.metrics();
  EXPECT_EQ(from.nodes[0].queue_depth.now, static_cast<std::uint64_t>(queued));
  const auto until = std::chrono::steady_clock::now() + 10s;
  vitte::QueueDepth d;
  do {
    std::this_thread::sleep_for(2ms);
    d = (s.metrics() - from).nodes[0].queue_depth;
  } while (d.samples < 5 && std::chrono::steady_clock::now() < until);
  ASSERT_GE(d.samples, 5u);
  EXPECT_EQ(d.max, static_cast<std::uint64_t>(queued));
  EXPECT_DOUBLE_EQ(d.mean(), static_cast<double>(queued)) << "nothing ran while the workers were held";
  b.release();
  s.join_all();
  EXPECT_EQ(s.metrics().nodes[0].queue_depth.now, 0u);
}

TEST(Metrics, NothingIsCountedUnlessAsked) {
  vitte::Scheduler s(2);
  s.submit(vitte::Task([] {}));
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics();
  EXPECT_FALSE(m.counter_info.requested);
  EXPECT_TRUE(m.counter_info.events.empty());
  EXPECT_TRUE(m.counters.empty());
  for (const auto& w : m.workers) EXPECT_TRUE(w.counters.empty());
}

// The default set on this machine: hardware events where it has them; where none counts
// (VMs without a PMU), Linux's software events; each missing event named with its reason.
TEST(Metrics, DefaultCountersCountOrSayWhyNot) {
  vitte::Options o;
  o.workers = 2;
  o.metrics.counters = true;
  vitte::Scheduler s(std::move(o));
  const int sleepers = 20;
  for (int i = 0; i < sleepers; ++i) s.submit(vitte::Task([] { std::this_thread::sleep_for(1ms); }));
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics();
  const vitte::CounterInfo& info = m.counter_info;
  EXPECT_TRUE(info.requested);
  ASSERT_EQ(info.events.size(), info.sources.size());
  ASSERT_EQ(m.counters.size(), info.events.size());
  for (const auto& miss : info.unavailable) {
    EXPECT_FALSE(miss.why.empty()) << miss.event;
    EXPECT_EQ(index_of(info.events, miss.event), info.events.size()) << miss.event << " both counted and missing";
  }
  // Every wanted default event is either counted or reported.
  const char* defaults[] = {"PAPI_L1_DCM", "PAPI_L2_DCM", "PAPI_L3_TCM", "PAPI_TLB_DM", "PAPI_TOT_INS", "PAPI_TOT_CYC"};
  std::size_t hardware = 0;
  for (const char* e : defaults) {
    const bool counted = index_of(info.events, e) < info.events.size();
    hardware += counted ? 1 : 0;
    EXPECT_TRUE(counted || listed_unavailable(info, e)) << e;
  }
  if (hardware == 0) {
    EXPECT_NE(info.note.find("software"), std::string::npos) << info.note;
    const std::size_t cs = index_of(info.events, "perf::CONTEXT-SWITCHES");
    if (cs == info.events.size()) {
      EXPECT_TRUE(listed_unavailable(info, "perf::CONTEXT-SWITCHES")) << "neither counted nor reported";
    } else {
      // Each sleeping task switches out at least once, on whichever worker ran it.
      EXPECT_GE(m.counters[cs], static_cast<std::uint64_t>(sleepers));
      for (const auto& w : m.workers) {
        ASSERT_EQ(w.counters.size(), info.events.size());
        EXPECT_GE(w.counters[cs], w.counts.executed) << "worker " << w.worker;
      }
    }
  }
  for (const auto& w : m.workers) EXPECT_GT(w.counters_read_ns, 0);
}

TEST(Metrics, NamedEventsAndUnknownOnes) {
  vitte::Options o;
  o.workers = 1;
  o.metrics.events = std::vector<std::string>{"perf::CONTEXT-SWITCHES", "NO_SUCH_EVENT", "perf::CONTEXT-SWITCHES"};
  vitte::Scheduler s(std::move(o));
  const vitte::CounterInfo info = s.metrics().counter_info;
  EXPECT_TRUE(info.requested) << "naming events turns counting on";
  EXPECT_TRUE(listed_unavailable(info, "NO_SUCH_EVENT"));
  EXPECT_LE(info.events.size(), 1u) << "a duplicate is counted once";
  EXPECT_TRUE(index_of(info.events, "perf::CONTEXT-SWITCHES") == 0 ||
              listed_unavailable(info, "perf::CONTEXT-SWITCHES"));
}

TEST(Metrics, GroupCountersSumTheirTasksOnly) {
  vitte::Options o;
  o.workers = 2;
  o.metrics.events = std::vector<std::string>{"perf::CONTEXT-SWITCHES"};
  vitte::Scheduler s(std::move(o));
  if (s.metrics().counter_info.events.empty()) GTEST_SKIP() << "perf::CONTEXT-SWITCHES cannot be counted here: "
                                                            << s.metrics().counter_info.unavailable.at(0).why;
  vitte::Group counted = s.make_group({.name = "counted", .counters = true});
  vitte::Group plain = s.make_group({.name = "plain"});
  const int tasks = 10;
  for (int i = 0; i < tasks; ++i) {
    s.submit(vitte::Task([] { std::this_thread::sleep_for(1ms); }), vitte::TaskOptions{.group = counted});
    s.submit(vitte::Task([] { std::this_thread::sleep_for(1ms); }), vitte::TaskOptions{.group = plain});
  }
  s.join_all();
  const vitte::MetricsSnapshot m = s.metrics();
  for (const vitte::GroupMetrics& g : m.groups) {
    if (g.name == "counted") {
      ASSERT_EQ(g.counters.size(), 1u);
      EXPECT_GE(g.counters[0], static_cast<std::uint64_t>(tasks));
      EXPECT_LE(g.counters[0], m.counters[0]);
    } else {
      EXPECT_TRUE(g.counters.empty()) << "group '" << g.name << "' did not ask";
    }
  }
}

TEST(Metrics, AFreshReadFromInsideATask) {
  vitte::Options o;
  o.workers = 1;
  o.metrics.counters = true;
  vitte::Scheduler s(std::move(o));
  if (s.metrics().counter_info.events.empty()) GTEST_SKIP() << "no event counts here";
  std::int64_t asked = 0, read = 0;
  s.submit(vitte::Task([&] {
    asked = steady_ns();
    read = s.metrics().workers[0].counters_read_ns;
  }));
  s.join_all();
  EXPECT_GE(read, asked) << "the worker asking read its own counters";
}

TEST(Metrics, SettingsThatWouldNotApplyAreRefused) {
  vitte::Options o;
  o.workers = 1;
  o.metrics.counters = false;
  o.metrics.events = std::vector<std::string>{"PAPI_TOT_INS"};
  EXPECT_NE(usage_error(o).find("counters = false"), std::string::npos) << usage_error(o);
  o.metrics.counters.reset();
  o.metrics.events = std::vector<std::string>(17, "perf::TASK-CLOCK");
  EXPECT_NE(usage_error(o).find("at most 16"), std::string::npos) << usage_error(o);
  o.metrics.events = std::vector<std::string>{""};
  EXPECT_NE(usage_error(o).find("not an event name"), std::string::npos) << usage_error(o);
  o.metrics.events.reset();
  o.metrics.sample_interval = -1ms;
  EXPECT_NE(usage_error(o).find("negative"), std::string::npos) << usage_error(o);
  o.metrics.sample_interval = 50us;
  EXPECT_NE(usage_error(o).find("at least 100 us"), std::string::npos) << usage_error(o);

  vitte::Scheduler s(1);
  try {
    (void)s.make_group({.name = "g", .counters = true});
    ADD_FAILURE() << "a group asked for counters that nothing counts";
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("counts none"), std::string::npos) << e.what();
  }
}

TEST(Metrics, ConfigMetricsTable) {
  const vitte::Config c = vitte::Config::parse(R"(
[metrics]
events = ["perf::CONTEXT-SWITCHES", "PAPI_TOT_INS"]
sample_interval = "5ms"
[[groups]]
name = "g"
counters = true
)");
  ASSERT_TRUE(c.counters);
  EXPECT_TRUE(*c.counters);
  ASSERT_TRUE(c.events);
  EXPECT_EQ(c.events->size(), 2u);
  EXPECT_EQ(c.sample_interval, 5ms);
  ASSERT_EQ(c.groups.size(), 1u);
  EXPECT_TRUE(c.groups[0].counters);

  EXPECT_NE(config_error("[metrics]\ncounters = 1\n").find("metrics.counters = 1: expected true or false"),
            std::string::npos);
  EXPECT_NE(config_error("[metrics]\nevents = \"PAPI_TOT_INS\"\n").find("expected a list"), std::string::npos);
  EXPECT_NE(config_error("[metrics]\nevents = []\n").find("leave the key out"), std::string::npos);
  EXPECT_NE(config_error("[metrics]\nevents = [1]\n").find("not an event name"), std::string::npos);
  EXPECT_NE(config_error("[metrics]\ncounters = false\nevents = [\"PAPI_TOT_INS\"]\n").find("conflicting"),
            std::string::npos);
  EXPECT_NE(config_error("[metrics]\nsample_interval = \"50us\"\n").find("at least 100us"), std::string::npos);
  EXPECT_NE(config_error("[metrics]\ncolour = true\n").find("colour"), std::string::npos);
  EXPECT_NE(config_error("[[groups]]\nname = \"g\"\ncounters = \"yes\"\n").find("expected true or false"),
            std::string::npos);

  // Applied: the sampler runs, the group counts; a group that asks without counting is refused.
  vitte::Options o;
  o.workers = 1;
  o.config = c;
  {
    vitte::Scheduler s(o);
    EXPECT_TRUE(s.metrics().counter_info.requested);
    std::this_thread::sleep_for(20ms);
    EXPECT_GT(s.metrics().nodes[0].queue_depth.samples, 0u);
  }
  o.config = vitte::Config::parse("[[groups]]\nname = \"g\"\ncounters = true\n", "g.toml");
  try {
    vitte::Scheduler s(o);
    ADD_FAILURE() << "accepted a group that asks for counters nothing counts";
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("g.toml' line 1"), std::string::npos) << e.what();
  }
  o.config = c;
  o.metrics.counters = false;
  EXPECT_NE(usage_error(o).find("conflicting settings: metrics.counters"), std::string::npos) << usage_error(o);
}

// Snapshots taken from another thread while workers run, count and sample: what TSan
// checks (the counters' publication, the sampler, the idle clock).
TEST(Metrics, SnapshotsWhileWorkersRun) {
  vitte::Options o;
  o.workers = 2;
  o.metrics.counters = true;
  o.metrics.sample_interval = 200us;
  vitte::Scheduler s(std::move(o));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      const vitte::MetricsSnapshot m = s.metrics();
      EXPECT_GE(m.total.executed, last);
      last = m.total.executed;
      for (const auto& w : m.workers) EXPECT_LE(w.idle_ns, w.alive_ns + 1'000'000);
    }
  });
  std::atomic<std::uint64_t> sum{0};
  const int roots = static_cast<int>(vitte::test::scaled(40));
  for (int r = 0; r < roots; ++r) s.submit(vitte::Task([&] { sum += vitte::test::tree(10); }));
  s.join_all();
  done.store(true);
  reader.join();
  EXPECT_EQ(sum.load(), static_cast<std::uint64_t>(roots) * s.async([] { return vitte::test::tree(10); }).get());
}

// A snapshot taken while workers record latencies is still one histogram: its count is the
// sum of its buckets, in every snapshot and every difference of two (a Prometheus histogram
// whose +Inf bucket disagreed with the others was exported before).
TEST(Metrics, LatencyCountIsTheSumOfItsBucketsWhileWorkersRecord) {
  vitte::Scheduler s(2);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop.load()) s.submit(vitte::Task([] {}));
  });
  vitte::MetricsSnapshot prev = s.metrics();
  for (int i = 0; i < 200; ++i) {
    const vitte::MetricsSnapshot now = s.metrics();
    for (const vitte::MetricsSnapshot& m : {now, now - prev}) {
      std::uint64_t sum = 0;
      for (std::uint64_t b : m.submit_latency.buckets) sum += b;
      ASSERT_EQ(m.submit_latency.count, sum) << "snapshot " << i;
    }
    prev = now;
  }
  stop = true;
  producer.join();
  s.join_all();
}

TEST(Metrics, AnEventNamedTwiceIsCountedOrReportedOnce) {
  vitte::Options o;
  o.workers = 1;
  o.metrics.events = std::vector<std::string>{"NO_SUCH_EVENT", "NO_SUCH_EVENT", "perf::task-clock", "perf::TASK-CLOCK"};
  vitte::Scheduler s(std::move(o));
  const vitte::CounterInfo info = s.metrics().counter_info;
  std::size_t missing = 0, task_clock = 0;
  for (const auto& m : info.unavailable) missing += m.event == "NO_SUCH_EVENT" ? 1 : 0;
  for (const auto& m : info.unavailable) task_clock += m.event == "perf::TASK-CLOCK" ? 1 : 0;
  for (const auto& e : info.events) task_clock += e == "perf::TASK-CLOCK" ? 1 : 0;
  EXPECT_EQ(missing, 1u);
  EXPECT_EQ(task_clock, 1u) << "two spellings of one software event are one event";
}

TEST(Metrics, ASampleIntervalBeyondAnHourIsRefused) {
  vitte::Options o;
  o.workers = 1;
  o.metrics.sample_interval = std::chrono::nanoseconds::max();
  EXPECT_THROW(vitte::Scheduler s(std::move(o)), vitte::UsageError);
}

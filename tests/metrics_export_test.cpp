// Metrics export: the JSON document and the Prometheus text (metrics_export.hpp), from a
// hand-built snapshot whose every value is known, and from a live scheduler.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "vitte/metrics_export.hpp"
#include "vitte/vitte.hpp"

namespace {

using nlohmann::json;

// A user's group name with every character the exposition format must escape.
const std::string kNastyGroup = "a\"b\\c\nd";

vitte::MetricsSnapshot sample_snapshot() {
  vitte::MetricsSnapshot m;
  m.taken_ns = 123456789;
  m.counter_info.requested = true;
  m.counter_info.events = {"PAPI_TOT_INS", "perf::CONTEXT-SWITCHES"};
  m.counter_info.sources = {"papi", "perf_event"};
  m.counter_info.unavailable = {{"PAPI_L3_TCM", "no such event on this CPU"}};
  m.counter_info.note = "PAPI counted two events; one was refused";
  for (unsigned i = 0; i < 2; ++i) {
    vitte::WorkerMetrics w;
    w.worker = i;
    w.node = i;
    w.counts.executed = 100 + i;
    w.counts.spawned = 40;
    w.counts.steals_l3 = 1;
    w.counts.steals_node = 2;
    w.counts.steals_remote = 3 + i;
    w.counts.parks = 7;
    w.steal_bins = {{vitte::StealScope::L3, 10, 1}, {vitte::StealScope::Node, 10, 2}, {vitte::StealScope::Remote, 21, 3 + i}};
    w.state = i == 0 ? vitte::WorkerState::Running : vitte::WorkerState::Parked;
    w.idle_ns = 1500000000;  // 1.5 s
    w.alive_ns = 4000000000;
    w.counters = {1000 * (i + 1), 5};
    w.counters_read_ns = 42;
    m.workers.push_back(w);
    m.total += w.counts;
    vitte::NodeMetrics n;
    n.node = i;
    n.workers = 1;
    n.counts = w.counts;
    n.timers.armed = 4;
    n.timers.fired = 3;
    n.steal_bins = w.steal_bins;
    n.idle_ns = w.idle_ns;
    n.counters = w.counters;
    m.nodes.push_back(n);
  }
  m.nodes[0].queue_depth = {3, 10, 25, 9};
  m.nodes[1].queue_depth = {1, 0, 0, 0};  // the sampler is off there
  for (std::int64_t ns : {100, 100, 5000, 1000000}) {
    auto& h = m.nodes[0].submit_latency;
    ++h.buckets[vitte::LatencyHistogram::bucket_of(ns)];
    ++h.count;
    h.max_ns = std::max(h.max_ns, ns);
  }
  m.submit_latency = m.nodes[0].submit_latency;
  m.steal_bins = {{vitte::StealScope::L3, 10, 2}, {vitte::StealScope::Node, 10, 4}, {vitte::StealScope::Remote, 21, 7}};
  m.counters = {3000, 10};
  m.frames_live = 17;
  m.memory = {{0, 5, 4096, 4, 2048}};
  m.deadlines_met = 8;
  m.deadlines_missed = 1;
  m.groups.push_back({0, "", "", 1.0, 11, 2000000, 0, {}});
  m.groups.push_back({3, kNastyGroup, "", 2.5, 6, 1500, 1, {77, 2}, {{"lex", 5, 1, 3}, {kNastyGroup, 2, 0, 0}}});
  return m;
}

TEST(MetricsJson, EveryFieldRoundTrips) {
  const vitte::MetricsSnapshot m = sample_snapshot();
  const json j = json::parse(vitte::metrics_json(m));
  EXPECT_EQ(j["schema"], vitte::kMetricsJsonSchema);
  EXPECT_EQ(j["taken_ns"], 123456789);
  EXPECT_EQ(j["total"]["executed"], 201);
  EXPECT_EQ(j["total"]["steals_remote"], 7);
  EXPECT_DOUBLE_EQ(j["total"]["remote_steal_fraction"].get<double>(), 7.0 / 13.0);
  EXPECT_EQ(j["frames_live"], 17);
  EXPECT_EQ(j["deadlines_met"], 8);
  EXPECT_EQ(j["deadlines_missed"], 1);
  EXPECT_EQ(j["timers"]["armed"], 0);  // the snapshot's own field, not a sum made here
  EXPECT_EQ(j["memory"][0], json({{"node", 0}, {"allocations", 5}, {"bytes_allocated", 4096}, {"frees", 4}, {"bytes_freed", 2048}}));
  EXPECT_EQ(j["steal_bins"][2], json({{"scope", "remote"}, {"distance", 21}, {"steals", 7}}));
  EXPECT_EQ(j["counters"], json({{"PAPI_TOT_INS", 3000}, {"perf::CONTEXT-SWITCHES", 10}}));
  const json& info = j["counter_info"];
  EXPECT_EQ(info["requested"], true);
  EXPECT_EQ(info["events"], json({"PAPI_TOT_INS", "perf::CONTEXT-SWITCHES"}));
  EXPECT_EQ(info["sources"], json({"papi", "perf_event"}));
  EXPECT_EQ(info["unavailable"], json::array({{{"event", "PAPI_L3_TCM"}, {"why", "no such event on this CPU"}}}));
  EXPECT_EQ(info["note"], "PAPI counted two events; one was refused");

  ASSERT_EQ(j["workers"].size(), 2u);
  const json& w1 = j["workers"][1];
  EXPECT_EQ(w1["worker"], 1);
  EXPECT_EQ(w1["node"], 1);
  EXPECT_EQ(w1["executed"], 101);
  EXPECT_EQ(w1["steals_same_l3"], 1);
  EXPECT_EQ(w1["steals_same_node"], 2);
  EXPECT_EQ(w1["parks"], 7);
  EXPECT_EQ(w1["state"], "parked");
  EXPECT_EQ(j["workers"][0]["state"], "running");
  EXPECT_EQ(w1["idle_ns"], 1500000000);
  EXPECT_EQ(w1["alive_ns"], 4000000000);
  EXPECT_EQ(w1["counters"], json({{"PAPI_TOT_INS", 2000}, {"perf::CONTEXT-SWITCHES", 5}}));
  EXPECT_EQ(w1["counters_read_ns"], 42);
  EXPECT_EQ(w1["steal_bins"].size(), 3u);

  ASSERT_EQ(j["nodes"].size(), 2u);
  const json& n0 = j["nodes"][0];
  EXPECT_EQ(n0["node"], 0);
  EXPECT_EQ(n0["workers"], 1);
  EXPECT_EQ(n0["executed"], 100);
  EXPECT_EQ(n0["timers"], json({{"armed", 4}, {"fired", 3}, {"cancelled", 0}, {"dropped", 0}, {"pending", 1}}));
  EXPECT_EQ(n0["queue_depth"]["now"], 3);
  EXPECT_EQ(n0["queue_depth"]["samples"], 10);
  EXPECT_EQ(n0["queue_depth"]["sum"], 25);
  EXPECT_DOUBLE_EQ(n0["queue_depth"]["mean"].get<double>(), 2.5);
  EXPECT_EQ(n0["queue_depth"]["max"], 9);
  EXPECT_EQ(j["nodes"][1]["queue_depth"]["samples"], 0);
  const json& lat = n0["submit_latency"];
  EXPECT_EQ(lat["count"], 4);
  EXPECT_EQ(lat["max_ns"], 1000000);
  EXPECT_EQ(lat["p50_ns"], 103);      // 100 ns lies in the bucket [96, 103]: its upper edge
  EXPECT_EQ(lat["p99_ns"], 1000000);  // the top bucket's edge, capped at the maximum
  // Non-empty buckets only, in order, each with its largest value: 100 (twice), 5000, 1e6.
  ASSERT_EQ(lat["buckets"].size(), 3u) << lat;
  EXPECT_EQ(lat["buckets"][0]["count"], 2);
  EXPECT_EQ(lat["buckets"][0]["le_ns"], vitte::LatencyHistogram::upper_edge(vitte::LatencyHistogram::bucket_of(100)));
  EXPECT_GE(lat["buckets"][2]["le_ns"].get<std::int64_t>(), 1000000);
  EXPECT_EQ(j["nodes"][1]["submit_latency"]["buckets"], json::array());

  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["counters"], json::object()) << "a group that does not count shows no event";
  const json& g = j["groups"][1];
  EXPECT_EQ(g["id"], 3);
  EXPECT_EQ(g["name"], kNastyGroup);
  EXPECT_EQ(g["weight"], 2.5);
  EXPECT_EQ(g["tasks"], 6);
  EXPECT_EQ(g["cpu_ns"], 1500);
  EXPECT_EQ(g["deadlines_missed"], 1);
  EXPECT_EQ(g["counters"], json({{"PAPI_TOT_INS", 77}, {"perf::CONTEXT-SWITCHES", 2}}));
  EXPECT_EQ(g["named"], json::array({{{"name", "lex"}, {"runs", 5}, {"failed", 1}, {"cancelled", 3}},
                                     {{"name", kNastyGroup}, {"runs", 2}, {"failed", 0}, {"cancelled", 0}}}));
  EXPECT_EQ(j["groups"][0]["named"], json::array());
}

TEST(MetricsJson, IndentPrettyPrintsTheSameDocument) {
  const vitte::MetricsSnapshot m = sample_snapshot();
  const std::string flat = vitte::metrics_json(m), pretty = vitte::metrics_json(m, 2);
  EXPECT_EQ(flat.find('\n'), std::string::npos);
  EXPECT_NE(pretty.find("\n  \"schema\""), std::string::npos);
  EXPECT_EQ(json::parse(flat), json::parse(pretty));
}

TEST(MetricsJson, UnmeasuredEventsAreAbsentNotZero) {
  vitte::MetricsSnapshot m = sample_snapshot();
  m.counter_info = {};
  m.counters.clear();
  for (auto& w : m.workers) w.counters.clear();
  const json j = json::parse(vitte::metrics_json(m));
  EXPECT_EQ(j["counters"], json::object());
  EXPECT_EQ(j["workers"][0]["counters"], json::object());
  EXPECT_EQ(j["counter_info"]["requested"], false);
  EXPECT_EQ(j["counter_info"]["events"], json::array());
}

// --- Prometheus ---------------------------------------------------------------------

// One sample of the exposition, its label values unescaped.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Checks `text` against the text format 0.0.4 line by line, collecting the samples; each
// violation is added to `errors` with its line number.
std::vector<Sample> parse_exposition(const std::string& text, std::vector<std::string>& errors) {
  std::vector<Sample> samples;
  if (!text.empty() && text.back() != '\n') errors.push_back("the last line does not end with a line feed");
  const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  const std::set<std::string> types = {"counter", "gauge", "histogram", "summary", "untyped"};
  std::map<std::string, std::string> type_of;
  std::set<std::string> helped, finished;
  std::string current;  // the family whose samples are being read
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const auto fail = [&](const std::string& why) { errors.push_back("line " + std::to_string(n) + ": " + why + ": " + line); };
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream l(line.substr(1));
      std::string kind, name, rest;
      l >> kind >> name;
      std::getline(l, rest);
      if (kind != "HELP" && kind != "TYPE") continue;  // a plain comment
      if (!std::regex_match(name, metric_name)) fail("bad metric name");
      if (finished.count(name) || name == current) fail(kind + " after the family's samples");
      if (kind == "HELP") {
        if (!helped.insert(name).second) fail("second HELP");
      } else {
        const std::string type = rest.empty() ? "" : rest.substr(1);
        if (!types.count(type)) fail("unknown type");
        if (!type_of.emplace(name, type).second) fail("second TYPE");
      }
      continue;
    }
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!std::regex_match(s.name, metric_name)) fail("bad metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) { fail("label without '='"); break; }
        const std::string lname = line.substr(i, eq - i);
        if (!std::regex_match(lname, label_name)) fail("bad label name '" + lname + "'");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') { fail("label value not quoted"); break; }
        std::string value;
        std::size_t k = eq + 2;
        for (; k < line.size() && line[k] != '"'; ++k) {
          if (line[k] != '\\') { value += line[k]; continue; }
          const char e = k + 1 < line.size() ? line[++k] : '\0';
          if (e == '\\') value += '\\';
          else if (e == '"') value += '"';
          else if (e == 'n') value += '\n';
          else fail(std::string("bad escape \\") + e);
        }
        if (k >= line.size()) { fail("unterminated label value"); break; }
        if (!s.labels.emplace(lname, value).second) fail("label '" + lname + "' twice");
        i = k + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) { fail("unterminated label set"); continue; }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') { fail("no space before the value"); continue; }
    const std::string value = line.substr(i + 1);
    if (value == "+Inf") s.value = HUGE_VAL;
    else if (value == "-Inf") s.value = -HUGE_VAL;
    else if (value == "NaN") s.value = std::nan("");
    else {
      char* end = nullptr;
      s.value = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0') fail("bad value '" + value + "'");
    }
    // The family: a histogram's or summary's samples carry a suffix.
    std::string family = s.name;
    for (const std::string suffix : {"_bucket", "_count", "_sum"})
      if (s.name.size() > suffix.size() && s.name.ends_with(suffix)) {
        const std::string base = s.name.substr(0, s.name.size() - suffix.size());
        if (type_of.count(base) && (type_of[base] == "histogram" || type_of[base] == "summary")) family = base;
      }
    if (!type_of.count(family) || !helped.count(family)) fail("sample before its family's HELP and TYPE");
    if (family != current) {
      if (finished.count(family)) fail("the family's samples are not in one group");
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    if (type_of[family] == "counter" && !family.ends_with("_total")) fail("a counter not named *_total");
    if (s.name.ends_with("_bucket") && family != s.name && !s.labels.count("le")) fail("a bucket without le");
    samples.push_back(s);
  }
  return samples;
}

// The samples named `name` whose labels include every one of `want`.
std::vector<Sample> find(const std::vector<Sample>& all, const std::string& name,
                         const std::map<std::string, std::string>& want = {}) {
  std::vector<Sample> out;
  for (const Sample& s : all) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) match = match && s.labels.count(k) && s.labels.at(k) == v;
    if (match) out.push_back(s);
  }
  return out;
}

double value_of(const std::vector<Sample>& all, const std::string& name, const std::map<std::string, std::string>& want) {
  const auto found = find(all, name, want);
  EXPECT_EQ(found.size(), 1u) << name;
  return found.empty() ? -1 : found[0].value;
}

TEST(MetricsPrometheus, TheCheckerRejectsWhatTheFormatForbids) {
  const std::vector<std::string> bad = {
      "x_total 1\n",                                                            // no HELP/TYPE
      "# HELP x_total a\n# TYPE x_total counter\nx_total{a=\"b} 1\n",         // unterminated
      "# HELP x_total a\n# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n",     // bad escape
      "# HELP x a\n# TYPE x counter\nx 1\n",                                    // counter without _total
      "# HELP 1x a\n# TYPE 1x gauge\n1x 1\n",                                   // bad name
      "# HELP x a\n# TYPE x gauge\nx 1\n# HELP y a\n# TYPE y gauge\ny 1\nx 2\n",  // split family
      "# HELP x a\n# TYPE x gauge\nx one\n",                                    // bad value
      "# HELP x a\n# TYPE x gauge\n# TYPE x gauge\nx 1\n",                      // TYPE twice
      "# HELP x a\n# TYPE x gauge\nx 1",                                        // no final line feed
  };
  for (const std::string& t : bad) {
    std::vector<std::string> errors;
    parse_exposition(t, errors);
    EXPECT_FALSE(errors.empty()) << t;
  }
}

TEST(MetricsPrometheus, ParsesAsTheTextFormatWithTheExpectedSamples) {
  const vitte::MetricsSnapshot m = sample_snapshot();
  const std::string text = vitte::metrics_prometheus(m);
  std::vector<std::string> errors;
  const std::vector<Sample> s = parse_exposition(text, errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  ASSERT_FALSE(s.empty());
  for (const Sample& x : s) EXPECT_EQ(x.name.rfind("vitte_", 0), 0u) << x.name;

  EXPECT_EQ(value_of(s, "vitte_tasks_executed_total", {{"worker", "1"}, {"node", "1"}}), 101);
  EXPECT_EQ(value_of(s, "vitte_parks_total", {{"worker", "0"}}), 7);
  EXPECT_EQ(value_of(s, "vitte_steals_total", {{"worker", "1"}, {"scope", "remote"}}), 4);
  EXPECT_EQ(value_of(s, "vitte_steals_by_distance_total", {{"worker", "1"}, {"scope", "remote"}, {"distance", "21"}}), 4);
  EXPECT_EQ(value_of(s, "vitte_worker_idle_seconds_total", {{"worker", "0"}}), 1.5);
  EXPECT_EQ(value_of(s, "vitte_worker_state", {{"worker", "1"}, {"state", "parked"}}), 1);
  EXPECT_EQ(value_of(s, "vitte_worker_state", {{"worker", "1"}, {"state", "running"}}), 0);
  EXPECT_EQ(value_of(s, "vitte_events_total", {{"worker", "1"}, {"event", "PAPI_TOT_INS"}}), 2000);
  EXPECT_EQ(value_of(s, "vitte_event_info", {{"event", "perf::CONTEXT-SWITCHES"}, {"source", "perf_event"}}), 1);
  EXPECT_EQ(value_of(s, "vitte_event_unavailable_info", {{"event", "PAPI_L3_TCM"}, {"reason", "no such event on this CPU"}}), 1);
  EXPECT_TRUE(find(s, "vitte_events_total", {{"event", "PAPI_L3_TCM"}}).empty()) << "an unavailable event is no zero";
  EXPECT_EQ(value_of(s, "vitte_queue_depth", {{"node", "1"}}), 1);
  EXPECT_EQ(value_of(s, "vitte_queue_depth_max", {{"node", "0"}}), 9);
  EXPECT_EQ(value_of(s, "vitte_queue_depth_sampled_sum_total", {{"node", "0"}}), 25);
  EXPECT_TRUE(find(s, "vitte_queue_depth_max", {{"node", "1"}}).empty()) << "no sampler, no sampled figures";
  EXPECT_EQ(value_of(s, "vitte_timers_pending", {{"node", "0"}}), 1);
  EXPECT_EQ(value_of(s, "vitte_frames_live", {}), 17);
  EXPECT_EQ(value_of(s, "vitte_deadlines_missed_total", {}), 1);
  EXPECT_EQ(value_of(s, "vitte_memory_freed_bytes_total", {{"node", "0"}}), 2048);

  // The group whose name needs escaping comes back intact.
  EXPECT_EQ(value_of(s, "vitte_group_tasks_total", {{"id", "3"}, {"group", kNastyGroup}}), 6);
  EXPECT_EQ(value_of(s, "vitte_group_weight", {{"id", "3"}}), 2.5);
  EXPECT_EQ(value_of(s, "vitte_group_cpu_seconds_total", {{"id", "3"}}), 1.5e-6);
  EXPECT_EQ(value_of(s, "vitte_group_events_total", {{"id", "3"}, {"event", "PAPI_TOT_INS"}}), 77);
  EXPECT_TRUE(find(s, "vitte_group_events_total", {{"id", "0"}}).empty());
  EXPECT_EQ(value_of(s, "vitte_named_runs_total", {{"id", "3"}, {"name", "lex"}}), 5);
  EXPECT_EQ(value_of(s, "vitte_named_failed_total", {{"id", "3"}, {"name", "lex"}}), 1);
  EXPECT_EQ(value_of(s, "vitte_named_cancelled_total", {{"id", "3"}, {"name", "lex"}}), 3);
  EXPECT_EQ(value_of(s, "vitte_named_runs_total", {{"id", "3"}, {"name", kNastyGroup}}), 2);
  EXPECT_NE(text.find("group=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;

  // The latency histogram: cumulative buckets over the filled range, in increasing order,
  // +Inf equal to the count; no _sum (the histogram keeps none).
  const auto buckets = find(s, "vitte_submit_latency_seconds_bucket", {{"node", "0"}});
  ASSERT_GE(buckets.size(), 4u);
  double last_le = -1, last_count = 0;
  for (const Sample& b : buckets) {
    const double le = b.labels.at("le") == "+Inf" ? HUGE_VAL : std::strtod(b.labels.at("le").c_str(), nullptr);
    EXPECT_GT(le, last_le);
    EXPECT_GE(b.value, last_count);
    last_le = le;
    last_count = b.value;
  }
  EXPECT_EQ(buckets.back().labels.at("le"), "+Inf");
  EXPECT_EQ(buckets.back().value, 4);
  EXPECT_EQ(buckets.front().value, 2) << "the first bucket is the first one that holds samples";
  EXPECT_EQ(value_of(s, "vitte_submit_latency_seconds_count", {{"node", "0"}}), 4);
  EXPECT_EQ(find(s, "vitte_submit_latency_seconds_bucket", {{"node", "1"}}).size(), 1u) << "empty: +Inf only";
  EXPECT_TRUE(find(s, "vitte_submit_latency_seconds_sum").empty());
  EXPECT_EQ(value_of(s, "vitte_submit_latency_max_seconds", {{"node", "0"}}), 0.001);
}

// The counter table (vitte/detail/count_table.hpp) drives both exports: every row, given
// a value of its own, comes out under its JSON key and, where it has one, its family.
TEST(MetricsExport, EveryRowOfTheCounterTableIsExported) {
  vitte::MetricsSnapshot m;
  vitte::WorkerMetrics w;
  std::uint64_t next = 1000;
#define SET_ROW(member, key, prom, help) w.counts.member = next++;
  VITTE_COUNTS(SET_ROW)
#undef SET_ROW
  m.workers.push_back(w);
  m.total += w.counts;
  const json j = json::parse(vitte::metrics_json(m));
  std::vector<std::string> errors;
  const std::vector<Sample> s = parse_exposition(vitte::metrics_prometheus(m), errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  std::uint64_t want = 1000;
#define CHECK_ROW(member, key, prom, help)                                                  \
  EXPECT_EQ(j["total"][key], want) << key;                                                  \
  EXPECT_EQ(j["workers"][0][key], want) << key;                                             \
  if (const char* family = prom) {                                                         \
    EXPECT_EQ(value_of(s, family, {{"worker", "0"}}), want);                                \
  }                                                                                         \
  ++want;
  VITTE_COUNTS(CHECK_ROW)
#undef CHECK_ROW
  EXPECT_EQ(value_of(s, "vitte_steals_total", {{"worker", "0"}, {"scope", "l3"}}), w.counts.steals_l3);
}

TEST(MetricsPrometheus, NoEventFamilyWithoutCounting) {
  vitte::MetricsSnapshot m = sample_snapshot();
  m.counter_info = {};
  m.counters.clear();
  for (auto& w : m.workers) w.counters.clear();
  for (auto& g : m.groups) g.counters.clear();
  const std::string text = vitte::metrics_prometheus(m);
  std::vector<std::string> errors;
  parse_exposition(text, errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  for (const std::string family : {"vitte_events_total", "vitte_event_info", "vitte_event_unavailable_info", "vitte_group_events_total"})
    EXPECT_EQ(text.find(family), std::string::npos) << family << " (not even its HELP)";
}

// Label values are UTF-8 even when a group's name is not: bad bytes become U+FFFD.
TEST(MetricsPrometheus, LabelValuesAreValidUtf8) {
  vitte::MetricsSnapshot m = sample_snapshot();
  ASSERT_FALSE(m.groups.empty());
  m.groups[0].name = std::string("bad\xff\xfe name \xc3\xa9t\xc3") + "\xed\xa0\x80";  // invalid, valid, cut, surrogate
  const std::string text = vitte::metrics_prometheus(m);
  std::vector<std::string> errors;
  parse_exposition(text, errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  EXPECT_NE(text.find("bad\xEF\xBF\xBD\xEF\xBF\xBD name \xc3\xa9t\xEF\xBF\xBD"), std::string::npos) << text;
  EXPECT_EQ(text.find('\xff'), std::string::npos);
  EXPECT_EQ(text.find("\xed\xa0\x80"), std::string::npos) << "a surrogate is not UTF-8";
}

// A live scheduler's export holds the tasks it ran, in both formats.
TEST(MetricsExport, ALiveSchedulerExportsTheTasksItRan) {
  vitte::Scheduler sched(2);
  constexpr int kTasks = 500;
  for (int i = 0; i < kTasks; ++i) sched.submit(vitte::Task([] {}));
  sched.join_all();
  const vitte::MetricsSnapshot m = sched.metrics();
  const json j = json::parse(vitte::metrics_json(m));
  EXPECT_EQ(j["total"]["executed"], kTasks);
  ASSERT_EQ(j["workers"].size(), 2u);
  std::uint64_t by_worker = 0;
  for (const json& w : j["workers"]) by_worker += w["executed"].get<std::uint64_t>();
  EXPECT_EQ(by_worker, static_cast<std::uint64_t>(kTasks));

  std::vector<std::string> errors;
  const std::vector<Sample> s = parse_exposition(vitte::metrics_prometheus(m), errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  const auto executed = find(s, "vitte_tasks_executed_total");
  ASSERT_EQ(executed.size(), 2u);
  double sum = 0;
  for (const Sample& x : executed) sum += x.value;
  EXPECT_EQ(sum, kTasks);
}

}  // namespace

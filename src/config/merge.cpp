// The merge of a config into Options (merge.hpp), driven by one table: kSettings has a row
// per setting that both a config file and the code may make. A new setting is one row
// (and its key in the reader); the rule, the conflict message and the tests are shared.
//
// The deterministic table is the one setting outside it: two DeterministicOptions agree
// when their schedule does (same_deterministic), and the code's own extras (stall_report)
// stay when they do.
#include "config/merge.hpp"

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "deterministic/options.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

std::string config_at(const Config& c, const std::string& key) {
  const auto line = c.lines.find(key);
  return "config '" + c.source + "'" + (line != c.lines.end() ? " line " + std::to_string(line->second) : std::string());
}

void config_conflict(const Config& c, const std::string& key, const std::string& code, const std::string& file) {
  throw ConfigError(config_at(c, key) + ": conflicting settings: " + key + " = " + file + " but the code asks for " +
                    code);
}

namespace {

// One setting: what the file says (nullopt: not set), what the code says (nullopt: not
// set), how to apply it, and how to show a value in a conflict message.
template <class T>
struct Setting {
  const char* key;    // the config's, "scheduling.max_backlog"
  const char* field;  // the code's, "Options::max_backlog"
  std::optional<T> (*file)(const Config&);
  std::optional<T> (*code)(const Options&);
  void (*take)(Options&, const T&);
  std::string (*show)(const T&);
};

template <class T>
std::optional<T> unless(T v, T unset) {
  return v == unset ? std::nullopt : std::optional<T>(v);
}
std::string ns(const std::chrono::nanoseconds& d) { return std::to_string(d.count()) + " ns"; }
std::string number(const std::size_t& v) { return std::to_string(v); }
std::string boolean(const bool& b) { return b ? "true" : "false"; }
using Backlog = Options::BacklogFullAction;
std::string backlog(const Backlog& a) { return a == Backlog::Fail ? "\"fail\"" : "\"block\""; }
std::string events(const std::vector<std::string>& e) {
  std::string s = "[";
  for (const std::string& x : e) s += (s.size() > 1 ? ", \"" : "\"") + x + "\"";
  return s + "]";
}

using std::chrono::nanoseconds;

const auto kSettings = std::make_tuple(
    Setting<std::size_t>{"workers.stack_size", "Options::stack_size",
                         [](const Config& c) { return unless(c.stack_size, std::size_t{0}); },
                         [](const Options& o) { return unless(o.stack_size, std::size_t{0}); },
                         [](Options& o, const std::size_t& v) { o.stack_size = v; }, number},
    Setting<JobserverMode>{"workers.jobserver", "Options::jobserver",
                           [](const Config& c) -> std::optional<JobserverMode> {
                             if (c.jobserver.empty()) return std::nullopt;
                             return c.jobserver == "off" ? JobserverMode::Off
                                    : c.jobserver == "on" ? JobserverMode::On
                                                          : JobserverMode::Auto;
                           },
                           [](const Options& o) { return o.jobserver; },
                           [](Options& o, const JobserverMode& v) { o.jobserver = v; },
                           [](const JobserverMode& m) {
                             return std::string(m == JobserverMode::Off  ? "\"off\""
                                                : m == JobserverMode::On ? "\"on\""
                                                                         : "\"auto\"");
                           }},
    Setting<std::size_t>{"scheduling.max_backlog", "Options::max_backlog",
                         [](const Config& c) { return unless(c.max_backlog, std::size_t{0}); },
                         [](const Options& o) { return unless(o.max_backlog, std::size_t{0}); },
                         [](Options& o, const std::size_t& v) { o.max_backlog = v; }, number},
    Setting<Backlog>{"scheduling.on_backlog_full", "Options::on_backlog_full",
                     [](const Config& c) -> std::optional<Backlog> {
                       if (c.on_backlog_full.empty()) return std::nullopt;
                       return c.on_backlog_full == "fail" ? Backlog::Fail : Backlog::Block;
                     },
                     // Block is the default: only Fail is a choice the code made.
                     [](const Options& o) { return unless(o.on_backlog_full, Backlog::Block); },
                     [](Options& o, const Backlog& v) { o.on_backlog_full = v; }, backlog},
    Setting<Policy>{"scheduling.policy", "Options::policy",
                    [](const Config& c) { return c.sets_policy ? parse_policy(c.policy) : std::nullopt; },
                    [](const Options& o) { return o.policy; }, [](Options& o, const Policy& v) { o.policy = v; },
                    [](const Policy& p) { return std::string("\"") + to_string(p) + "\""; }},
    Setting<nanoseconds>{"scheduling.aging", "Options::aging",
                         [](const Config& c) { return unless(c.aging, nanoseconds{0}); },
                         [](const Options& o) { return o.aging; }, [](Options& o, const nanoseconds& v) { o.aging = v; },
                         ns},
    Setting<bool>{"metrics.counters", "MetricsOptions::counters", [](const Config& c) { return c.counters; },
                  [](const Options& o) { return o.metrics.counters; },
                  [](Options& o, const bool& v) { o.metrics.counters = v; }, boolean},
    Setting<std::vector<std::string>>{"metrics.events", "MetricsOptions::events",
                                      [](const Config& c) { return c.events; },
                                      [](const Options& o) { return o.metrics.events; },
                                      [](Options& o, const std::vector<std::string>& v) { o.metrics.events = v; },
                                      events},
    Setting<nanoseconds>{"metrics.sample_interval", "MetricsOptions::sample_interval",
                         [](const Config& c) { return unless(c.sample_interval, nanoseconds{0}); },
                         // 0 in code is "no sampling", which any interval in the file overrides.
                         [](const Options& o) {
                           return o.metrics.sample_interval ? unless(*o.metrics.sample_interval, nanoseconds{0})
                                                            : std::nullopt;
                         },
                         [](Options& o, const nanoseconds& v) { o.metrics.sample_interval = v; }, ns});

template <class T>
void merge(const Setting<T>& s, const Config& c, Options& o) {
  const std::optional<T> file = s.file(c);
  if (!file) return;
  if (const std::optional<T> code = s.code(o); code && !(*code == *file))
    config_conflict(c, s.key, std::string(s.field) + " = " + s.show(*code), s.show(*file));
  s.take(o, *file);
}

}  // namespace

Options merged_with_config(Options o) {
  if (!o.config) o.config = Config::from_environment();
  if (!o.config) return o;
  const Config& c = *o.config;
  if (c.deterministic) {
    if (o.deterministic && !same_deterministic(*o.deterministic, *c.deterministic))
      config_conflict(c, "deterministic.seed",
               "other Options::deterministic settings (seed " + std::to_string(o.deterministic->seed) + ")",
               "a [deterministic] table with seed " + std::to_string(c.deterministic->seed));
    if (!o.deterministic) o.deterministic = c.deterministic;
  }
  std::apply([&](const auto&... s) { (merge(s, c, o), ...); }, kSettings);
  return o;
}

}  // namespace vitte::detail

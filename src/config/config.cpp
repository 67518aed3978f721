// Config parsing and validation (toml++ lives here only).
#include "vitte/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <queue>
#include <set>
#include <sstream>

#include "io/regular_file.hpp"
#include <limits>

#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"
#include "vitte/policy.hpp"

namespace vitte {

namespace {
// As detail::kMaxEvents (metrics/event_counters.hpp): counted together on each worker.
constexpr std::size_t kMaxConfigEvents = 16;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* at, const std::string& what) const {
    std::string where = "config '" + source_ + "'";
    if (at != nullptr && at->source().begin.line > 0)
      where += " line " + std::to_string(at->source().begin.line);
    throw ConfigError(where + ": " + what);
  }

  static std::string show(const toml::node& n) {
    std::ostringstream o;
    if (n.is_string())
      o << quoted(n.as_string()->get());
    else if (n.is_table())
      o << "a table";
    else
      n.visit([&](auto&& v) { o << v; });
    return o.str();
  }

  void only_keys(const toml::table& t, const std::string& prefix, const std::set<std::string>& known) const {
    for (auto&& [k, v] : t) {
      const std::string key(k.str());
      if (known.count(key) == 0) {
        std::string list;
        for (const auto& name : known) list += (list.empty() ? "" : ", ") + name;
        fail(&v, "unknown key '" + prefix + key + "' (known " + (prefix.empty() ? "tables" : "keys in [" +
                                                                 prefix.substr(0, prefix.size() - 1) + "]") +
                     ": " + list + ")");
      }
    }
  }

  const toml::table* table(const toml::table& root, const char* name) const {
    const toml::node* n = root.get(name);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail(n, "'" + std::string(name) + "' must be a table ([" + name + "]), not " + show(*n));
    return n->as_table();
  }

  // A string in double quotes, control characters written as TOML escapes (\u0007).
  static std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
      if (is_control(ch)) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04X", static_cast<unsigned>(static_cast<unsigned char>(ch)));
        out += esc;
      } else {
        out += ch;
      }
    }
    return out + "\"";
  }

  static bool is_control(char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u < 0x20 || u == 0x7f;
  }

  std::size_t count(const toml::table& t, const std::string& key, const std::string& full, std::int64_t max) const {
    const toml::node* n = t.get(key);
    if (!n->is_integer()) fail(n, full + " = " + show(*n) + ": expected a whole number");
    const std::int64_t v = n->as_integer()->get();
    if (v < 1) fail(n, full + " = " + std::to_string(v) + ": at least 1 worker is needed");
    if (v > max) fail(n, full + " = " + std::to_string(v) + ": more than " + std::to_string(max) + " workers");
    return static_cast<std::size_t>(v);
  }

  // A size in bytes: a whole number, or a string with a binary suffix ("512K", "16M", "1G").
  std::size_t bytes(const toml::table& t, const std::string& key, const std::string& full) const {
    const toml::node* n = t.get(key);
    std::int64_t v = -1;
    if (n->is_integer()) {
      v = n->as_integer()->get();
    } else if (n->is_string()) {
      const std::string s = n->as_string()->get();
      std::size_t digits = 0;
      while (digits < s.size() && digits < 12 && s[digits] >= '0' && s[digits] <= '9') ++digits;
      const std::string unit = s.substr(digits);
      const int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
      if (digits > 0 && shift >= 0) v = std::stoll(s.substr(0, digits)) << shift;
    }
    if (v < 0) fail(n, full + " = " + show(*n) + ": expected bytes, as a whole number or a string like \"16M\" (K, M, G)");
    return static_cast<std::size_t>(v);
  }

  // A duration: a string of a whole number and a unit ("500us", "20ms", "1s"), more than 0
  // and at most `max`.
  std::chrono::nanoseconds duration(const toml::table& t, const std::string& key, const std::string& full,
                                    std::chrono::seconds max) const {
    const toml::node* n = t.get(key);
    const std::string expected = ": expected a duration string such as \"20ms\" (a whole number and ns, us, ms or s)";
    if (!n->is_string()) fail(n, full + " = " + show(*n) + expected);
    const std::string s = n->as_string()->get();
    std::size_t digits = 0;
    std::uint64_t v = 0;
    constexpr std::uint64_t kSaturated = std::uint64_t{1} << 60;  // more than any limit, times 1e9
    for (; digits < s.size() && s[digits] >= '0' && s[digits] <= '9'; ++digits)
      v = std::min<std::uint64_t>(kSaturated, v * 10 + static_cast<std::uint64_t>(s[digits] - '0'));
    const std::string unit = s.substr(digits);
    const std::uint64_t scale = unit == "ns" ? 1 : unit == "us" ? 1000 : unit == "ms" ? 1000000 : unit == "s" ? 1000000000 : 0;
    if (digits == 0 || scale == 0) fail(n, full + " = " + show(*n) + expected);
    if (v == 0) fail(n, full + " = " + show(*n) + ": must be more than 0");
    const auto limit = static_cast<std::uint64_t>(std::chrono::nanoseconds(max).count());
    if (v > limit / scale)
      fail(n, full + " = " + show(*n) + ": longer than " + std::to_string(max.count()) + "s, the most allowed");
    return std::chrono::nanoseconds(static_cast<std::int64_t>(v * scale));
  }

  std::string choice(const toml::table& t, const std::string& key, const std::string& full,
                     const std::set<std::string>& allowed) const {
    const toml::node* n = t.get(key);
    if (!n->is_string()) fail(n, full + " = " + show(*n) + ": expected a string");
    const std::string v(n->as_string()->get());
    if (allowed.count(v) == 0) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
      fail(n, full + " = \"" + v + "\": expected one of " + list);
    }
    return v;
  }

  std::vector<unsigned> cpus(const toml::table& t, const std::string& key, const std::string& full) const {
    const toml::node* n = t.get(key);
    if (!n->is_string()) fail(n, full + " = " + show(*n) + ": expected a CPU list string such as \"0-7,16-23\"");
    const std::string v(n->as_string()->get());
    std::vector<unsigned> out;
    if (!detail::hw::parse_cpu_list(v, &out))
      fail(n, full + " = \"" + v + "\": not a CPU list (hwloc list syntax, e.g. \"0-7,16-23\")");
    return out;
  }

  std::vector<unsigned> nodes(const toml::table& t, const std::string& full) const {
    const toml::node* n = t.get("nodes");
    if (!n->is_array()) fail(n, full + " = " + show(*n) + ": expected an array of node ids, e.g. [0, 1]");
    std::vector<unsigned> out;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_integer() || e.as_integer()->get() < 0 || e.as_integer()->get() > 65535)
        fail(&e, full + " contains " + show(e) + ": node ids are whole numbers from 0");
      out.push_back(static_cast<unsigned>(e.as_integer()->get()));
    }
    if (out.empty()) fail(n, full + " = []: name at least one node, or leave the key out for all of them");
    return out;
  }

 private:
  std::string source_;
};

// [[groups]]: each table read and checked on its own, then the tree they form (parents
// declared, no cycles, weights only under a "fair" parent), sorted parents first.
class GroupReader {
 public:
  GroupReader(const Reader& r, Config& c) : r_(r), c_(c) {}

  void read(const toml::node& n) {
    const toml::array* a = n.as_array();
    if (a == nullptr || (!a->empty() && !a->is_array_of_tables()))
      r_.fail(&n, "'groups' must be an array of tables ([[groups]]), not " + Reader::show(n));
    for (const toml::node& t : *a) read_one(*t.as_table());
    for (std::size_t k = 0; k < c_.groups.size(); ++k) check_parent(k);
    sort();
  }

 private:
  static constexpr std::size_t kMaxName = 64;
  static constexpr double kMinWeight = GroupSpec::kMinWeight;
  static constexpr double kMaxWeight = GroupSpec::kMaxWeight;

  static std::string at(std::size_t k) { return "groups[" + std::to_string(k) + "]"; }
  static std::string line_of(const Config::GroupDecl& g) { return "line " + std::to_string(g.line); }

  void read_one(const toml::table& t) {
    const std::size_t k = c_.groups.size();
    r_.only_keys(t, "groups.", {"name", "parent", "weight", "policy", "counters"});
    Config::GroupDecl g;
    g.line = t.source().begin.line;
    const toml::node* name = t.get("name");
    if (name == nullptr) r_.fail(&t, at(k) + ".name is missing: every [[groups]] table needs a name");
    if (!name->is_string()) r_.fail(name, at(k) + ".name = " + Reader::show(*name) + ": expected a string");
    g.name = name->as_string()->get();
    if (g.name.empty()) r_.fail(name, at(k) + ".name = \"\": a group's name must not be empty");
    if (g.name.size() > kMaxName)
      r_.fail(name, at(k) + ".name = " + Reader::show(*name) + ": longer than " + std::to_string(kMaxName) +
                        " characters");
    if (std::any_of(g.name.begin(), g.name.end(), Reader::is_control))
      r_.fail(name, at(k) + ".name = " + Reader::show(*name) + ": a name holds no control characters");
    const auto [other, fresh] = index_.emplace(g.name, k);
    if (!fresh)
      r_.fail(name, at(k) + ".name = " + Reader::show(*name) + ": declared twice, by " + at(other->second) + " on " +
                        line_of(c_.groups[other->second]) + " and " + at(k) + " on line " + std::to_string(g.line));
    if (const toml::node* parent = t.get("parent")) {
      if (!parent->is_string()) r_.fail(parent, at(k) + ".parent = " + Reader::show(*parent) + ": expected a string");
      g.parent = parent->as_string()->get();
    }
    if (const toml::node* w = t.get("weight")) {
      const std::optional<double> v = w->is_integer() || w->is_floating_point() ? w->value<double>() : std::nullopt;
      if (!v || !std::isfinite(*v) || *v < kMinWeight || *v > kMaxWeight)
        r_.fail(w, at(k) + ".weight = " + Reader::show(*w) + ": expected a number from 0.001 to 1000000");
      g.weight = *v;
      g.sets_weight = true;
    }
    if (t.contains("policy")) g.policy = r_.choice(t, "policy", at(k) + ".policy", {"fifo", "lifo", "priority", "fair"});
    if (const toml::node* n = t.get("counters")) {
      if (!n->is_boolean()) r_.fail(n, at(k) + ".counters = " + Reader::show(*n) + ": expected true or false");
      g.counters = n->as_boolean()->get();
    }
    tables_.push_back(&t);
    c_.groups.push_back(std::move(g));
  }

  // The parent exists and is not the group itself; an explicit weight sits under a "fair" parent.
  void check_parent(std::size_t k) const {
    const Config::GroupDecl& g = c_.groups[k];
    const auto p = index_.find(g.parent);  // end(): the arena
    if (const toml::node* parent = tables_[k]->get("parent"); parent != nullptr && !g.parent.empty()) {
      const std::string full = at(k) + ".parent = " + Reader::show(*parent);
      if (g.parent == g.name) r_.fail(parent, full + ": a group cannot be its own parent");
      if (p == index_.end()) r_.fail(parent, full + ": no [[groups]] has that name (declared: " + declared() + ")");
    }
    if (!g.sets_weight) return;
    const toml::node* weight = tables_[k]->get("weight");
    const std::string rule = at(k) + ".weight = " + Reader::show(*weight) + ": weight only applies under a fair parent, ";
    if (p != index_.end() && c_.groups[p->second].policy != "fair")
      r_.fail(weight, rule + "and its parent " + at(p->second) + " \"" + g.parent + "\" (" +
                          line_of(c_.groups[p->second]) + ") has policy \"" + c_.groups[p->second].policy + "\"");
    // The arena's policy is known here only when this file sets it; otherwise the scheduler checks.
    if (p == index_.end() && c_.sets_policy && c_.policy != "fair")
      r_.fail(weight, rule + "and its parent, the arena, has policy \"" + c_.policy + "\" (scheduling.policy, line " +
                          std::to_string(c_.lines.at("scheduling.policy")) + ")");
  }

  // Up to 8 declared names, for messages.
  std::string declared() const {
    std::string list;
    const std::size_t shown = std::min<std::size_t>(c_.groups.size(), 8);
    for (std::size_t k = 0; k < shown; ++k) list += (k == 0 ? "\"" : ", \"") + c_.groups[k].name + "\"";
    if (shown < c_.groups.size()) list += " and " + std::to_string(c_.groups.size() - shown) + " more";
    return list;
  }

  // Parents before children, otherwise in file order: of the groups whose parent is placed,
  // the first declared goes next. What is never placed hangs on a cycle, which is named.
  void sort() {
    const std::size_t n = c_.groups.size();
    std::vector<std::vector<std::size_t>> children(n);
    std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
    for (std::size_t k = 0; k < n; ++k) {
      if (c_.groups[k].parent.empty())
        ready.push(k);
      else
        children[index_.at(c_.groups[k].parent)].push_back(k);
    }
    std::vector<std::size_t> order;
    std::vector<bool> placed(n, false);
    while (!ready.empty()) {
      const std::size_t k = ready.top();
      ready.pop();
      order.push_back(k);
      placed[k] = true;
      for (std::size_t child : children[k]) ready.push(child);
    }
    if (order.size() < n) fail_cycle(placed);
    std::vector<Config::GroupDecl> sorted;
    sorted.reserve(n);
    for (std::size_t k : order) sorted.push_back(std::move(c_.groups[k]));
    c_.groups = std::move(sorted);
  }

  // The first unplaced group leads, through its parents, into a cycle: name its members.
  [[noreturn]] void fail_cycle(const std::vector<bool>& placed) const {
    std::size_t k = static_cast<std::size_t>(std::find(placed.begin(), placed.end(), false) - placed.begin());
    std::vector<std::size_t> seen(c_.groups.size(), SIZE_MAX);  // k -> its step on the walk
    std::vector<std::size_t> walk;
    while (seen[k] == SIZE_MAX) {
      seen[k] = walk.size();
      walk.push_back(k);
      k = index_.at(c_.groups[k].parent);
    }
    const std::vector<std::size_t> cycle(walk.begin() + static_cast<std::ptrdiff_t>(seen[k]), walk.end());
    const std::size_t first = *std::min_element(cycle.begin(), cycle.end());
    std::string names;
    const auto from = std::find(cycle.begin(), cycle.end(), first) - cycle.begin();
    for (std::size_t i = 0; i <= cycle.size(); ++i)
      names += (i == 0 ? "\"" : " -> \"") + c_.groups[cycle[(static_cast<std::size_t>(from) + i) % cycle.size()]].name + "\"";
    r_.fail(tables_[first]->get("parent"), at(first) + ".parent = \"" + c_.groups[first].parent +
                                               "\": parents form a cycle (" + names + ", each followed by its parent)");
  }

  const Reader& r_;
  Config& c_;
  std::map<std::string, std::size_t> index_;  // name -> its position in file order
  std::vector<const toml::table*> tables_;    // in file order
};

}  // namespace

Config Config::parse(std::string_view text, const std::string& source) {
  Config c;
  c.source = source;
  Reader r(source);
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError("config '" + source + "' line " + std::to_string(e.source().begin.line) + " column " +
                      std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
  r.only_keys(root, "", {"workers", "scheduling", "memory", "groups", "metrics", "deterministic"});
  for (auto&& [name, table] : root)
    if (const toml::table* t = table.as_table())
      for (auto&& [k, v] : *t)
        c.lines[std::string(name.str()) + "." + std::string(k.str())] = v.source().begin.line;

  if (const toml::table* w = r.table(root, "workers")) {
    r.only_keys(*w, "workers.", {"nodes", "per_node", "total", "unit", "cpuset", "reserve", "placement", "stack_size"});
    if (w->contains("stack_size")) {
      c.stack_size = r.bytes(*w, "stack_size", "workers.stack_size");
      if (c.stack_size == 0) r.fail(w->get("stack_size"), "workers.stack_size = 0: leave the key out for the default");
    }
    if (w->contains("per_node") && w->contains("total"))
      r.fail(w->get("total"), "conflicting settings: workers.per_node and workers.total; give one of them");
    if (w->contains("nodes")) c.plan.nodes = r.nodes(*w, "workers.nodes");
    if (w->contains("per_node")) c.plan.workers_per_node = r.count(*w, "per_node", "workers.per_node", 4096);
    if (w->contains("total")) c.plan.workers = r.count(*w, "total", "workers.total", 65536);
    c.sets_worker_count = w->contains("per_node") || w->contains("total");
    if (w->contains("unit")) {
      if (c.sets_worker_count)
        r.fail(w->get("unit"), "conflicting settings: workers.unit only chooses the default count, but "
                               "workers." + std::string(w->contains("total") ? "total" : "per_node") +
                               " already sets it");
      c.plan.use_smt = r.choice(*w, "unit", "workers.unit", {"core", "pu"}) == "pu";
    }
    if (w->contains("cpuset")) c.plan.cpus = r.cpus(*w, "cpuset", "workers.cpuset");
    if (w->contains("reserve")) c.plan.reserve = r.cpus(*w, "reserve", "workers.reserve");
    if (!c.plan.cpus.empty() && !c.plan.reserve.empty()) {
      bool left = false;
      for (unsigned cpu : c.plan.cpus)
        left = left || std::find(c.plan.reserve.begin(), c.plan.reserve.end(), cpu) == c.plan.reserve.end();
      if (!left) r.fail(w->get("reserve"), "conflicting settings: workers.reserve leaves none of workers.cpuset");
    }
    if (w->contains("placement")) {
      const std::string p = r.choice(*w, "placement", "workers.placement", {"auto", "pin", "unpinned"});
      c.plan.placement = p == "pin" ? Placement::Pin : p == "unpinned" ? Placement::Unpinned : Placement::Auto;
      c.sets_placement = true;
    }
  }
  if (const toml::table* s = r.table(root, "scheduling")) {
    r.only_keys(*s, "scheduling.", {"steal_scope", "policy", "aging", "max_backlog", "on_backlog_full"});
    if (s->contains("max_backlog")) {
      const toml::node* n = s->get("max_backlog");
      if (!n->is_integer() || n->as_integer()->get() < 1)
        r.fail(n, "scheduling.max_backlog = " + Reader::show(*n) + ": expected a whole number of tasks, at least 1");
      c.max_backlog = static_cast<std::size_t>(n->as_integer()->get());
    }
    if (s->contains("on_backlog_full")) {
      if (c.max_backlog == 0)
        r.fail(s->get("on_backlog_full"), "scheduling.on_backlog_full needs scheduling.max_backlog (there is no bound to be full)");
      c.on_backlog_full = r.choice(*s, "on_backlog_full", "scheduling.on_backlog_full", {"block", "fail"});
    }
    if (s->contains("steal_scope"))
      c.plan.cross_node_steals = r.choice(*s, "steal_scope", "scheduling.steal_scope", {"node", "cross-node"}) != "node";
    if (s->contains("policy")) {
      c.policy = r.choice(*s, "policy", "scheduling.policy", {"fifo", "lifo", "priority", "fair"});
      c.sets_policy = true;
    }
    if (s->contains("aging")) c.aging = r.duration(*s, "aging", "scheduling.aging", std::chrono::hours(1));
  }
  if (const toml::table* m = r.table(root, "metrics")) {
    r.only_keys(*m, "metrics.", {"counters", "events", "sample_interval"});
    if (const toml::node* n = m->get("counters")) {
      if (!n->is_boolean()) r.fail(n, "metrics.counters = " + Reader::show(*n) + ": expected true or false");
      c.counters = n->as_boolean()->get();
    }
    if (const toml::node* n = m->get("events")) {
      const toml::array* a = n->as_array();
      if (a == nullptr) r.fail(n, "metrics.events = " + Reader::show(*n) + ": expected a list of event names");
      if (a->size() > kMaxConfigEvents)
        r.fail(n, "metrics.events lists " + std::to_string(a->size()) + " events; at most " +
                      std::to_string(kMaxConfigEvents) + " can be counted at once");
      std::vector<std::string> names;
      for (const toml::node& e : *a) {
        if (!e.is_string() || e.as_string()->get().empty() ||
            e.as_string()->get().find_first_of(" \t\r\n") != std::string::npos)
          r.fail(&e, "metrics.events: " + Reader::show(e) + " is not an event name (a PAPI preset such as "
                     "\"PAPI_TOT_INS\", or a native name such as \"perf::CONTEXT-SWITCHES\")");
        names.emplace_back(e.as_string()->get());
      }
      if (names.empty()) r.fail(n, "metrics.events = []: leave the key out for the default set");
      if (c.counters && !*c.counters)
        r.fail(n, "conflicting settings: metrics.events names events but metrics.counters = false");
      c.events = std::move(names);
      c.counters = true;
    }
    if (m->contains("sample_interval"))
      c.sample_interval = r.duration(*m, "sample_interval", "metrics.sample_interval", std::chrono::hours(1));
    if (c.sample_interval.count() != 0 && c.sample_interval < std::chrono::microseconds(100))
      r.fail(m->get("sample_interval"), "metrics.sample_interval = " + Reader::show(*m->get("sample_interval")) +
                                            ": at least 100us (a sampler that wakes more often costs a core)");
  }
  if (const toml::table* d = r.table(root, "deterministic")) {
    r.only_keys(*d, "deterministic.",
                {"seed", "strategy", "pct_depth", "pct_turns", "task_cost", "max_turns", "record", "replay",
                 "spawn_turns"});
    if (!d->contains("seed"))
      r.fail(d, "[deterministic] needs a seed (deterministic.seed = 42): the seed is what makes a run reproducible");
    DeterministicOptions o;
    auto whole = [&](const char* key, std::int64_t min, std::int64_t max) {
      const toml::node* n = d->get(key);
      const std::string full = std::string("deterministic.") + key;
      if (!n->is_integer()) r.fail(n, full + " = " + Reader::show(*n) + ": expected a whole number");
      const std::int64_t v = n->as_integer()->get();
      if (v < min || v > max)
        r.fail(n, full + " = " + std::to_string(v) + ": expected " + std::to_string(min) + " to " + std::to_string(max));
      return v;
    };
    o.seed = static_cast<std::uint64_t>(whole("seed", 0, std::numeric_limits<std::int64_t>::max()));
    if (d->contains("strategy"))
      o.strategy = *parse_strategy(r.choice(*d, "strategy", "deterministic.strategy", {"random", "pct"}));
    if (d->contains("pct_depth")) o.pct_depth = static_cast<unsigned>(whole("pct_depth", 1, 64));
    if (d->contains("pct_turns"))
      o.pct_turns = static_cast<std::uint64_t>(whole("pct_turns", 1, std::numeric_limits<std::int64_t>::max()));
    if (d->contains("max_turns"))
      o.max_turns = static_cast<std::uint64_t>(whole("max_turns", 0, std::numeric_limits<std::int64_t>::max()));
    if (const toml::node* n = d->get("spawn_turns")) {
      if (!n->is_boolean()) r.fail(n, "deterministic.spawn_turns = " + Reader::show(*n) + ": expected true or false");
      o.spawn_turns = n->as_boolean()->get();
    }
    if (d->contains("task_cost"))
      o.task_cost = r.duration(*d, "task_cost", "deterministic.task_cost", std::chrono::hours(1));
    for (const char* key : {"record", "replay"})
      if (const toml::node* n = d->get(key)) {
        if (!n->is_string() || n->as_string()->get().empty())
          r.fail(n, std::string("deterministic.") + key + " = " + Reader::show(*n) + ": expected a file path");
        (std::string(key) == "record" ? o.record : o.replay) = n->as_string()->get();
      }
    c.deterministic = std::move(o);
  }
  if (const toml::node* g = root.get("groups")) GroupReader(r, c).read(*g);
  if (const toml::table* m = r.table(root, "memory")) {
    r.only_keys(*m, "memory.", {"allocator"});
    if (m->contains("allocator")) {
      const toml::node* n = m->get("allocator");
      if (!n->is_string()) r.fail(n, "memory.allocator = " + Reader::show(*n) + ": expected a string");
      c.allocator = std::string(n->as_string()->get());
      if (c.allocator != "auto" && c.allocator != "system" && c.allocator != "node-local")
        r.fail(n, "memory.allocator = \"" + c.allocator + "\": expected \"auto\", \"system\" or \"node-local\"");
      c.plan.malloc = c.allocator == "node-local" ? PlanOptions::Malloc::NodeLocal
                      : c.allocator == "system"   ? PlanOptions::Malloc::System
                                                  : PlanOptions::Malloc::Auto;
    }
  }
  return c;
}

Config Config::from_file(const std::string& path) {
  std::string text, why;
  if (!detail::read_regular_file(path, kMaxBytes, &text, &why))
    throw ConfigError("config '" + path + "' " + why + " (expected a TOML file of at most " +
                      std::to_string(kMaxBytes >> 10) + " KiB)");
  return parse(text, path);
}

std::optional<Config> Config::from_environment() {
  const char* path = std::getenv("VITTE_CONFIG");
  if (path == nullptr || *path == '\0') return std::nullopt;
  try {
    return from_file(path);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " (named by VITTE_CONFIG)");
  }
}

PlanOptions Config::merged_with(std::size_t code_workers, Placement code_placement) const {
  PlanOptions p = plan;
  if (code_workers != 0) {
    // Equal totals agree; a different total, or per_node (a count of another shape), is a conflict.
    const bool same = plan.workers_per_node == 0 && plan.workers == code_workers;
    if (sets_worker_count && !same)
      throw ConfigError("conflicting settings: the program asks for " + std::to_string(code_workers) +
                        " workers and config '" + source + "' sets workers." +
                        (plan.workers_per_node != 0 ? "per_node = " + std::to_string(plan.workers_per_node)
                                                    : "total = " + std::to_string(plan.workers)));
    p.workers = code_workers;
  }
  if (code_placement != Placement::Auto) {
    if (sets_placement && plan.placement != code_placement)
      throw ConfigError("conflicting settings: the program's placement differs from workers.placement in config '" +
                        source + "'");
    p.placement = code_placement;
  }
  return p;
}

Plan Config::make_plan(const Topology& topo, const PlanOptions& merged) const {
  try {
    return Plan::make(topo, merged);
  } catch (const PlanError& e) {
    const auto at = lines.find(e.key());
    if (e.key().empty() || at == lines.end()) throw;
    throw PlanError("config '" + source + "' line " + std::to_string(at->second) + ": " + e.what(), e.key());
  }
}

}  // namespace vitte

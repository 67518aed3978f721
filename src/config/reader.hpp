// The TOML readers behind Config::parse (config.cpp): Reader checks one table's keys and
// values and names the culprit (file, line, key, value) in every ConfigError; GroupReader
// reads [[groups]]. Included by config.cpp only (toml++ lives there).
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "topology/hwloc_seam.hpp"
#include "vitte/config.hpp"
#include "vitte/error.hpp"
#include "vitte/policy.hpp"

namespace vitte::detail {

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
    if (!hw::parse_cpu_list(v, &out))
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

}  // namespace vitte::detail

// Config parsing and validation (toml++ lives here only).
#include "vitte/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "io/regular_file.hpp"
#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"

namespace vitte {

namespace {

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
      o << '"' << n.as_string()->get() << '"';
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
  r.only_keys(root, "", {"workers", "scheduling", "memory"});
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
    r.only_keys(*s, "scheduling.", {"steal_scope", "policy", "max_backlog", "on_backlog_full"});
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
    if (s->contains("policy"))
      c.policy = r.choice(*s, "policy", "scheduling.policy", {"fifo", "lifo", "priority", "fair"});
  }
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

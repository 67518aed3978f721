#include "cli/report.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace vitte::cli {

using nlohmann::json;

namespace {
std::string mib(std::uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return buf;
}
std::string join(const std::vector<unsigned>& v) {
  std::string s;
  for (unsigned x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}
// Worker ids as sorted ranges ("0-47,52"), so that a many-core plan stays readable.
std::string ranges(std::vector<unsigned> v) {
  std::sort(v.begin(), v.end());
  std::string s;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(v[i]);
    if (j > i) s += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return s;
}
// Whether some L3 group was inferred (the topology has no L3 cache objects there).
bool l3_inferred(const Topology& t) {
  return std::any_of(t.l3s().begin(), t.l3s().end(), [](const L3Group& g) { return g.inferred; });
}
}  // namespace

json with_schema(json doc) {
  doc["schema"] = kJsonSchema;
  return doc;
}

json error_json(const std::string& message, int exit_code) {
  return with_schema(json{{"error", {{"message", message}, {"exit_code", exit_code}}}});
}

json to_json(const Topology& t) {
  json j;
  j["source"] = t.source();
  j["this_machine"] = t.is_this_machine();
  j["id_convention"] = "ids are hwloc logical indexes; os_index is the Linux number";
  j["packages"] = t.packages().size();
  j["cores"] = t.cores().size();
  j["pus"] = t.pus().size();
  j["distance_origin"] = t.distance_origin();
  j["l3_inferred"] = l3_inferred(t);
  if (!t.restriction().empty()) {
    j["restriction"] = t.restriction();
    j["unusable_os_cpus"] = t.unusable_os_cpus();
  }
  for (const NumaNode& n : t.nodes()) {
    json jn{{"id", n.id}, {"os_index", n.os_index}, {"memory_bytes", n.memory_bytes},
            {"cores", n.cores.size()}, {"has_cpus", n.has_cpus()}, {"l3_groups", n.l3s.size()},
            {"l3_inferred", std::any_of(n.l3s.begin(), n.l3s.end(), [&](unsigned g) { return t.l3s()[g].inferred; })}};
    if (!n.subtype.empty()) jn["subtype"] = n.subtype;
    json d = json::array();
    for (const NumaNode& m : t.nodes()) d.push_back(t.distance(n.id, m.id));
    jn["distances"] = d;
    j["nodes"].push_back(jn);
  }
  return j;
}

json to_json(const Plan& p, const Topology& t) {
  json j;
  j["binding"] = to_string(p.binding);
  j["binding_reason"] = p.binding_reason;
  j["topology"] = p.topology_source;
  for (const WorkerSlot& w : p.workers) {
    json jw{{"worker", w.index}, {"node", w.node}, {"node_os_index", t.nodes()[w.node].os_index},
            {"core", w.core}, {"pu", w.pu}, {"pu_os_index", t.pus()[w.pu].os_index},
            {"l3", w.l3}, {"l3_inferred", t.l3s()[w.l3].inferred}, {"os_cpu", w.os_cpu}, {"pinned", w.os_cpu >= 0}};
    for (const StealLevel& l : p.steal_order[w.index]) {
      json jl{{"level", to_string(l.kind)}, {"distance", l.distance}, {"workers", ranges(p.victims(l))},
              {"count", l.count}};
      if (l.kind == StealLevel::Kind::Remote) jl["nodes"] = p.nodes(l);
      jw["steal_order"].push_back(jl);
    }
    if (!jw.contains("steal_order")) jw["steal_order"] = json::array();
    j["workers"].push_back(jw);
  }
  for (std::size_t n = 0; n < p.arenas.size(); ++n)
    j["arenas"].push_back(json{{"node", n}, {"workers", p.arenas[n]}});
  return j;
}

std::string describe(const Topology& t) {
  std::ostringstream o;
  o << "topology: " << t.source() << (t.is_this_machine() ? "" : " (not this machine)") << "\n";
  o << "  " << t.packages().size() << " package(s), " << t.nodes().size() << " NUMA node(s), "
    << t.l3s().size() << " L3 group(s)"
    << (l3_inferred(t) ? " (inferred: the topology has no L3 cache; one group per node, no same-l3 steals)" : "")
    << ", " << t.cores().size() << " core(s), " << t.pus().size() << " PU(s)\n";
  o << "  ids are hwloc logical indexes, shown as L#id (P#os = the Linux number)\n";
  if (!t.restriction().empty()) o << "  " << t.restriction() << "\n";
  for (const NumaNode& n : t.nodes()) {
    o << "  node L#" << n.id << " (P#" << n.os_index << ") " << mib(n.memory_bytes);
    if (!n.subtype.empty()) o << " " << n.subtype;
    if (n.has_cpus())
      o << ": " << n.cores.size() << " cores in " << n.l3s.size() << " L3 group(s)"
        << (std::any_of(n.l3s.begin(), n.l3s.end(), [&](unsigned g) { return t.l3s()[g].inferred; }) ? " (inferred)"
                                                                                                  : "");
    else
      o << ": no CPUs of its own (memory only, no arena)";
    o << "\n";
  }
  o << "  distances (" << t.distance_origin() << "):\n";
  for (const NumaNode& n : t.nodes()) {
    o << "    L#" << n.id << ":";
    for (const NumaNode& m : t.nodes()) o << " " << t.distance(n.id, m.id);
    o << "\n";
  }
  return o.str();
}

std::string describe(const Plan& p, const Topology& t) {
  std::ostringstream o;
  o << "plan: " << p.workers.size() << " worker(s), " << to_string(p.binding) << ": " << p.binding_reason << "\n";
  for (const WorkerSlot& w : p.workers) {
    o << "  worker " << w.index << ": node L#" << w.node << " (P#" << t.nodes()[w.node].os_index << "), core L#"
      << w.core << ", PU L#" << w.pu << " (P#" << t.pus()[w.pu].os_index << "), L3 group " << w.l3
      << (t.l3s()[w.l3].inferred ? " (inferred)" : "") << ", "
      << (w.os_cpu >= 0 ? "bound to CPU " + std::to_string(w.os_cpu) : std::string("unpinned"))
      << (t.is_this_machine() ? "" : " here; on that machine: CPU " + std::to_string(t.pus()[w.pu].os_index))
      << "\n";
    o << "    steals:";
    if (p.steal_order[w.index].empty()) o << " (no other worker)";
    for (const StealLevel& l : p.steal_order[w.index]) {
      o << " " << to_string(l.kind);
      if (l.kind == StealLevel::Kind::Remote) o << "@" << l.distance << "[nodes " << join(p.nodes(l)) << "]";
      o << "{workers " << ranges(p.victims(l)) << "}";
      if (&l != &p.steal_order[w.index].back()) o << " ->";
    }
    o << "\n";
  }
  return o.str();
}

std::string describe_locality(const MetricsSnapshot& m) {
  std::ostringstream o;
  const Counts& c = m.total;
  char frac[32];
  std::snprintf(frac, sizeof frac, "%.1f%%", 100.0 * c.remote_steal_fraction());
  o << "steals: " << c.steals() << " (same L3 " << c.steals_l3 << ", same node " << c.steals_node << ", remote "
    << c.steals_remote << " = " << frac << " remote); failed steal rounds " << c.failed_steal_rounds << "; parks "
    << c.parks << ", wake-ups " << c.wakeups << "\n";
  for (const NodeMetrics& n : m.nodes)
    o << "  node L#" << n.node << ": " << n.workers << " worker(s), " << n.counts.executed << " tasks, steals "
      << n.counts.steals_l3 << "/" << n.counts.steals_node << "/" << n.counts.steals_remote
      << " (L3/node/remote), injected taken " << n.counts.injected_taken << "\n";
  return o.str();
}

std::string describe_counters(const MetricsSnapshot& m, bool asked) {
  const CounterInfo& c = m.counter_info;
  if (!asked && !c.requested) return "";
  std::ostringstream o;
  if (!c.requested) {
    // The scheduler did not take the request: say so rather than print an empty list.
    o << "  event counters: asked for, but the scheduler reports that none were requested\n";
    return o.str();
  }
  o << "  event counters: " << c.events.size() << " counted" << (c.note.empty() ? "" : " (" + c.note + ")") << "\n";
  for (std::size_t i = 0; i < c.events.size() && i < m.counters.size(); ++i)
    o << "    " << c.events[i] << (i < c.sources.size() ? " [" + c.sources[i] + "]" : "") << ": " << m.counters[i] << "\n";
  for (const CounterInfo::Missing& x : c.unavailable) o << "    " << x.event << ": not counted: " << x.why << "\n";
  return o.str();
}

std::uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::uint64_t>(u.ru_maxrss) * 1024;
}

}  // namespace vitte::cli

// See hwloc_seam.hpp. Model rules, applied the same way to every source:
// - A core belongs to the first NUMA node (logical order) whose cpuset contains it, so on
//   machines where several nodes cover the same cores (KNL's DDR + MCDRAM) the later ones
//   are CPU-less for scheduling and keep only their memory.
// - L3 groups never cross nodes: an L3 shared by cores of two nodes becomes two groups.
//   Cores without an L3 ancestor form one inferred group per node.
// - Distances: hwloc's NUMA latency matrix when it covers every node; otherwise derived
//   from the tree as 10 + 5 x (tree hops from each node's parent to their common ancestor).
#include "topology/hwloc_seam.hpp"

#include <hwloc.h>

#include <algorithm>
#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "io/regular_file.hpp"
#include "vitte/error.hpp"

namespace vitte {

struct TopologyBuilder {
  // usable: the PUs to keep (null: all). PUs left out are recorded as unusable.
  static Topology build(hwloc_topology_t t, std::string source, bool this_machine,
                        hwloc_const_cpuset_t usable = nullptr);
  // Fills restriction_ from what build() left out.
  static void describe_restriction(Topology& m, bool by_cgroup, bool by_affinity);
};

namespace {

struct HwlocTopology {
  hwloc_topology_t t = nullptr;
  HwlocTopology() {
    if (hwloc_topology_init(&t) != 0) throw TopologyError("hwloc_topology_init failed");
  }
  ~HwlocTopology() { hwloc_topology_destroy(t); }
  HwlocTopology(const HwlocTopology&) = delete;
  HwlocTopology& operator=(const HwlocTopology&) = delete;
};

unsigned depth_of(hwloc_obj_t o) { return o == nullptr ? 0 : static_cast<unsigned>(o->depth); }

// A NUMA node is a memory child: its "position" in the tree is its parent's.
unsigned tree_distance(hwloc_topology_t t, hwloc_obj_t a, hwloc_obj_t b) {
  if (a == b) return 10;
  hwloc_obj_t pa = a->parent, pb = b->parent;
  hwloc_obj_t lca = hwloc_get_common_ancestor_obj(t, pa, pb);
  const unsigned hops = (depth_of(pa) - depth_of(lca)) + (depth_of(pb) - depth_of(lca));
  return 10 + 5 * (hops == 0 ? 1 : hops);
}

}  // namespace

Topology TopologyBuilder::build(hwloc_topology_t t, std::string source, bool this_machine,
                                hwloc_const_cpuset_t usable) {
  Topology m;
  m.source_ = std::move(source);
  m.this_machine_ = this_machine;

  const int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  std::vector<hwloc_obj_t> node_objs;
  for (int i = 0; i < nn; ++i) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    NumaNode n;
    n.id = static_cast<unsigned>(i);
    n.os_index = o->os_index;
    n.memory_bytes = o->attr != nullptr ? o->attr->numanode.local_memory : 0;
    if (o->subtype != nullptr) n.subtype = o->subtype;
    m.nodes_.push_back(n);
    node_objs.push_back(o);
  }
  if (m.nodes_.empty()) throw TopologyError("topology '" + m.source_ + "' has no NUMA node");

  const int np = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
  for (int i = 0; i < std::max(np, 1); ++i) {
    Package p;
    p.id = static_cast<unsigned>(i);
    if (np > 0) p.os_index = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, static_cast<unsigned>(i))->os_index;
    m.packages_.push_back(p);
  }
  for (std::size_t i = 0; i < node_objs.size(); ++i) {
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, node_objs[i]);
    const unsigned p = pkg != nullptr ? pkg->logical_index : 0;
    if (np == 0 || pkg != nullptr) m.packages_[p].nodes.push_back(static_cast<unsigned>(i));
  }

  // Cores (a topology without Core objects: every PU is its own core).
  hwloc_obj_type_t core_type = HWLOC_OBJ_CORE;
  if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) <= 0) core_type = HWLOC_OBJ_PU;
  const int nc = hwloc_get_nbobjs_by_type(t, core_type);
  std::map<std::pair<long, unsigned>, unsigned> l3_ids;  // (hwloc L3 index or -1-node, node)
  for (int i = 0; i < nc; ++i) {
    hwloc_obj_t co = hwloc_get_obj_by_type(t, core_type, static_cast<unsigned>(i));
    if (co->cpuset == nullptr || hwloc_bitmap_iszero(co->cpuset)) continue;
    if (usable != nullptr && !hwloc_bitmap_intersects(co->cpuset, usable)) {
      unsigned os = 0;
      hwloc_bitmap_foreach_begin(os, co->cpuset) m.unusable_os_cpus_.push_back(os);
      hwloc_bitmap_foreach_end();
      continue;
    }
    Core c;
    c.id = static_cast<unsigned>(m.cores_.size());
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, co);
    c.package = pkg != nullptr ? pkg->logical_index : 0;
    int node = -1;
    for (std::size_t n = 0; n < node_objs.size() && node < 0; ++n)
      if (node_objs[n]->cpuset != nullptr && hwloc_bitmap_isincluded(co->cpuset, node_objs[n]->cpuset))
        node = static_cast<int>(n);
    for (std::size_t n = 0; n < node_objs.size() && node < 0; ++n)
      if (node_objs[n]->cpuset != nullptr && hwloc_bitmap_intersects(co->cpuset, node_objs[n]->cpuset))
        node = static_cast<int>(n);
    c.node = node < 0 ? 0 : static_cast<unsigned>(node);
    hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_L3CACHE, co);
    const long l3key = l3 != nullptr ? static_cast<long>(l3->logical_index) : -1 - static_cast<long>(c.node);
    auto [it, fresh] = l3_ids.emplace(std::make_pair(l3key, c.node), static_cast<unsigned>(m.l3s_.size()));
    if (fresh) {
      L3Group g;
      g.id = it->second;
      g.node = c.node;
      g.inferred = l3 == nullptr;
      g.size_bytes = l3 != nullptr && l3->attr != nullptr ? l3->attr->cache.size : 0;
      m.l3s_.push_back(g);
      m.nodes_[c.node].l3s.push_back(g.id);
    }
    c.l3 = it->second;
    m.l3s_[c.l3].cores.push_back(c.id);
    hwloc_obj_t pu = nullptr;
    while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(t, co->cpuset, HWLOC_OBJ_PU, pu)) != nullptr) {
      if (usable != nullptr && !hwloc_bitmap_isset(usable, pu->os_index)) {
        m.unusable_os_cpus_.push_back(pu->os_index);
        continue;
      }
      Pu p;
      p.id = static_cast<unsigned>(m.pus_.size());
      p.os_index = pu->os_index;
      p.core = c.id;
      c.pus.push_back(p.id);
      m.pus_.push_back(p);
    }
    m.nodes_[c.node].cores.push_back(c.id);
    m.cores_.push_back(std::move(c));
  }
  if (m.pus_.empty()) throw TopologyError("topology '" + m.source_ + "' has no processing unit");

  // Distances.
  const std::size_t n = m.nodes_.size();
  m.distances_.assign(n * n, 0);
  unsigned nr = 1;
  hwloc_distances_s* d = nullptr;
  bool have = false;
  if (hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) == 0 &&
      nr > 0 && d != nullptr) {
    if (d->nbobjs == n) {
      have = true;
      for (unsigned i = 0; i < d->nbobjs; ++i)
        for (unsigned j = 0; j < d->nbobjs; ++j)
          m.distances_[d->objs[i]->logical_index * n + d->objs[j]->logical_index] =
              static_cast<unsigned>(d->values[i * d->nbobjs + j]);
      m.distance_origin_ = "hwloc NUMA latency matrix";
      if (d->kind & HWLOC_DISTANCES_KIND_FROM_OS) m.distance_origin_ += " (from the OS)";
      else if (d->kind & HWLOC_DISTANCES_KIND_FROM_USER) m.distance_origin_ += " (from the topology file)";
    }
    hwloc_distances_release(t, d);
  }
  if (!have) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) m.distances_[i * n + j] = tree_distance(t, node_objs[i], node_objs[j]);
    m.distance_origin_ = "derived from the tree (10 + 5 x hops to the common ancestor)";
  }
  return m;
}

namespace detail::hw {
std::string format_cpu_list(const std::vector<unsigned>& cpus);
}  // namespace detail::hw

void TopologyBuilder::describe_restriction(Topology& m, bool by_cgroup, bool by_affinity) {
  if (m.unusable_os_cpus_.empty()) return;
  std::sort(m.unusable_os_cpus_.begin(), m.unusable_os_cpus_.end());
  std::vector<unsigned> usable;
  for (const Pu& p : m.pus_) usable.push_back(p.os_index);
  std::sort(usable.begin(), usable.end());
  const std::string by = by_cgroup && by_affinity ? "its cgroup cpuset and its affinity mask"
                         : by_cgroup              ? "its cgroup cpuset"
                                                  : "its affinity mask";
  m.restriction_ = "this process may use " + std::to_string(usable.size()) + " of " +
                   std::to_string(usable.size() + m.unusable_os_cpus_.size()) + " PUs (CPUs " +
                   detail::hw::format_cpu_list(usable) + "), restricted by " + by;
}

namespace detail::hw {

std::string format_cpu_list(const std::vector<unsigned>& cpus) {
  std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)> set(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  for (unsigned c : cpus) hwloc_bitmap_set(set.get(), c);
  char* text = nullptr;
  if (hwloc_bitmap_list_asprintf(&text, set.get()) < 0 || text == nullptr) return "?";
  std::string out(text);
  std::free(text);
  return out;
}

Topology load_this_machine() {
  // Keep disallowed PUs in hwloc's tree so that we can tell "does not exist" from "may not
  // be used"; the model keeps only the usable ones.
  HwlocTopology h;
  hwloc_topology_set_flags(h.t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  if (hwloc_topology_load(h.t) != 0)
    throw TopologyError(std::string("hwloc could not discover this machine: ") + std::strerror(errno));
  using Bitmap = std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)>;
  Bitmap usable(hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(h.t)), hwloc_bitmap_free);
  Bitmap bound(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  const bool have_binding = hwloc_get_cpubind(h.t, bound.get(), HWLOC_CPUBIND_PROCESS) == 0;
  if (have_binding) hwloc_bitmap_and(usable.get(), usable.get(), bound.get());
  Topology m = TopologyBuilder::build(h.t, "this machine", true, usable.get());
  const bool by_cgroup = !hwloc_bitmap_isincluded(hwloc_topology_get_complete_cpuset(h.t),
                                                  hwloc_topology_get_allowed_cpuset(h.t));
  const bool by_affinity = have_binding && !hwloc_bitmap_isincluded(hwloc_topology_get_allowed_cpuset(h.t),
                                                                    bound.get());
  TopologyBuilder::describe_restriction(m, by_cgroup, by_affinity);
  return m;
}

bool parse_cpu_list(const std::string& text, std::vector<unsigned>* out) {
  // Strict reading first (hwloc's parser stops quietly at the first bad character and
  // accepts ranges of any size): comma-separated N or N-M, N <= M, every N <= kMaxCpu.
  constexpr unsigned long kMaxCpu = 65535;
  if (text.empty() || text.size() > 4096) return false;
  auto number = [&](const std::string& s, unsigned long* v) {
    const std::size_t a = s.find_first_not_of(' '), b = s.find_last_not_of(' ');
    if (a == std::string::npos) return false;
    const std::string digits = s.substr(a, b - a + 1);
    if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    *v = std::stoul(digits);
    return *v <= kMaxCpu;
  };
  for (std::size_t i = 0;;) {
    const std::size_t j = text.find(',', i);
    const std::string part = text.substr(i, j == std::string::npos ? std::string::npos : j - i);
    const std::size_t dash = part.find('-');
    unsigned long lo = 0, hi = 0;
    if (dash == std::string::npos ? !number(part, &lo)
                                  : !number(part.substr(0, dash), &lo) || !number(part.substr(dash + 1), &hi) || lo > hi)
      return false;
    if (j == std::string::npos) break;
    i = j + 1;
  }
  std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)> set(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  if (hwloc_bitmap_list_sscanf(set.get(), text.c_str()) != 0 || hwloc_bitmap_weight(set.get()) <= 0) return false;
  out->clear();
  unsigned c = 0;
  hwloc_bitmap_foreach_begin(c, set.get()) out->push_back(c);
  hwloc_bitmap_foreach_end();
  return true;
}

Topology load_xml(const std::string& path) {
  std::string xml, why;
  if (!read_regular_file(path, Topology::kMaxXmlBytes, &xml, &why))
    throw TopologyError("topology file '" + path + "' " + why + " (expected an hwloc XML export, at most " +
                        std::to_string(Topology::kMaxXmlBytes >> 20) + " MiB)");
  if (xml.substr(0, 64).find('<') == std::string::npos)
    throw TopologyError("topology file '" + path + "' is not XML (expected an hwloc export, e.g. `lstopo --of xml`)");
  HwlocTopology h;
  // From the buffer we checked, not the path: the file cannot change between check and use.
  if (hwloc_topology_set_xmlbuffer(h.t, xml.data(), static_cast<int>(xml.size())) != 0)
    throw TopologyError("topology file '" + path + "' was rejected by hwloc: " + std::strerror(errno));
  if (hwloc_topology_load(h.t) != 0)
    throw TopologyError("topology file '" + path + "' is not a valid hwloc XML topology (hwloc could not load it; "
                        "exports in XML format 3 need hwloc 3)");
  return TopologyBuilder::build(h.t, "xml:" + path, false);
}

Topology load_synthetic(const std::string& description) {
  if (description.empty()) throw TopologyError("synthetic topology description is empty (e.g. 'pack:2 numa:2 core:4 pu:2')");
  HwlocTopology h;
  if (hwloc_topology_set_synthetic(h.t, description.c_str()) != 0)
    throw TopologyError("invalid synthetic topology '" + description +
                        "': hwloc rejected it (expected levels like 'pack:2 numa:2 core:4 pu:2')");
  if (hwloc_topology_load(h.t) != 0)
    throw TopologyError("synthetic topology '" + description + "' could not be built by hwloc");
  return TopologyBuilder::build(h.t, "synthetic:" + description, false);
}

namespace {
hwloc_topology_t machine_for_binding() {
  static std::once_flag once;
  static hwloc_topology_t t = nullptr;
  std::call_once(once, [] {
    hwloc_topology_t x;
    if (hwloc_topology_init(&x) == 0 && hwloc_topology_load(x) == 0) t = x;
  });
  return t;
}
}  // namespace

namespace {
hwloc_obj_t numa_node(hwloc_topology_t t, unsigned node) {
  return t == nullptr ? nullptr : hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, node);
}
}  // namespace

bool bind_area(void* p, std::size_t bytes, unsigned node, std::string* why) {
  hwloc_topology_t t = machine_for_binding();
  hwloc_obj_t n = numa_node(t, node);
  if (n == nullptr) {
    if (why) *why = "this machine has no NUMA node " + std::to_string(node);
    return false;
  }
  if (hwloc_set_area_membind(t, p, bytes, n->nodeset, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET) != 0) {
    if (why) *why = "binding memory to node " + std::to_string(node) + " failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

std::vector<unsigned> area_binding(const void* p, std::size_t bytes) {
  std::vector<unsigned> out;
  hwloc_topology_t t = machine_for_binding();
  if (t == nullptr) return out;
  std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)> set(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  hwloc_membind_policy_t policy;
  if (hwloc_get_area_membind(t, p, bytes, set.get(), &policy, HWLOC_MEMBIND_BYNODESET) != 0) return out;
  if (policy == HWLOC_MEMBIND_DEFAULT) return out;
  hwloc_obj_t n = nullptr;
  while ((n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) != nullptr)
    if (hwloc_bitmap_isincluded(n->nodeset, set.get())) out.push_back(n->logical_index);
  return out;
}

void* alloc_bound(std::size_t bytes, unsigned node) {
  hwloc_topology_t t = machine_for_binding();
  hwloc_obj_t n = numa_node(t, node);
  if (n == nullptr) return nullptr;
  return hwloc_alloc_membind(t, bytes, n->nodeset, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET);
}

void free_bound(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) hwloc_free(machine_for_binding(), p, bytes);
}

unsigned current_node() noexcept {
  hwloc_topology_t t = machine_for_binding();
  const int cpu = sched_getcpu();
  if (t == nullptr || cpu < 0) return 0;
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t, static_cast<unsigned>(cpu));
  hwloc_obj_t n = nullptr;
  while ((n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) != nullptr)
    if (pu != nullptr && hwloc_bitmap_isincluded(pu->cpuset, n->cpuset)) return n->logical_index;
  return 0;
}

unsigned node_count() noexcept {
  hwloc_topology_t t = machine_for_binding();
  return t == nullptr ? 1u : static_cast<unsigned>(std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE)));
}

std::vector<std::pair<unsigned, int>> tbbbind_numa_ids(const std::string& xml_path, const std::vector<unsigned>& cpus) {
  // As oneTBB's src/tbbbind/tbb_bind.cpp (2021.x) does: on this machine, flags
  // IS_THISSYSTEM | RESTRICT_TO_CPUBINDING; the nodes are those of the process's binding
  // (hwloc_cpuset_to_nodeset), each numbered by its logical index.
  std::vector<std::pair<unsigned, int>> out;
  HwlocTopology h;
  using Bitmap = std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)>;
  Bitmap set(hwloc_bitmap_alloc(), hwloc_bitmap_free), nodes(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  std::string xml;
  if (xml_path.empty()) {
    if (hwloc_topology_set_flags(h.t, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM | HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING) != 0 ||
        hwloc_topology_load(h.t) != 0 || hwloc_get_cpubind(h.t, set.get(), 0) != 0)
      return out;
  } else {
    std::string why;
    if (!read_regular_file(xml_path, Topology::kMaxXmlBytes, &xml, &why) ||
        hwloc_topology_set_xmlbuffer(h.t, xml.data(), static_cast<int>(xml.size())) != 0 || hwloc_topology_load(h.t) != 0)
      throw TopologyError("topology file '" + xml_path + "' could not be loaded: " + why);
    if (cpus.empty()) {
      hwloc_bitmap_copy(set.get(), hwloc_topology_get_complete_cpuset(h.t));
    } else {
      for (unsigned c : cpus) hwloc_bitmap_set(set.get(), c);
      if (hwloc_topology_restrict(h.t, set.get(), 0) != 0)
        throw TopologyError("cannot restrict '" + xml_path + "' to CPUs " + format_cpu_list(cpus));
    }
  }
  hwloc_cpuset_to_nodeset(h.t, set.get(), nodes.get());
  unsigned os = 0;
  hwloc_bitmap_foreach_begin(os, nodes.get()) {
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(h.t, os);
    if (n != nullptr) out.emplace_back(os, static_cast<int>(n->logical_index));
  }
  hwloc_bitmap_foreach_end();
  return out;
}

bool pin_current_thread(unsigned os_cpu, std::string* why) {
  hwloc_topology_t t = machine_for_binding();
  if (t == nullptr) {
    if (why) *why = "hwloc could not load this machine's topology";
    return false;
  }
  std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)> set(hwloc_bitmap_alloc(), hwloc_bitmap_free);
  hwloc_bitmap_only(set.get(), os_cpu);
  if (hwloc_set_cpubind(t, set.get(), HWLOC_CPUBIND_THREAD) != 0) {
    if (why) *why = "binding to CPU " + std::to_string(os_cpu) + " failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace detail::hw
}  // namespace vitte

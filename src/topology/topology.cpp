// Topology queries that need no hwloc (the loaders live in hwloc_seam.cpp).
#include "vitte/topology.hpp"

#include <algorithm>
#include <numeric>

#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"

namespace vitte {

Topology Topology::this_machine() { return detail::hw::load_this_machine(); }
Topology Topology::from_xml(const std::string& path) { return detail::hw::load_xml(path); }
Topology Topology::from_synthetic(const std::string& d) { return detail::hw::load_synthetic(d); }

namespace {
[[noreturn]] void no_such_node(const char* what, unsigned node, std::size_t nodes) {
  throw UsageError(std::string("Topology::") + what + ": node " + std::to_string(node) +
                   " does not exist (the topology has " + std::to_string(nodes) + " nodes)");
}
}  // namespace

unsigned Topology::distance(unsigned from, unsigned to) const {
  const std::size_t n = nodes_.size();
  if (from >= n || to >= n) no_such_node("distance()", from >= n ? from : to, n);
  return distances_[from * n + to];
}

std::vector<unsigned> Topology::nodes_by_distance(unsigned from) const {
  if (from >= nodes_.size()) no_such_node("nodes_by_distance()", from, nodes_.size());  // before erase()
  std::vector<unsigned> order(nodes_.size());
  std::iota(order.begin(), order.end(), 0u);
  order.erase(order.begin() + from);
  std::stable_sort(order.begin(), order.end(),
                   [&](unsigned a, unsigned b) { return distance(from, a) < distance(from, b); });
  return order;
}

std::vector<unsigned> Topology::nodes_with_cpus() const {
  std::vector<unsigned> out;
  for (const NumaNode& n : nodes_)
    if (n.has_cpus()) out.push_back(n.id);
  return out;
}

int Topology::node_of_os_cpu(unsigned os_cpu) const noexcept {
  for (const Pu& p : pus_)
    if (p.os_index == os_cpu) return static_cast<int>(cores_[p.core].node);
  return -1;
}

}  // namespace vitte

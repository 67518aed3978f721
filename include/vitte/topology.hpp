// Topology: the machine as the scheduler sees it.
//
// A plain C++ model, filled by the hwloc seam (src/topology/hwloc_seam.cpp) from this
// machine, from an hwloc XML export, or from a synthetic description. Nothing here
// depends on hwloc's headers.
//
// Identifiers: every id below (node, package, L3 group, core, PU) is hwloc's *logical*
// index: dense, 0..N-1, in topology order. The operating system's index (what Linux calls
// the node or CPU number, what `numactl` and cpusets use) is kept beside it as os_index;
// the two differ on real machines, and the CLI prints both as L#id (P#os).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vitte {

struct Pu {
  unsigned id = 0;        // logical PU index
  unsigned os_index = 0;  // Linux CPU number
  unsigned core = 0;
};

struct Core {
  unsigned id = 0;
  unsigned package = 0;
  unsigned node = 0;  // the NUMA node whose workers use this core
  unsigned l3 = 0;    // L3 group (see L3Group)
  std::vector<unsigned> pus;
};

// Cores that share a last-level cache. A machine without L3 information gets one group per
// NUMA node, flagged `inferred`.
struct L3Group {
  unsigned id = 0;
  unsigned node = 0;
  std::uint64_t size_bytes = 0;
  bool inferred = false;
  std::vector<unsigned> cores;
};

struct NumaNode {
  unsigned id = 0;
  unsigned os_index = 0;
  std::uint64_t memory_bytes = 0;
  std::string subtype;         // e.g. "MCDRAM"; empty for ordinary memory
  std::vector<unsigned> cores; // cores assigned to this node (empty: a CPU-less node)
  std::vector<unsigned> l3s;
  bool has_cpus() const noexcept { return !cores.empty(); }
};

struct Package {
  unsigned id = 0;
  unsigned os_index = 0;
  std::vector<unsigned> nodes;
};

class Topology {
 public:
  // The running machine, restricted to the PUs this process may use: the cgroup's
  // cpuset and the process's affinity mask (see restriction()).
  static Topology this_machine();
  // An hwloc XML export (hwloc 2.x format, as `lstopo --of xml` writes): a regular file
  // of at most kMaxXmlBytes (a 96-core export is under 100 KB); a directory, FIFO, device
  // or larger file is a TopologyError naming the path and what it is.
  static constexpr std::size_t kMaxXmlBytes = std::size_t{16} << 20;
  static Topology from_xml(const std::string& path);
  // An hwloc synthetic description, e.g. "pack:2 numa:2 core:4 pu:2".
  static Topology from_synthetic(const std::string& description);

  // "this machine", "xml:PATH" or "synthetic:DESC".
  const std::string& source() const noexcept { return source_; }
  bool is_this_machine() const noexcept { return this_machine_; }

  const std::vector<Package>& packages() const noexcept { return packages_; }
  const std::vector<NumaNode>& nodes() const noexcept { return nodes_; }
  const std::vector<L3Group>& l3s() const noexcept { return l3s_; }
  const std::vector<Core>& cores() const noexcept { return cores_; }
  const std::vector<Pu>& pus() const noexcept { return pus_; }

  // NUMA distance between two nodes (10 = local, by convention of the ACPI SLIT table).
  unsigned distance(unsigned from, unsigned to) const;
  // Where the distances came from: hwloc's latency matrix, or derived from the tree.
  const std::string& distance_origin() const noexcept { return distance_origin_; }
  // The other nodes, nearest first (ties by id).
  std::vector<unsigned> nodes_by_distance(unsigned from) const;
  // Nodes that have cores, in id order.
  std::vector<unsigned> nodes_with_cpus() const;
  // The node of a Linux CPU number, or -1 if the CPU is not in this topology.
  int node_of_os_cpu(unsigned os_cpu) const noexcept;
  // Linux CPUs the machine has but this process may not use (cgroup cpuset, affinity
  // mask); they are left out of the model. Empty for XML and synthetic topologies.
  const std::vector<unsigned>& unusable_os_cpus() const noexcept { return unusable_os_cpus_; }
  // One sentence on what restricted the model ("" when nothing did).
  const std::string& restriction() const noexcept { return restriction_; }

 private:
  friend struct TopologyBuilder;  // the hwloc seam fills the model
  std::string source_;
  bool this_machine_ = false;
  std::vector<Package> packages_;
  std::vector<NumaNode> nodes_;
  std::vector<L3Group> l3s_;
  std::vector<Core> cores_;
  std::vector<Pu> pus_;
  std::vector<unsigned> distances_;  // nodes x nodes, row-major
  std::string distance_origin_;
  std::vector<unsigned> unusable_os_cpus_;
  std::string restriction_;
};

}  // namespace vitte

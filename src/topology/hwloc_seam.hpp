// The hwloc seam: the only code that includes <hwloc.h>.
//
// It turns an hwloc topology (this machine, an XML export, a synthetic description) into
// vitte's plain Topology model, and binds threads to PUs. Everything else in the runtime
// speaks the model, so a later switch of discovery library touches this file alone.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "vitte/topology.hpp"

namespace vitte::detail::hw {

Topology load_this_machine();
Topology load_xml(const std::string& path);
Topology load_synthetic(const std::string& description);

// Parses hwloc's list syntax ("0-7,16-23") into sorted Linux CPU numbers. Returns false on
// a malformed list.
bool parse_cpu_list(const std::string& text, std::vector<unsigned>* out);
// The reverse, for messages ("0-3,8").
std::string format_cpu_list(const std::vector<unsigned>& cpus);

// Binds the calling thread to the Linux CPU `os_cpu`. Returns false and fills `why` when
// the kernel refuses.
bool pin_current_thread(unsigned os_cpu, std::string* why);

// Memory binding on this machine; nodes are logical ids of Topology::this_machine().
// Sets the memory policy of [p, p+bytes) (page-aligned) to bind to `node`, before first
// touch. Returns false and fills `why` when the kernel refuses.
bool bind_area(void* p, std::size_t bytes, unsigned node, std::string* why);
// The nodes the kernel reports for the policy of [p, p+bytes) (logical ids; empty when no
// policy is set or it cannot be read).
std::vector<unsigned> area_binding(const void* p, std::size_t bytes);
// Page-granular memory bound to `node` (hwloc_alloc_membind); null on failure.
void* alloc_bound(std::size_t bytes, unsigned node);
void free_bound(void* p, std::size_t bytes) noexcept;
// The node (logical id) of the CPU the calling thread runs on; 0 when unknown.
unsigned current_node() noexcept;
// Number of NUMA nodes of this machine.
unsigned node_count() noexcept;

// NUMA nodes numbered as oneTBB's hwloc binding (tbbbind) numbers them: (Linux node
// number, hwloc logical index) for each node that has CPUs in the allowed set, in a
// topology loaded the way tbbbind loads it. xml_path empty: this machine, restricted to
// the process's CPU binding; otherwise that XML export, restricted to `cpus` when given.
std::vector<std::pair<unsigned, int>> tbbbind_numa_ids(const std::string& xml_path = "",
                                                       const std::vector<unsigned>& cpus = {});

}  // namespace vitte::detail::hw

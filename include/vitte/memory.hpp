// Node-local memory: allocations whose pages lie on a chosen NUMA node of this machine.
//
//   std::vector<double, vitte::NodeAllocator<double>> v(n, vitte::NodeAllocator<double>(1));
//   void* buf = vitte::allocate_local(bytes);   // on the node of the CPU this thread runs on
//   vitte::deallocate(buf, bytes);
//
// Nodes are logical ids of Topology::this_machine(). With jemalloc (release builds) every
// node has its own arena whose extents are bound to the node before first touch; without it
// (sanitizer builds) blocks of a page or more come from hwloc-bound pages and smaller ones
// from malloc, unbound. memory_backend() says which, and node_memory_stats() counts per node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

namespace vitte {

struct Plan;

// Throws std::bad_alloc when the memory cannot be had, UsageError for a node this machine
// does not have. `align` must be a power of two.
void* allocate_on_node(std::size_t bytes, unsigned node, std::size_t align = alignof(std::max_align_t));
// On the node of the CPU the calling thread runs on (a pinned worker: its own node).
void* allocate_local(std::size_t bytes, std::size_t align = alignof(std::max_align_t));
// Frees what allocate_on_node/allocate_local returned; `bytes` and `align` as given there.
// The statistics credit the node the kernel reports for the block (a lookup), or `node`
// when the caller knows it.
void deallocate(void* p, std::size_t bytes, std::size_t align = alignof(std::max_align_t)) noexcept;
void deallocate_on_node(void* p, std::size_t bytes, unsigned node,
                        std::size_t align = alignof(std::max_align_t)) noexcept;

// The nodes the kernel's memory policy for [p, p+bytes) names (empty: no binding).
std::vector<unsigned> memory_binding(const void* p, std::size_t bytes);
// "jemalloc arenas bound per node" or the fallback, in words.
std::string memory_backend();

struct NodeMemoryStats {
  unsigned node = 0;
  std::uint64_t allocations = 0;
  std::uint64_t bytes_allocated = 0;
  std::uint64_t frees = 0;
  std::uint64_t bytes_freed = 0;
  std::uint64_t bytes_live() const noexcept { return bytes_allocated - bytes_freed; }
};
// One entry per NUMA node of this machine, process-wide.
std::vector<NodeMemoryStats> node_memory_stats();

// Whether a scheduler's workers route their plain malloc/new to their node's arena, and why.
struct MallocRouting {
  bool node_local = false;
  std::string reason;
};
// Decides for a plan (memory.allocator / PlanOptions::malloc). Throws PlanError when
// "node-local" was asked for and cannot work here.
MallocRouting malloc_routing(const Plan& plan);

// STL allocator on a fixed node.
template <class T>
class NodeAllocator {
 public:
  using value_type = T;
  explicit NodeAllocator(unsigned node) noexcept : node_(node) {}
  template <class U>
  NodeAllocator(const NodeAllocator<U>& o) noexcept : node_(o.node()) {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate_on_node(n * sizeof(T), node_, alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { vitte::deallocate_on_node(p, n * sizeof(T), node_, alignof(T)); }
  unsigned node() const noexcept { return node_; }

  template <class U>
  bool operator==(const NodeAllocator<U>& o) const noexcept { return node_ == o.node(); }

 private:
  unsigned node_;
};

}  // namespace vitte

// Node-local memory: backend choice, the fallback, and per-node statistics.
//
// Statistics are per-node relaxed atomics: allocation is not on the task hot path, and a
// snapshot only needs totals that are exact once the allocating threads are done.
#include "vitte/memory.hpp"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "memory/free_memory.hpp"
#include "memory/jemalloc_arenas.hpp"
#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"
#include "vitte/plan.hpp"

namespace vitte {

namespace {

struct alignas(64) NodeCounters {
  std::atomic<std::uint64_t> allocations{0}, bytes_allocated{0}, frees{0}, bytes_freed{0};
};

NodeCounters* counters() {
  static const unsigned n = detail::hw::node_count();
  static std::unique_ptr<NodeCounters[]> c(new NodeCounters[n]);
  return c.get();
}

// Fallback (no jemalloc): blocks of at least a page come from hwloc-bound pages.
constexpr std::size_t kPage = 4096;
bool fallback_bound(std::size_t bytes, std::size_t align) { return bytes >= kPage || align > kPage / 2; }

void check_align(std::size_t align) {
  if (align == 0 || (align & (align - 1)) != 0)
    throw UsageError("allocate_on_node: alignment " + std::to_string(align) + " is not a power of two");
}

// The node a block was counted on is not stored with it; deallocate credits the node the
// kernel reports for the block when there is one, else the calling thread's node.
unsigned node_of_block(const void* p, std::size_t bytes) {
  const std::vector<unsigned> nodes = detail::hw::area_binding(p, bytes == 0 ? 1 : bytes);
  return nodes.size() == 1 ? nodes.front() : detail::hw::current_node();
}

}  // namespace

void* allocate_on_node(std::size_t bytes, unsigned node, std::size_t align) {
  check_align(align);
  const unsigned nodes = detail::hw::node_count();
  if (node >= nodes)
    throw UsageError("allocate_on_node: node " + std::to_string(node) + " does not exist (this machine has " +
                     std::to_string(nodes) + " NUMA node" + (nodes == 1 ? "" : "s") + ")");
  void* p = nullptr;
  if (detail::je::available()) {
    p = detail::je::allocate(bytes, align, node);
  } else if (fallback_bound(bytes, align)) {
    p = detail::hw::alloc_bound(bytes, node);
  } else {
    p = std::aligned_alloc(align < sizeof(void*) ? sizeof(void*) : align, (bytes + align - 1) / align * align);
  }
  if (p == nullptr) throw std::bad_alloc();
  NodeCounters& c = counters()[node];
  c.allocations.fetch_add(1, std::memory_order_relaxed);          // statistics only
  c.bytes_allocated.fetch_add(bytes, std::memory_order_relaxed);  // statistics only
  return p;
}

void* allocate_local(std::size_t bytes, std::size_t align) {
  return allocate_on_node(bytes, detail::hw::current_node(), align);
}

void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept {
  if (p != nullptr) deallocate_on_node(p, bytes, node_of_block(p, bytes), align);
}

void deallocate_on_node(void* p, std::size_t bytes, unsigned node, std::size_t align) noexcept {
  if (p == nullptr) return;
  NodeCounters& c = counters()[node < detail::hw::node_count() ? node : 0];
  c.frees.fetch_add(1, std::memory_order_relaxed);            // statistics only
  c.bytes_freed.fetch_add(bytes, std::memory_order_relaxed);  // statistics only
  if (detail::je::available())
    detail::je::deallocate(p, bytes, align);
  else if (fallback_bound(bytes, align))
    detail::hw::free_bound(p, bytes);
  else
    std::free(p);
}

std::vector<unsigned> memory_binding(const void* p, std::size_t bytes) { return detail::hw::area_binding(p, bytes); }

std::string memory_backend() {
  if (detail::je::available()) {
    const std::string err = detail::je::bind_error();
    return "jemalloc arenas, one per node, extents bound with hwloc" + (err.empty() ? "" : " (binding failed: " + err + ")");
  }
  return "no jemalloc in this build: blocks of 4 KiB or more on hwloc-bound pages, smaller ones from malloc (unbound)";
}

MallocRouting malloc_routing(const Plan& plan) {
  using M = PlanOptions::Malloc;
  if (plan.malloc == M::System) return {false, "memory.allocator = \"system\""};
  const bool je_malloc = detail::je::is_process_malloc();
  if (plan.malloc == M::NodeLocal) {
    if (!je_malloc)
      throw PlanError(std::string("memory.allocator = \"node-local\" needs jemalloc as the process's malloc: ") +
                      (detail::je::available() ? "link the program with -ljemalloc, or run it with LD_PRELOAD=libjemalloc.so.2"
                                               : "this build has no jemalloc (sanitizer builds switch it off)"));
    return {true, "memory.allocator = \"node-local\""};
  }
  if (!je_malloc) return {false, "auto: jemalloc is not this process's malloc"};
  if (plan.binding != Binding::Pinned) return {false, "auto: the workers are not pinned"};
  if (detail::hw::node_count() < 2) return {false, "auto: this machine has one NUMA node, nothing to localise"};
  return {true, "auto: pinned workers on a multi-node machine"};
}

std::vector<NodeMemoryStats> node_memory_stats() {
  std::vector<NodeMemoryStats> out;
  const unsigned n = detail::hw::node_count();
  for (unsigned i = 0; i < n; ++i) {
    const NodeCounters& c = counters()[i];
    out.push_back(NodeMemoryStats{i, c.allocations.load(std::memory_order_relaxed),
                                  c.bytes_allocated.load(std::memory_order_relaxed),
                                  c.frees.load(std::memory_order_relaxed),
                                  c.bytes_freed.load(std::memory_order_relaxed)});
  }
  return out;
}

namespace detail {

void release_free_memory() noexcept {
  if (je::is_process_malloc())
    je::purge_all();
  else
    malloc_trim(0);  // glibc: hands free pages inside the heaps back (madvise), not only the top
}

}  // namespace detail

}  // namespace vitte

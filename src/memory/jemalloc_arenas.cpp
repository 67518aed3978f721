#include "memory/jemalloc_arenas.hpp"

#include <jemalloc/jemalloc.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "topology/hwloc_seam.hpp"

namespace vitte::detail::je {

namespace {

// Written under `mu` when an arena is created; read by the hooks (jemalloc calls them
// under its own locks, after the creation that published the entry).
std::mutex mu;
std::vector<int> arena_of_node;       // -1: not created yet
std::vector<int> node_of_arena(4096, -1);
extent_hooks_t* default_hooks = nullptr;
std::atomic<bool> bind_failed{false};
std::string first_bind_error;         // under mu

void* bound_alloc(extent_hooks_t*, void* new_addr, std::size_t size, std::size_t alignment, bool* zero,
                  bool* commit, unsigned arena_ind) {
  void* p = default_hooks->alloc(default_hooks, new_addr, size, alignment, zero, commit, arena_ind);
  if (p == nullptr || arena_ind >= node_of_arena.size() || node_of_arena[arena_ind] < 0) return p;
  std::string why;
  if (!hw::bind_area(p, size, static_cast<unsigned>(node_of_arena[arena_ind]), &why) &&
      !bind_failed.exchange(true, std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(mu);
    first_bind_error = why;
  }
  return p;
}

bool pass_dalloc(extent_hooks_t*, void* addr, std::size_t size, bool committed, unsigned arena_ind) {
  return default_hooks->dalloc(default_hooks, addr, size, committed, arena_ind);
}
void pass_destroy(extent_hooks_t*, void* addr, std::size_t size, bool committed, unsigned arena_ind) {
  default_hooks->destroy(default_hooks, addr, size, committed, arena_ind);
}
bool pass_commit(extent_hooks_t*, void* addr, std::size_t size, std::size_t offset, std::size_t length,
                 unsigned arena_ind) {
  return default_hooks->commit(default_hooks, addr, size, offset, length, arena_ind);
}
bool pass_decommit(extent_hooks_t*, void* addr, std::size_t size, std::size_t offset, std::size_t length,
                   unsigned arena_ind) {
  return default_hooks->decommit(default_hooks, addr, size, offset, length, arena_ind);
}
bool pass_purge_lazy(extent_hooks_t*, void* addr, std::size_t size, std::size_t offset, std::size_t length,
                     unsigned arena_ind) {
  return default_hooks->purge_lazy == nullptr ||
         default_hooks->purge_lazy(default_hooks, addr, size, offset, length, arena_ind);
}
bool pass_purge_forced(extent_hooks_t*, void* addr, std::size_t size, std::size_t offset, std::size_t length,
                       unsigned arena_ind) {
  return default_hooks->purge_forced == nullptr ||
         default_hooks->purge_forced(default_hooks, addr, size, offset, length, arena_ind);
}
bool pass_split(extent_hooks_t*, void* addr, std::size_t size, std::size_t size_a, std::size_t size_b,
                bool committed, unsigned arena_ind) {
  return default_hooks->split == nullptr ||
         default_hooks->split(default_hooks, addr, size, size_a, size_b, committed, arena_ind);
}
bool pass_merge(extent_hooks_t*, void* addr_a, std::size_t size_a, void* addr_b, std::size_t size_b,
                bool committed, unsigned arena_ind) {
  return default_hooks->merge == nullptr ||
         default_hooks->merge(default_hooks, addr_a, size_a, addr_b, size_b, committed, arena_ind);
}

extent_hooks_t node_hooks = {bound_alloc, pass_dalloc, pass_destroy, pass_commit, pass_decommit,
                             pass_purge_lazy, pass_purge_forced, pass_split, pass_merge};

// The arena of `node`, created on first use; -1 if jemalloc refuses.
int arena_for(unsigned node) {
  std::lock_guard<std::mutex> lock(mu);
  if (arena_of_node.empty()) arena_of_node.assign(hw::node_count(), -1);
  if (node >= arena_of_node.size()) return -1;
  if (arena_of_node[node] >= 0) return arena_of_node[node];
  if (default_hooks == nullptr) {
    std::size_t sz = sizeof(default_hooks);
    if (mallctl("arena.0.extent_hooks", &default_hooks, &sz, nullptr, 0) != 0) return -1;
  }
  // The arena index is only known after creation, but the hooks must know its node before
  // the first extent: reserve the slot by creating, then publish the node, then allocate.
  unsigned ind = 0;
  std::size_t sz = sizeof(ind);
  extent_hooks_t* hooks = &node_hooks;
  if (mallctl("arenas.create", &ind, &sz, &hooks, sizeof(hooks)) != 0 || ind >= node_of_arena.size()) return -1;
  node_of_arena[ind] = static_cast<int>(node);
  arena_of_node[node] = static_cast<int>(ind);
  return static_cast<int>(ind);
}

int flags(std::size_t align) {
  int f = MALLOCX_TCACHE_NONE;
  if (align > alignof(std::max_align_t)) f |= MALLOCX_ALIGN(align);
  return f;
}

}  // namespace

bool available() noexcept { return true; }

void* allocate(std::size_t bytes, std::size_t align, unsigned node) {
  const int arena = arena_for(node);
  if (arena < 0) return nullptr;
  return mallocx(bytes == 0 ? 1 : bytes, flags(align) | MALLOCX_ARENA(arena));
}

void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept {
  if (p != nullptr) sdallocx(p, bytes == 0 ? 1 : bytes, flags(align));
}

bool is_process_malloc() noexcept {
  // The malloc this library's calls resolve to: jemalloc's only if the program linked or
  // preloaded libjemalloc ahead of libc.
  Dl_info info{};
  void* (*resolved)(std::size_t) = &::malloc;
  return dladdr(reinterpret_cast<void*>(resolved), &info) != 0 && info.dli_fname != nullptr &&
         std::strstr(info.dli_fname, "jemalloc") != nullptr;
}

bool route_thread_malloc(unsigned node, std::string* why) {
  if (!is_process_malloc()) {
    if (why) *why = "the process's malloc is not jemalloc's (link the program with -ljemalloc, or run it with "
                    "LD_PRELOAD=libjemalloc.so.2)";
    return false;
  }
  const int arena = arena_for(node);
  unsigned ind = static_cast<unsigned>(arena);
  bool off = false;
  if (arena < 0 || mallctl("thread.arena", nullptr, nullptr, &ind, sizeof(ind)) != 0 ||
      mallctl("thread.tcache.enabled", nullptr, nullptr, &off, sizeof(off)) != 0) {
    if (why) *why = "jemalloc refused to route this thread to node " + std::to_string(node) + "'s arena";
    return false;
  }
  return true;
}

void purge_all() noexcept {
  // MALLCTL_ARENAS_ALL (4096 in jemalloc 5) names every arena.
  const std::string name = "arena." + std::to_string(MALLCTL_ARENAS_ALL) + ".purge";
  mallctl(name.c_str(), nullptr, nullptr, nullptr, 0);
}

std::string bind_error() {
  std::lock_guard<std::mutex> lock(mu);
  return first_bind_error;
}

}  // namespace vitte::detail::je

// The jemalloc seam: the only code that includes <jemalloc/jemalloc.h>, built only when
// meson finds jemalloc (never in sanitizer builds).
//
// One jemalloc arena per NUMA node, created on first use with `arenas.create` and extent
// hooks that wrap jemalloc's defaults: every extent the arena maps is bound to its node with
// hwloc (mbind) before anything touches it, so every page it hands out lies on that node.
// Node allocations bypass the thread caches (MALLOCX_TCACHE_NONE): an automatic tcache is
// shared by all arenas of a thread and would return one node's freed blocks to a request
// for another node.
#pragma once

#include <cstddef>
#include <string>

namespace vitte::detail::je {

// Whether this build has the jemalloc backend.
bool available() noexcept;
// Allocates from node's arena; null on failure.
void* allocate(std::size_t bytes, std::size_t align, unsigned node);
void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept;
// A first failure to bind an extent, if any ("" when every bind succeeded).
std::string bind_error();
// Whether the process's malloc is jemalloc's (the program links or preloads it).
bool is_process_malloc() noexcept;
// Makes the calling thread's malloc/new use `node`'s arena, with its thread cache off (a
// cache would hand out blocks other threads freed from other nodes). False with a reason
// when that is not possible.
bool route_thread_malloc(unsigned node, std::string* why);
// Returns the free pages of every arena to the system (jemalloc as the process's malloc).
void purge_all() noexcept;

}  // namespace vitte::detail::je

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

}  // namespace vitte::detail::je

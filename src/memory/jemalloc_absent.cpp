// Built when meson does not find jemalloc (sanitizer builds): node memory falls back to
// hwloc-bound pages for large blocks and malloc for small ones (memory/node_memory.cpp).
#include "memory/jemalloc_arenas.hpp"

namespace vitte::detail::je {

bool available() noexcept { return false; }
void* allocate(std::size_t, std::size_t, unsigned) { return nullptr; }
void deallocate(void*, std::size_t, std::size_t) noexcept {}
std::string bind_error() { return ""; }
bool is_process_malloc() noexcept { return false; }
void purge_all() noexcept {}
bool route_thread_malloc(unsigned, std::string* why) {
  if (why) *why = "this build has no jemalloc (sanitizer builds switch it off)";
  return false;
}

}  // namespace vitte::detail::je

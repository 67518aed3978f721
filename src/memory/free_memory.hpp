// Hands the process's free heap pages back to the system: jemalloc's arenas are purged when
// jemalloc is the malloc, else glibc's heaps are trimmed inside as well as at the top
// (malloc_trim). Called rarely: after a backlog of external work drained
// (SchedulerCore::on_idle) and after a burst of timers (TimerHeap H4).
#pragma once

namespace vitte::detail {

void release_free_memory() noexcept;  // memory/node_memory.cpp

}  // namespace vitte::detail

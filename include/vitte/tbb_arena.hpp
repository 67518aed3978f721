// The calling worker's node's tbb::task_arena (see vitte/tbb_interop.hpp for the contract).
//
// Unlike the rest of vitte's public headers this one includes oneTBB's headers: a program
// that uses it needs oneTBB's include path and `-ltbb` (pkg-config: `vitte-scheduler-tbb`,
// which requires vitte-scheduler and tbb; CMake: find_package(TBB) and link TBB::tbb
// beside vitte::scheduler).
// The arena comes from the oneTBB the library was built with (libtbb.so.12): build against
// the same oneTBB major version.
#pragma once

#include <oneapi/tbb/task_arena.h>

#include "vitte/tbb_interop.hpp"

namespace vitte {

// The arena of the calling worker's node, made on first use; owned by the worker's
// Scheduler and valid until its shutdown(). Throws UsageError outside a worker.
tbb::task_arena& tbb_arena();
// The arena of `node` (an arena node of `sched`).
tbb::task_arena& tbb_arena(Scheduler& sched, unsigned node);

}  // namespace vitte

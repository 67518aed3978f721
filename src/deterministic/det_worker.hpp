// The deterministic run's driver of the worker loop (worker/loop.hpp): a worker of a
// deterministic scheduler runs the same loop as a real one, and this driver turns each task
// it ran, and each round that found nothing, into the end of its turn (DetSim).
#pragma once

namespace vitte::detail {

class Worker;
class WaitCounter;

// The thread body of a deterministic scheduler's worker (Worker::main hands over to it):
// unpinned, no event counters, its start hook in its first turn, then the loop.
void run_deterministic(Worker& w);
// A wait of worker `w` of a deterministic run (DetSim::wait): the loop until `c` finishes.
void help_wait_deterministic(Worker& w, WaitCounter& c);

}  // namespace vitte::detail

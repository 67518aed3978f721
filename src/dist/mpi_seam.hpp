// The one seam between vitte::dist and MPI: no other file includes <mpi.h>.
//
// Thread rule: start() and stop() run on the thread that constructs and destroys the
// Cluster; everything else runs on the communication thread alone, which starts after
// start() returned and is joined before stop(). MPI_THREAD_SERIALIZED is therefore
// enough, and that is what start() asks for (docs/distributed.md, "Threads").
//
// The cluster talks on its own duplicate of MPI_COMM_WORLD, so a program's own messages
// (before or after the cluster) never match its tags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vitte::dist::detail::mpi {

struct Started {
  int rank = 0;
  int size = 1;
  bool initialised_here = false;  // start() called MPI_Init_thread (and MPI_Finalize runs at exit)
};

// Initialises MPI if needed (then finalised at exit, from std::atexit) and duplicates the
// world communicator. SetupError when MPI was finalised already or gives less than
// MPI_THREAD_SERIALIZED.
Started start(int* argc, char*** argv);
// Frees the communicator.
void stop();
// Ends every process of the job (MPI_Abort).
[[noreturn]] void abort(int code);

// Blocking collective, for start-up only (before the communication thread runs).
std::vector<std::string> all_gather_now(const std::string& mine);

// Point to point, communication thread only.
struct Incoming {
  int source = 0;
  int tag = 0;
  std::string bytes;
};
// Receives one waiting message, if any.
bool poll(Incoming& in);
// Starts sending; the bytes are kept until MPI is done with them.
void send(int dest, int tag, std::string bytes);
// Completes finished sends; true while some are still in flight.
bool progress_sends();
// Waits for every send to complete.
void flush_sends();

// A non-blocking all-gather of one string per rank (two steps: lengths, then bytes).
class Gather {
 public:
  explicit Gather(std::string mine);
  ~Gather();
  Gather(const Gather&) = delete;
  Gather& operator=(const Gather&) = delete;
  // Advances; true once every rank's string is in result().
  bool test();
  std::vector<std::string>& result() { return out_; }

 private:
  struct State;
  State* s_;
  std::vector<std::string> out_;
};

}  // namespace vitte::dist::detail::mpi

// Faults that end a job, one per mode (tests/dist/faults.sh checks each outcome):
//   missing    rank 1 lacks a function the others registered: SetupError on every rank
//   signature  rank 2 registers "scale" with another signature: SetupError on every rank
//   dies       rank 1 exits abruptly while rank 0 waits in join_all() for its work: the
//              job must end (Open MPI aborts it), not hang
//   throws     rank 1 leaves the cluster's scope in an exception while rank 0 waits in
//              join_all(): the Cluster's destructor aborts the job, nothing hangs
//   options    rank 1 alone asks for steal_batch 0: SetupError on every rank, no hang
//   again      two clusters one after the other in one process (MPI started by the first)
//              work; exit 0 on every rank
// Prints "refused: <message>" for a SetupError and exits 0 when the outcome is the expected
// one for this rank; anything else exits 1.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "vitte/dist.hpp"

namespace vd = vitte::dist;

namespace {
int one() { return 1; }
double scale(double x) { return 2 * x; }
long scale_long(long x) { return 2 * x; }
void nap(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: faults missing|signature|dies\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int me = vd::launch_rank();
  vitte::Scheduler sched(1);
  vd::Functions fns;
  fns.add<&nap>("nap");
  if (!(mode == "missing" && me == 1)) fns.add<&one>("one");
  if (mode == "signature" && me == 2) fns.add<&scale_long>("scale");
  else fns.add<&scale>("scale");
  if (mode == "missing" || mode == "signature") {
    try {
      vd::Cluster c(sched, fns);
      std::fprintf(stderr, "rank %d: the cluster started with disagreeing tables\n", me);
      return 1;
    } catch (const vd::SetupError& e) {
      std::printf("refused: %s\n", e.what());
      const std::string what = e.what();
      const bool named = mode == "missing"
                             ? what.find("\"one\" is not registered on rank 1") != std::string::npos
                             : what.find("\"scale\" is registered with different signatures") != std::string::npos &&
                                   what.find("on rank 2") != std::string::npos && what.find("ranks 0,1") != std::string::npos;
      return named ? 0 : 1;
    }
  }
  if (mode == "dies") {
    vd::Cluster c(sched, fns);
    if (c.rank() == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::fflush(nullptr);
      _exit(3);  // no MPI_Finalize: a crash, as far as the job is concerned
    }
    for (int i = 0; i < 200; ++i) (void)c.async<&nap>(1, 50);
    c.join_all();  // never returns normally: rank 1 is gone with its work
    std::fprintf(stderr, "rank %d: join_all() returned although rank 1 died\n", c.rank());
    return 1;
  }
  if (mode == "options") {
    try {
      vd::ClusterOptions o;
      if (me == 1) o.steal_batch = 0;
      vd::Cluster c(sched, fns, o);
      std::fprintf(stderr, "rank %d: the cluster started with a bad option\n", me);
      return 1;
    } catch (const vd::SetupError& e) {
      std::printf("refused: %s\n", e.what());
      return std::string(e.what()).find("steal_batch=0") != std::string::npos ? 0 : 1;
    }
  }
  if (mode == "again") {
    for (int round = 0; round < 2; ++round) {
      vd::Cluster c(sched, fns);
      const int one_each = static_cast<int>(c.sum(1));
      if (one_each != c.size()) return 1;
    }
    return 0;
  }
  if (mode == "throws") {
    try {
      vd::Cluster c(sched, fns);
      if (c.rank() == 1) throw std::runtime_error("a failure on rank 1");
      c.join_all();  // waits for rank 1, which never joins
      std::fprintf(stderr, "rank %d: join_all() returned although rank 1 left\n", c.rank());
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "rank %d: the exception reached main: %s (the job should have been aborted)\n", me,
                   e.what());
    }
    return 1;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}

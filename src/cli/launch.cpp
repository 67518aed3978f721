// How a launcher started this process (cli/dist_job.hpp). Compiled in every build, so that
// a build without MPI can still tell that mpirun started it and refuse to run N copies of
// the job side by side.
#include <cstdlib>
#include <initializer_list>

#include "build_config.hpp"
#include "cli/dist_job.hpp"
#if VITTE_HAVE_DIST
#include "vitte/dist.hpp"
#endif

namespace vitte::cli {

namespace {

// The first of `vars` the environment sets, as a number; -1 when none is set.
int env_number(std::initializer_list<const char*> vars) {
  for (const char* v : vars)
    if (const char* s = std::getenv(v); s != nullptr && *s != '\0') return std::atoi(s);
  return -1;
}

}  // namespace

Launch launch_info() {
  Launch l;
#if VITTE_HAVE_DIST
  l.rank = vitte::dist::launch_rank();  // the library's own notion of "launched"
#else
  // The variables vitte::dist::launch_rank() reads (src/dist/cluster.cpp).
  l.rank = env_number({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"});
#endif
  // The size, from the same launchers (PMIx sets no size variable: unknown, 0).
  const int size = env_number({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"});
  l.size = l.rank >= 0 && size > 0 ? size : 0;
  return l;
}

}  // namespace vitte::cli

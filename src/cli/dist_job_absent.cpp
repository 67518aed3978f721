// DistJob in a build without vitte::dist (no MPI or cereal). run_command refuses a run
// across ranks before it would make one (refuse_local_only), so none of this runs; it
// keeps that code free of build conditions.
#include "cli/dist_job.hpp"

namespace vitte::cli {

struct DistJob::Impl {};

namespace {
[[noreturn]] void absent() {
  throw Failure(kExitRuntime, "this vitte-sched was built without MPI (vitte::dist): it cannot run across ranks");
}
}  // namespace

DistJob::DistJob(Scheduler&, const std::string&, std::vector<SourceFile>&, const std::string&) { absent(); }
DistJob::~DistJob() = default;
int DistJob::rank() const { absent(); }
int DistJob::size() const { absent(); }
JobResult DistJob::run(PassPipeline&) { absent(); }
std::vector<RankReport> DistJob::finish() { absent(); }

}  // namespace vitte::cli

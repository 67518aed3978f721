// vitte-sched top: the main job, run again and again for a while under the live view.
//
// One run of the job over a small tree ends well within a second, too soon to watch; top
// keeps one scheduler busy with back-to-back runs so that every refresh has work to show.
#include <atomic>
#include <chrono>
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/include_graph.hpp"
#include "cli/live_view.hpp"
#include "cli/pipeline.hpp"

namespace vitte::cli {

int top_command(const TopArgs& args) {
  const std::optional<Config> config = load_config(args.topo);
  const Topology topo = load_topology(args.topo);
  const Placement placement = parse_placement(args.topo.placement);
  SkipTally skipped;
  std::vector<SourceFile> files = list_tree(args.dir, skipped);
  PassPipeline pipeline(args.dir, files);
  Scheduler sched = make_scheduler(topo, config, args.topo.workers, placement,
                                   metrics_options(args.metrics, config, /*live=*/true));

  using clock = std::chrono::steady_clock;
  const clock::time_point start = clock::now();
  const clock::time_point end = start + std::chrono::seconds(args.seconds);
  std::atomic<unsigned> runs{0};  // read by the view's thread for its title
  const std::string workers = std::to_string(sched.num_workers());
  const std::string nodes = std::to_string(sched.metrics().nodes.size());  // nodes with an arena
  {
    LiveView view(sched, stdout, [&] {
      const double t = std::chrono::duration<double>(clock::now() - start).count();
      char head[160];
      std::snprintf(head, sizeof head, "vitte-sched top: %zu files, %s worker(s) on %s node(s), %u run(s) done, %.0f of %u s",
                    files.size(), workers.c_str(), nodes.c_str(), runs.load(std::memory_order_relaxed), t, args.seconds);
      return std::string(head) + " (" + args.dir + ")";
    });
    // The last run finishes even when it outlasts the time asked for.
    do {
      pipeline.run(sched);
      runs.fetch_add(1, std::memory_order_relaxed);
    } while (clock::now() < end);
    view.stop();
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  const MetricsSnapshot m = sched.metrics();
  std::printf("top: %u run(s) of the main job over %zu files in %.1f s: %llu tasks on %zu worker(s)\n", runs.load(),
              files.size(), seconds, static_cast<unsigned long long>(m.total.executed), sched.num_workers());
  return kExitOk;
}

}  // namespace vitte::cli

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "build_config.hpp"
#include "cli/commands.hpp"
#include "cli/dist_job.hpp"
#include "cli/include_graph.hpp"
#include "cli/live_view.hpp"
#include "cli/pipeline.hpp"
#include "cli/report.hpp"
#include "metrics/json_export.hpp"
#include "vitte/metrics_export.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::cli {

Scheduler make_scheduler(const Topology& t, const std::optional<Config>& config, std::size_t workers,
                         Placement placement, MetricsOptions metrics) {
  Options o;
  o.topology = t;
  o.config = config;
  o.workers = workers;
  o.placement = placement;
  o.metrics = std::move(metrics);
  return Scheduler(std::move(o));
}

namespace {

// Whether an export (--metrics-json, --metrics-prom) goes to standard output.
bool export_to_stdout(const std::string& file) { return file == "-" || (!file.empty() && is_stdout(file)); }

// `file` as an absolute path with ".", ".." and the symbolic links of its existing part
// resolved; a dangling link is followed too, since writing through it makes its target.
std::filesystem::path normalised(const std::string& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(file, ec);
  for (int hops = 0; hops < 40 && fs::is_symlink(fs::symlink_status(p, ec)); ++hops) {
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) break;
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  const fs::path canonical = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal() : canonical;
}

// Whether two output paths name one file: the same device and inode where it exists (another
// spelling, a symbolic or hard link), the same normalised path where it does not yet.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  const bool a_exists = ::stat(a.c_str(), &sa) == 0, b_exists = ::stat(b.c_str(), &sb) == 0;
  if (a_exists || b_exists) return a_exists && b_exists && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  return normalised(a) == normalised(b);
}

// Two outputs into one file would leave only the later: refused. Standard output ("-",
// /dev/stdout, ...) has its own rules, checked before this.
void refuse_shared_outputs(const RunArgs& args) {
  const std::pair<const char*, const std::string*> outputs[] = {
      {"--trace", &args.trace}, {"--dot", &args.dot}, {"--metrics-json", &args.metrics_json},
      {"--metrics-prom", &args.metrics_prom}};
  for (std::size_t i = 0; i < std::size(outputs); ++i)
    for (std::size_t k = i + 1; k < std::size(outputs); ++k) {
      const auto& [flag_a, a] = outputs[i];
      const auto& [flag_b, b] = outputs[k];
      if (a->empty() || b->empty() || export_to_stdout(*a) || export_to_stdout(*b) || !same_file(*a, *b)) continue;
      throw Failure(kExitUsage, std::string(flag_a) + (*a == *b ? "" : " '" + *a + "'") + " and " + flag_b +
                                    (*a == *b ? " both write '" + *a + "'" : " '" + *b + "' both write the same file") +
                                    ": give each output its own file");
    }
}

// Refuses what a run across ranks cannot do: every rank meets it alike, rank 0 reports it.
[[noreturn]] void refuse_across(const Launch& launch, const std::string& what) {
  const std::string message = what + " (mpirun started " +
                              (launch.size > 0 ? std::to_string(launch.size) : std::string("several")) +
                              " ranks); run without mpirun for it";
  if (launch.secondary()) throw RanksFailure(kExitUsage, message);
  throw Failure(kExitUsage, message);
}

// The options that describe one process's run: refused across ranks.
void refuse_local_only(const Launch& launch, const RunArgs& args) {
#if !VITTE_HAVE_DIST
  refuse_across(launch, "this vitte-sched was built without MPI (vitte::dist), so it cannot run the job across ranks");
#endif
  if (!args.dot.empty()) refuse_across(launch, "--dot draws one process's pass graph: not available across ranks");
  if (!args.trace.empty()) refuse_across(launch, "--trace records one process's schedulers: not available across ranks");
  if (args.passes) refuse_across(launch, "--passes times one process's pass graph: not available across ranks");
  if (args.live) refuse_across(launch, "--live shows one process's workers: not available across ranks");
}

bool same_answer(const JobResult& a, const JobResult& b) {
  return a.files == b.files && a.files_read == b.files_read && a.skipped == b.skipped && a.bytes == b.bytes &&
         a.tokens == b.tokens && a.resolved == b.resolved && a.reach_sum == b.reach_sum &&
         a.cycle_edges_dropped == b.cycle_edges_dropped && a.analyse_edges == b.analyse_edges;
}


// "3 skipped: 1 not_regular (first: fifo: a FIFO), 2 too_large (first: big: 268435456 bytes)"
std::string describe_skips(const SkipTally& s) {
  std::string out = std::to_string(s.total()) + " skipped";
  const char* sep = ": ";
  for (std::size_t i = 0; i < kSkipReasons; ++i) {
    if (s.count[i] == 0) continue;
    out += sep + std::to_string(s.count[i]) + " " + to_string(static_cast<Skip>(i)) + " (first: " + s.first[i] +
           ": " + s.first_why[i] + ")";
    sep = ", ";
  }
  return out;
}

nlohmann::json skips_json(const SkipTally& s) {
  nlohmann::json j;
  j["total"] = s.total();
  for (std::size_t i = 1; i < kSkipReasons; ++i) j[to_string(static_cast<Skip>(i))] = s.count[i];
  return j;
}

nlohmann::json skip_examples_json(const SkipTally& s) {
  nlohmann::json j = nlohmann::json::array();
  for (std::size_t i = 1; i < kSkipReasons; ++i)
    if (s.count[i] > 0)
      j.push_back({{"reason", to_string(static_cast<Skip>(i))}, {"file", s.first[i]}, {"why", s.first_why[i]}});
  return j;
}

}  // namespace

// Whether `file` names the same file as this process's standard output (/dev/stdout, a
// path the shell redirected stdout to, ...).
bool is_stdout(const std::string& file) {
  struct stat a {}, b {};
  return ::stat(file.c_str(), &a) == 0 && ::fstat(STDOUT_FILENO, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

void write_output(const std::string& file, const std::string& text, const std::string& what) {
  errno = 0;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (out) out << text;
  if (out) out.close();
  if (!out)
    throw Failure(kExitRuntime, "cannot write " + what + " to '" + file + "'" +
                                    (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()));
}

int run_command(const RunArgs& args) {
  // The trace and the pass graph are whole documents of their own; standard output carries
  // the report (or the --json document), so they go to files only.
  if (!args.dot.empty() && (args.dot == "-" || is_stdout(args.dot)))
    throw Failure(kExitUsage, "--dot '" + args.dot + "' is standard output, which carries the report: write the "
                              "pass graph to a file");
  if (!args.trace.empty() && (args.trace == "-" || is_stdout(args.trace)))
    throw Failure(kExitUsage, "--trace '" + args.trace + "' is standard output, which carries the report: write "
                              "the trace to a file");
  const bool json_to_stdout = export_to_stdout(args.metrics_json), prom_to_stdout = export_to_stdout(args.metrics_prom);
  for (const auto& [flag, file, to_stdout] : {std::tuple{"--metrics-json", args.metrics_json, json_to_stdout},
                                              std::tuple{"--metrics-prom", args.metrics_prom, prom_to_stdout}})
    if (args.json && to_stdout)
      throw Failure(kExitUsage, std::string(flag) + " '" + file + "' is standard output, which --json keeps for one "
                                "JSON document (its \"metrics\" key holds the snapshot): write it to a file");
  if (json_to_stdout && prom_to_stdout)
    throw Failure(kExitUsage, "--metrics-json '" + args.metrics_json + "' and --metrics-prom '" + args.metrics_prom +
                                  "' are both standard output: write one of them to a file");
  if (args.json && args.live)
    throw Failure(kExitUsage, "--live draws on standard output, which --json keeps for one JSON document");
  refuse_shared_outputs(args);
  // Under mpirun with several ranks the job runs across them (cli/dist_job.hpp).
  const Launch launch = launch_info();
  if (launch.across()) refuse_local_only(launch, args);
  const std::optional<Config> config = load_config(args.topo);
  const Topology topo = load_topology(args.topo);
  const Placement placement = parse_placement(args.topo.placement);
  SkipTally listing_skips;
  std::vector<SourceFile> files;
  // Across ranks, a rank that cannot list the tree still joins the cluster, which reports
  // it on rank 0; alone, it fails here.
  std::string listing_error;
  try {
    files = list_tree(args.dir, listing_skips);
  } catch (const UsageError& e) {
    if (!launch.across()) throw;
    listing_error = e.what();
  }
  if (!args.dot.empty() && PassPipeline::tasks_for(files.size()) > kMaxDotTasks)
    throw Failure(kExitUsage, "--dot: the pass graph of '" + args.dir + "' would have " +
                                  std::to_string(PassPipeline::tasks_for(files.size())) + " tasks (4 per file for " +
                                  std::to_string(files.size()) + " files, plus 1); more than " +
                                  std::to_string(kMaxDotTasks) + " cannot be drawn usefully: pick a --dir of at most " +
                                  std::to_string((kMaxDotTasks - 1) / 4) + " files");
  // A --trace file that cannot be written fails now, before any run is spent on it (opened
  // to append: an existing file is only replaced once the trace is there).
  if (!args.trace.empty()) {
    errno = 0;
    if (!std::ofstream(args.trace, std::ios::binary | std::ios::app))
      throw Failure(kExitRuntime, "cannot write the trace to '" + args.trace + "'" +
                                      (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()));
  }
  // One graph for every run below, on both schedulers.
  PassPipeline pipeline(args.dir, files, /*name_files=*/!args.dot.empty());

  Scheduler sched = make_scheduler(topo, config, args.topo.workers, placement,
                                   metrics_options(args.metrics, config, args.live));
  const std::size_t n = sched.num_workers();
  // A deterministic schedule is one process's: refused across ranks, as the options above.
  if (launch.across() && sched.schedule().deterministic)
    refuse_across(launch, "deterministic mode (VITTE_DETERMINISTIC or [deterministic]) orders one process's "
                          "tasks: not available across ranks");
  std::unique_ptr<DistJob> dist;
  if (launch.across()) dist = std::make_unique<DistJob>(sched, args.dir, files, listing_error);
  std::optional<LiveView> live;  // over the warm-up and the measured run
  if (args.live)
    live.emplace(sched, stdout, [&] { return "vitte-sched run --live: " + args.dir + ", " + std::to_string(n) + " worker(s)"; });
  if (dist)
    dist->run(pipeline);  // warm-up, as below, on every rank, and the cluster's first messages
  else
    pipeline.run(sched);  // warm-up: page cache, frame pools, thread start-up
  const MetricsSnapshot before = sched.metrics();
  // Timings only when asked for: an untraced run has no timing code at all.
  const bool trace = args.passes || !args.dot.empty();
  if (!args.trace.empty()) sched.start_trace();
  const JobResult par = dist ? dist->run(pipeline) : pipeline.run(sched, trace);
  const Trace run_trace = args.trace.empty() ? Trace() : sched.stop_trace();
  const MetricsSnapshot metrics = sched.metrics() - before;
  if (live) live->stop();
  if (!args.trace.empty()) write_output(args.trace, run_trace.json(), "the trace");
  const std::vector<PassTime> passes = args.passes ? pipeline.pass_times() : std::vector<PassTime>{};
  if (!args.dot.empty()) write_output(args.dot, pipeline.dot(), "the pass graph");
  // The exports of the measured run: files now, as --dot; standard output after the report.
  const std::string metrics_json_text = args.metrics_json.empty() ? "" : vitte::metrics_json(metrics, 2) + "\n";
  const std::string metrics_prom_text = args.metrics_prom.empty() ? "" : metrics_prometheus(metrics);
  if (!args.metrics_json.empty() && !json_to_stdout)
    write_output(args.metrics_json, metrics_json_text, "the metrics (JSON)");
  if (!args.metrics_prom.empty() && !prom_to_stdout)
    write_output(args.metrics_prom, metrics_prom_text, "the metrics (Prometheus text)");
  // Across ranks, each rank's part of the measured run; rank 0 alone goes on to the
  // baseline and the report, with the cluster stopped.
  std::vector<RankReport> ranks;
  const bool across = dist != nullptr;
  if (dist) {
    ranks = dist->finish();
    const bool rank0 = dist->rank() == 0;
    dist.reset();  // MPI finalised: the other ranks exit, and do not poll beside the baseline
    if (!rank0) return kExitOk;
  }
  std::uint64_t chunks = 0;  // across ranks: the tasks that ran read, lex and collect
  for (const RankReport& r : ranks) chunks += r.chunks;
  // "8-worker", or "2-rank" across ranks: what the baseline is compared with.
  const std::string measured = across ? std::to_string(ranks.size()) + "-rank" : std::to_string(n) + "-worker";
  SkipTally skipped = listing_skips;
  skipped.merge(par.skipped);

  JobResult base;
  bool have_base = false;
  // A deterministic run (VITTE_DETERMINISTIC, or the config's [deterministic]) is driven by
  // this thread, which drives one such scheduler at a time: no 1-worker baseline beside it.
  const ScheduleInfo schedule = sched.schedule();
  if (!args.skip_baseline && !schedule.deterministic) {
    // The baseline: one worker, on the first CPU the config allows.
    std::optional<Config> single = config;
    if (single) {
      single->plan.workers = 0;
      single->plan.workers_per_node = 0;
      single->sets_worker_count = false;
      if (single->plan.nodes.size() > 1) single->plan.nodes.erase(single->plan.nodes.begin() + 1, single->plan.nodes.end());
    }
    Scheduler one = make_scheduler(topo, single, 1, placement);
    const std::vector<SourceFile> par_files = files;
    base = pipeline.run(one);
    have_base = true;
    if (!same_answer(base, par)) {
      // Different input is not a disagreement: say which file changed.
      const std::string changed = first_input_change(par_files, files);
      if (!changed.empty())
        throw Failure(kExitRuntime, "the tree '" + args.dir + "' changed between the " + measured +
                                        " and 1-worker runs, so their answers cannot be compared: " +
                                        changed + "; --no-baseline skips the comparison");
      throw Failure(kExitMismatch, "the " + measured + " and 1-worker runs disagree (reach sum " +
                                       std::to_string(par.reach_sum) + " vs " + std::to_string(base.reach_sum) +
                                       ", files read " + std::to_string(par.files_read) + " vs " +
                                       std::to_string(base.files_read) + ", cycle edges dropped " +
                                       std::to_string(par.cycle_edges_dropped) + " vs " +
                                       std::to_string(base.cycle_edges_dropped) + ")");
    }
  }
  const double mb = static_cast<double>(par.bytes) / 1e6;
  const double speedup = have_base ? base.seconds / par.seconds : 0.0;
  if (args.json) {
    nlohmann::json j = with_schema({});
    j["dir"] = args.dir;
    j["workers"] = n;
    if (across) {
      j["ranks"] = ranks.size();
      j["per_rank"] = ranks_json(ranks, par.seconds);
    }
    j["plan"] = {{"binding", to_string(sched.plan().binding)}, {"reason", sched.plan().binding_reason},
                 {"topology", topo.source()}};
    j["files"] = par.files_read;
    j["max_file_bytes"] = kMaxSourceBytes;
    j["skipped"] = skips_json(skipped);
    j["skipped_first"] = skip_examples_json(skipped);
    j["bytes"] = par.bytes;
    j["tokens"] = par.tokens;
    j["include_directives"] = par.include_directives;
    j["includes_resolved"] = par.resolved;
    j["transitive_includes_sum"] = par.reach_sum;
    j["transitive_includes_max"] = {{"file", par.reach_max_file}, {"count", par.reach_max}};
    j["pipeline"] = {{"tasks", par.tasks},
                     {"passes", kPasses},
                     {"analyse_edges", par.analyse_edges},
                     {"include_cycle_edges_dropped", par.cycle_edges_dropped}};
    if (across) j["pipeline"]["chunks"] = chunks;  // its tasks: the chunks, link, analyse per file
    if (args.passes) {
      nlohmann::json jp = nlohmann::json::array();
      for (const PassTime& p : passes)
        jp.push_back({{"pass", p.pass}, {"tasks", p.tasks}, {"task_seconds", p.task_seconds},
                      {"wall_seconds", p.wall_seconds}});
      j["passes"] = jp;
    }
    if (!args.dot.empty()) j["dot_file"] = args.dot;
    if (!args.metrics_json.empty()) j["metrics_json_file"] = args.metrics_json;
    if (!args.metrics_prom.empty()) j["metrics_prom_file"] = args.metrics_prom;
    if (!args.trace.empty())
      j["trace"] = {{"file", args.trace},
                    {"task_slices", run_trace.task_slices()},
                    {"tasks_run", run_trace.tasks_run()},
                    {"sample_every", run_trace.sample_every()},
                    {"dropped_events", run_trace.dropped()}};
    j["seconds"] = par.seconds;
    j["files_per_second"] = static_cast<double>(par.files_read) / par.seconds;
    j["mb_per_second"] = mb / par.seconds;
    if (have_base) {
      j["baseline_1_worker_seconds"] = base.seconds;
      j["speedup_vs_1_worker"] = speedup;
    }
    j["peak_rss_bytes"] = peak_rss_bytes();
    if (schedule.deterministic)
      j["schedule"] = {{"seed", schedule.seed},   {"strategy", to_string(schedule.strategy)},
                       {"turns", schedule.turns}, {"tasks", schedule.tasks},
                       {"hash", schedule.hash},   {"reproduce", schedule.reproduce}};
    j["malloc"] = {{"node_local", sched.malloc_routing().node_local}, {"reason", sched.malloc_routing().reason}};
    j["metrics"] = detail::metrics_json_value(metrics);  // the library's metrics_json() object
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("vitte-sched run: %s with %zu worker(s)%s (%s: %s)\n", args.dir.c_str(), n,
              across ? (" on rank 0 of " + std::to_string(ranks.size()) + " ranks").c_str() : "",
              to_string(sched.plan().binding), sched.plan().binding_reason.c_str());
  std::printf("  %zu files read, %.1f MB, %llu tokens, %llu #include directives (%llu resolved in the tree)\n",
              par.files_read, mb, static_cast<unsigned long long>(par.tokens),
              static_cast<unsigned long long>(par.include_directives), static_cast<unsigned long long>(par.resolved));
  std::printf("  %s\n", describe_skips(skipped).c_str());
  std::printf("  transitive includes: %llu in all, most %u (%s)\n", static_cast<unsigned long long>(par.reach_sum),
              par.reach_max, par.reach_max_file.c_str());
  std::printf("  pass graph: %zu tasks (%s; link; analyse per file), %zu include edges between analyse tasks; "
              "include cycles broken: %llu edge(s) dropped\n",
              par.tasks,
              across ? (std::to_string(chunks) + " chunks of read, lex and collect across the ranks").c_str()
                   : "read, lex, collect per file",
              par.analyse_edges, static_cast<unsigned long long>(par.cycle_edges_dropped));
  if (args.passes) {
    std::printf("  passes (task time: durations summed over workers; wall: first start to last end):\n");
    for (const PassTime& p : passes)
      std::printf("    %-8s %7zu tasks, task time %8.3f s, wall %7.3f s\n", p.pass.c_str(), p.tasks, p.task_seconds,
                  p.wall_seconds);
  }
  if (!args.dot.empty()) std::printf("  pass graph written to %s\n", args.dot.c_str());
  if (schedule.deterministic)
    std::printf("  schedule: deterministic, seed %llu (%s), %llu turns, %llu tasks, hash %016llx (reproduce: %s; "
                "times are real, the order is the seed's; no 1-worker baseline)\n",
                static_cast<unsigned long long>(schedule.seed), to_string(schedule.strategy),
                static_cast<unsigned long long>(schedule.turns), static_cast<unsigned long long>(schedule.tasks),
                static_cast<unsigned long long>(schedule.hash), schedule.reproduce.c_str());
  if (!args.trace.empty())
    std::printf("  trace of the measured run written to %s: %llu task slices (%llu tasks run), %llu events dropped "
                "(open it in ui.perfetto.dev)\n",
                args.trace.c_str(), static_cast<unsigned long long>(run_trace.task_slices()),
                static_cast<unsigned long long>(run_trace.tasks_run()),
                static_cast<unsigned long long>(run_trace.dropped()));
  std::printf("  time %.3f s: %.0f files/s, %.1f MB/s\n", par.seconds, static_cast<double>(par.files_read) / par.seconds,
              mb / par.seconds);
  if (across) std::cout << describe_ranks(ranks, par.seconds);
  if (have_base)
    std::printf("  1 worker: %.3f s; speedup with %s: %.2fx (same answers checked)\n", base.seconds,
                across ? (std::to_string(ranks.size()) + " ranks").c_str() : (std::to_string(n) + " workers").c_str(),
                speedup);
  std::printf("  peak RSS %.0f MiB; workers' malloc: %s (%s)\n", static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0),
              sched.malloc_routing().node_local ? "node-local" : "system", sched.malloc_routing().reason.c_str());
  if (metrics.jobserver.in_use)
    std::printf("  jobserver (%s, %s): at most %u of %zu workers held a token at once; %llu token(s) read, "
                "%llu wait(s)\n",
                metrics.jobserver.kind.c_str(), metrics.jobserver.option.c_str(), metrics.jobserver.max_held, n,
                static_cast<unsigned long long>(metrics.jobserver.tokens_read),
                static_cast<unsigned long long>(metrics.jobserver.waits));
  std::cout << "  " << describe_locality(metrics);
  std::cout << describe_counters(metrics, args.metrics.counters || !args.metrics.events.empty());
  if (!args.metrics_json.empty() && !json_to_stdout) std::printf("  metrics (JSON) written to %s\n", args.metrics_json.c_str());
  if (!args.metrics_prom.empty() && !prom_to_stdout)
    std::printf("  metrics (Prometheus text) written to %s\n", args.metrics_prom.c_str());
  if (json_to_stdout) std::cout << metrics_json_text;
  if (prom_to_stdout) std::cout << metrics_prom_text;
  return 0;
}

}  // namespace vitte::cli

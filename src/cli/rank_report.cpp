// The per-rank section of a run across MPI ranks (cli/dist_job.hpp): --json's "per_rank"
// and the report's lines. Compiled in every build; only a run across ranks fills it.
#include <cstdio>

#include "cli/dist_job.hpp"

namespace vitte::cli {

namespace {
double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0.0; }
}  // namespace

nlohmann::json ranks_json(const std::vector<RankReport>& ranks, double seconds) {
  nlohmann::json out = nlohmann::json::array();
  for (const RankReport& r : ranks)
    out.push_back({{"rank", r.rank},
                   {"host", r.host},
                   {"workers", r.workers},
                   {"chunks", r.chunks},
                   {"files", r.files},
                   {"bytes", r.bytes},
                   {"files_per_second", per_second(r.files, seconds)},
                   {"mb_per_second", per_second(r.bytes, seconds) / 1e6},
                   {"busy_seconds", r.busy_seconds},
                   {"messages_sent", r.messages_sent},
                   {"bytes_sent", r.bytes_sent},
                   {"bytes_received", r.bytes_received},
                   {"remote_steal_requests", r.steal_requests},
                   {"remote_steals", r.steals_won},
                   {"tasks_stolen_in", r.tasks_stolen_in},
                   {"tasks_given", r.tasks_given},
                   {"peak_rss_bytes", r.peak_rss_bytes}});
  return out;
}

std::string describe_ranks(const std::vector<RankReport>& ranks, double seconds) {
  std::string out = "  per rank (read, lex and collect of the files each rank ran; rates over the run's time):\n";
  char line[512];
  for (const RankReport& r : ranks) {
    std::snprintf(line, sizeof line,
                  "    rank %d (%s, %llu worker(s)): %llu files in %llu chunks, %.1f MB: %.0f files/s, %.1f MB/s, "
                  "busy %.3f s; sent %llu bytes in %llu messages; remote steals %llu won of %llu asked "
                  "(%llu tasks in, %llu given)\n",
                  r.rank, r.host.c_str(), static_cast<unsigned long long>(r.workers),
                  static_cast<unsigned long long>(r.files), static_cast<unsigned long long>(r.chunks),
                  static_cast<double>(r.bytes) / 1e6, per_second(r.files, seconds),
                  per_second(r.bytes, seconds) / 1e6, r.busy_seconds, static_cast<unsigned long long>(r.bytes_sent),
                  static_cast<unsigned long long>(r.messages_sent), static_cast<unsigned long long>(r.steals_won),
                  static_cast<unsigned long long>(r.steal_requests), static_cast<unsigned long long>(r.tasks_stolen_in),
                  static_cast<unsigned long long>(r.tasks_given));
    out += line;
  }
  return out;
}

}  // namespace vitte::cli

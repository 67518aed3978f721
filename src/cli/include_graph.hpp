// The main job's workload: a compile-like pass over a source tree. What each file goes
// through: read it, tokenize it as C/C++ (identifiers, numbers, strings, punctuators;
// comments skipped), collect its #include directives and resolve them to files of the tree
// (below), then count the files it reaches transitively. The main job runs these as a
// pass pipeline on a vitte::Graph (cli/pipeline.hpp); run_job_phases() is the job as it
// was before (three parallel_for phases), kept as the reference the tests compare with.
//
// Resolution, as a compiler with every directory of the tree on its search path would
// do it: a quoted include is first tried beside the including file; then any include
// matches the tree file whose path ends with the included path, preferring the shortest
// such path (so <vector> finds c++/12/vector before some deeper file called vector).
//
// What is not read: entries that are not regular files (FIFOs, sockets, devices), symbolic
// links (not followed), directories that cannot be opened, files larger than
// kMaxSourceBytes (never read whole), and files that cannot be opened or read. Each is
// skipped and counted by reason, with the first one of each reason named.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "vitte/scheduler.hpp"

namespace vitte::cli {

// The largest file the job reads: a source file bigger than this is skipped, not read.
inline constexpr std::uint64_t kMaxSourceBytes = std::uint64_t{64} << 20;

enum class Skip : unsigned {
  None,
  NotRegular,           // a FIFO, socket or device (at listing time)
  Symlink,              // not followed (at listing time)
  UnreadableDirectory,  // cannot be opened or listed (at listing time)
  TooLarge,             // larger than kMaxSourceBytes
  Unreadable,           // cannot be opened or read
};
inline constexpr std::size_t kSkipReasons = 6;
// "not_regular", "symlink", ...: the JSON keys.
const char* to_string(Skip s);

// Counts of skipped entries by reason, and the first one of each (in path order) with why.
struct SkipTally {
  std::array<std::uint64_t, kSkipReasons> count{};
  std::array<std::string, kSkipReasons> first;      // path relative to the root
  std::array<std::string, kSkipReasons> first_why;  // e.g. "Permission denied"
  void add(Skip s, const std::string& path, const std::string& why);
  void merge(const SkipTally& o);
  std::uint64_t total() const;
  bool operator==(const SkipTally& o) const { return count == o.count; }
};

struct SourceFile {
  std::string path;       // relative to the root
  std::uint64_t bytes = 0;
  std::uint64_t tokens = 0;
  std::vector<std::pair<std::string, bool>> includes;  // (name, quoted)
  std::vector<std::uint32_t> edges;                    // resolved includes
  std::uint32_t reach = 0;                             // files reached transitively
  Skip skipped = Skip::None;  // TooLarge or Unreadable when the job did not read it
  std::string skip_why;
};

// One worker's work space for count_reach (a vitte::per_worker<ReachScratch>): its
// epoch-stamped visited array, sized to the list on first use, and its DFS stack.
struct ReachScratch {
  std::vector<std::uint32_t> stamp, stack;
  std::uint32_t epoch = 0;
  std::uint32_t count(const std::vector<SourceFile>& files, std::uint32_t root);
};

// The number of files reachable from `root` over the `edges` (excluding root itself).
// `seen` is a per-thread visited array stamped with `epoch` (a new value per search, so it
// is never cleared); `stack` is per-thread scratch. Used by the job and the pipeline alike.
std::uint32_t count_reach(const std::vector<SourceFile>& files, std::uint32_t root, std::uint32_t epoch,
                          std::vector<std::uint32_t>& seen, std::vector<std::uint32_t>& stack);

struct JobResult {
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t tokens = 0;
  std::uint64_t include_directives = 0;
  std::uint64_t resolved = 0;
  std::size_t files_read = 0;
  SkipTally skipped;            // files of the list the job could not read
  std::uint64_t reach_sum = 0;  // sum over files of their transitive include counts
  std::uint32_t reach_max = 0;
  std::string reach_max_file;
  double seconds = 0;           // the whole job (phases 1-3, or the pipeline's run)
  // The pass pipeline only (zero for run_job_phases):
  std::size_t tasks = 0;              // tasks that ran: read, lex, collect, link, analyse
  std::size_t analyse_edges = 0;      // include edges kept between analyse tasks
  std::uint64_t cycle_edges_dropped = 0;  // include edges dropped to break cycles
};

// Lists the regular files under `root` (sorted, so every run sees the same order); what is
// not listed is counted in `skipped`. Throws vitte::UsageError naming the directory when
// `root` itself cannot be read or holds no regular file.
std::vector<SourceFile> list_tree(const std::string& root, SkipTally& skipped);

// The first file whose input (read status, size, tokens, include directives) differs
// between two processed copies of the same list, with what differs; "" when none does.
std::string first_input_change(const std::vector<SourceFile>& a, const std::vector<SourceFile>& b);

// The job before the pass pipeline (#7): three parallel_for phases on `sched` (read and
// tokenize; resolve; transitive counts). `files` is reset first, so the same list can be
// processed again with another scheduler. Kept as the reference for the tests.
JobResult run_job_phases(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files);

// The totals of a processed list (everything but the timings and the pipeline's counts),
// as a deterministic parallel_reduce on `sched`: the same split tree and combine order on
// any number of workers, so the totals, the first skipped file of each reason and the
// file with the largest reach (the first in list order on a tie) never depend on the
// schedule.
JobResult summarize(Scheduler& sched, const std::vector<SourceFile>& files);

// Clears what a run computed in `f` (keeps its path).
void reset_file(SourceFile& f);

// Reads `path` into `text` if it is a regular file of at most kMaxSourceBytes; otherwise
// marks `f` skipped (reason and why) and leaves `text` empty.
void read_source(const std::string& path, SourceFile& f, std::string& text);

// Tokenizes one buffer: sets out.tokens and appends the offset of every '#' that starts
// a line (outside comments and strings) to `directives`.
void lex_source(const std::string& text, SourceFile& out, std::vector<std::uint32_t>& directives);
// Appends to out.includes the #include of each directive `lex_source` found.
void collect_includes(const std::string& text, const std::vector<std::uint32_t>& directives, SourceFile& out);
// lex_source then collect_includes; exposed for tests.
void scan_source(const std::string& text, SourceFile& out);

// Include resolution over a file list (paths only, so it is built before any file is read).
class IncludeIndex {
 public:
  explicit IncludeIndex(const std::vector<SourceFile>& files);
  // Sets f.edges (sorted, unique) from f.includes.
  void resolve(SourceFile& f) const;

 private:
  std::unordered_map<std::string, std::uint32_t> by_suffix_;
  std::unordered_map<std::string, std::uint32_t> by_path_;
};

}  // namespace vitte::cli

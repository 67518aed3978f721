// The main job's workload: a compile-like pass over a source tree.
//
// Phase 1 (one task per file): read the file, tokenize it as C/C++ (identifiers, numbers,
// strings, punctuators; comments skipped), collect its #include directives.
// Phase 2: resolve each include to a file of the tree (below), building the include graph.
// Phase 3 (one task per file): count the files each file reaches transitively.
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
  double seconds = 0;           // phases 1-3
};

// Lists the regular files under `root` (sorted, so every run sees the same order); what is
// not listed is counted in `skipped`. Throws vitte::UsageError naming the directory when
// `root` itself cannot be read or holds no regular file.
std::vector<SourceFile> list_tree(const std::string& root, SkipTally& skipped);

// The first file whose input (read status, size, tokens, include directives) differs
// between two processed copies of the same list, with what differs; "" when none does.
std::string first_input_change(const std::vector<SourceFile>& a, const std::vector<SourceFile>& b);

// Runs the three phases on `sched`; `files` is reset first, so the same list can be
// processed again with another scheduler.
JobResult run_job(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files);

// Tokenizes one buffer; exposed for tests.
void scan_source(const std::string& text, SourceFile& out);

}  // namespace vitte::cli

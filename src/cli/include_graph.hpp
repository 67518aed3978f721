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
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitte/scheduler.hpp"

namespace vitte::cli {

struct SourceFile {
  std::string path;       // relative to the root
  std::uint64_t bytes = 0;
  std::uint64_t tokens = 0;
  std::vector<std::pair<std::string, bool>> includes;  // (name, quoted)
  std::vector<std::uint32_t> edges;                    // resolved includes
  std::uint32_t reach = 0;                             // files reached transitively
  bool read_ok = true;
};

struct JobResult {
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t tokens = 0;
  std::uint64_t include_directives = 0;
  std::uint64_t resolved = 0;
  std::uint64_t unreadable = 0;
  std::uint64_t reach_sum = 0;  // sum over files of their transitive include counts
  std::uint32_t reach_max = 0;
  std::string reach_max_file;
  double seconds = 0;           // phases 1-3
};

// Lists the regular files under `root` (sorted, so every run sees the same order).
// Throws vitte::UsageError naming the directory when it cannot be read.
std::vector<SourceFile> list_tree(const std::string& root);

// Runs the three phases on `sched`; `files` is reset first, so the same list can be
// processed again with another scheduler.
JobResult run_job(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files);

// Tokenizes one buffer; exposed for tests.
void scan_source(const std::string& text, SourceFile& out);

}  // namespace vitte::cli

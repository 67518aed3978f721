#include "cli/include_graph.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <unordered_map>

#include "vitte/error.hpp"
#include "vitte/parallel_for.hpp"
#include "vitte/parallel_reduce.hpp"
#include "vitte/per_worker.hpp"

namespace vitte::cli {

namespace fs = std::filesystem;

const char* to_string(Skip s) {
  switch (s) {
    case Skip::None: return "none";
    case Skip::NotRegular: return "not_regular";
    case Skip::Symlink: return "symlink";
    case Skip::UnreadableDirectory: return "unreadable_directory";
    case Skip::TooLarge: return "too_large";
    case Skip::Unreadable: return "unreadable";
  }
  return "?";
}

void SkipTally::add(Skip s, const std::string& path, const std::string& why) {
  const auto i = static_cast<std::size_t>(s);
  // The first in path order, whatever order the entries come in.
  if (count[i]++ == 0 || path < first[i]) {
    first[i] = path;
    first_why[i] = why;
  }
}

void SkipTally::merge(const SkipTally& o) {
  for (std::size_t i = 0; i < kSkipReasons; ++i) {
    if (o.count[i] == 0) continue;
    if (count[i] == 0 || o.first[i] < first[i]) {
      first[i] = o.first[i];
      first_why[i] = o.first_why[i];
    }
    count[i] += o.count[i];
  }
}

std::uint64_t SkipTally::total() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : count) n += c;
  return n;
}

namespace {

const char* kind_of(fs::file_type t) {
  switch (t) {
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::block: return "a block device";
    case fs::file_type::character: return "a character device";
    default: return "not a regular file";
  }
}

}  // namespace

std::vector<SourceFile> list_tree(const std::string& root, SkipTally& skipped) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw UsageError("--dir '" + root + "' is not a readable directory");
  std::vector<SourceFile> files;
  // Depth-first by hand rather than recursive_directory_iterator, so that a directory
  // that cannot be opened or listed is counted and the walk goes on beside it.
  std::vector<std::string> dirs{""};  // relative to the root; "" is the root
  while (!dirs.empty()) {
    const std::string rel = std::move(dirs.back());
    dirs.pop_back();
    fs::directory_iterator it(rel.empty() ? fs::path(root) : fs::path(root) / rel, ec), end;
    if (ec) {
      if (rel.empty()) throw UsageError("--dir '" + root + "' cannot be read: " + ec.message());
      skipped.add(Skip::UnreadableDirectory, rel, ec.message());
      ec.clear();
      continue;
    }
    for (; it != end; it.increment(ec)) {
      const std::string name = it->path().filename().generic_string();
      std::string path = rel.empty() ? name : rel + "/" + name;
      const fs::file_status st = it->symlink_status(ec);
      if (ec) {  // e.g. gone since the directory was read
        skipped.add(Skip::Unreadable, path, ec.message());
        ec.clear();
        continue;
      }
      if (st.type() == fs::file_type::directory) {
        dirs.push_back(std::move(path));
      } else if (st.type() == fs::file_type::regular) {
        SourceFile f;
        f.path = std::move(path);
        files.push_back(std::move(f));
      } else if (st.type() == fs::file_type::symlink) {
        skipped.add(Skip::Symlink, path, "a symbolic link (not followed)");
      } else {
        skipped.add(Skip::NotRegular, path, kind_of(st.type()));
      }
    }
    if (ec) {  // the listing stopped part-way
      skipped.add(Skip::UnreadableDirectory, rel.empty() ? "." : rel, "listing stopped: " + ec.message());
      ec.clear();
    }
  }
  std::sort(files.begin(), files.end(), [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  if (files.empty()) throw UsageError("--dir '" + root + "' holds no regular files");
  return files;
}

std::string first_input_change(const std::vector<SourceFile>& a, const std::vector<SourceFile>& b) {
  if (a.size() != b.size()) return "the file lists differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    const SourceFile& x = a[i];
    const SourceFile& y = b[i];
    std::string what;
    if (x.skipped != y.skipped)
      what = std::string(x.skipped == Skip::None ? "read" : to_string(x.skipped)) + " then " +
             (y.skipped == Skip::None ? "read" : to_string(y.skipped));
    else if (x.bytes != y.bytes)
      what = std::to_string(x.bytes) + " bytes then " + std::to_string(y.bytes);
    else if (x.tokens != y.tokens)
      what = std::to_string(x.tokens) + " tokens then " + std::to_string(y.tokens);
    else if (x.includes != y.includes)
      what = "its #include directives changed";
    if (!what.empty()) return x.path + " (" + what + ")";
  }
  return "";
}

// Never reads more than kMaxSourceBytes + 1 bytes, so a huge (or sparse, or endless) file
// costs no memory.
void read_source(const std::string& path, SourceFile& f, std::string& text) {
  auto skip = [&f, &text](Skip why, std::string detail) {
    f.skipped = why;
    f.skip_why = std::move(detail);
    text.clear();
  };
  auto error = [] { return std::error_code(errno, std::generic_category()).message(); };
  // O_NONBLOCK: never wait on a file that became a FIFO since the listing, nor on a
  // kernel file that blocks until data arrives.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return skip(Skip::Unreadable, error());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return skip(Skip::Unreadable, error());
  if (!S_ISREG(st.st_mode)) return skip(Skip::Unreadable, "no longer a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxSourceBytes)
    return skip(Skip::TooLarge, std::to_string(st.st_size) + " bytes");
  // st_size is a hint (kernel files say 0): read until end of file or past the bound.
  std::size_t len = 0;
  text.resize(st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1 : std::size_t{4096});
  for (;;) {
    if (len == text.size())
      text.resize(std::min<std::size_t>(text.size() * 2, kMaxSourceBytes + 1));
    const ssize_t n = ::read(fd, text.data() + len, text.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return skip(Skip::Unreadable, error());
    if (n == 0) break;
    len += static_cast<std::size_t>(n);
    if (len > kMaxSourceBytes) return skip(Skip::TooLarge, "more than " + std::to_string(kMaxSourceBytes) + " bytes");
  }
  text.resize(len);
}

void reset_file(SourceFile& f) {
  f.bytes = f.tokens = f.reach = 0;
  f.includes.clear();
  f.edges.clear();
  f.skipped = Skip::None;
  f.skip_why.clear();
}

namespace {

bool ident_start(unsigned char c) { return std::isalpha(c) || c == '_'; }
bool ident_char(unsigned char c) { return std::isalnum(c) || c == '_'; }

// Parses `#  include <x>` / `# include "x"` starting at a '#' at line start.
void parse_directive(const std::string& s, std::size_t i, SourceFile& out) {
  ++i;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  static const std::string kw = "include";
  if (s.compare(i, kw.size(), kw) != 0) return;
  i += kw.size();
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  if (i >= s.size()) return;
  const char open = s[i];
  const char close = open == '<' ? '>' : open == '"' ? '"' : 0;
  if (close == 0) return;  // computed include
  const std::size_t e = s.find(close, i + 1);
  const std::size_t nl = s.find('\n', i + 1);
  if (e == std::string::npos || (nl != std::string::npos && e > nl)) return;
  out.includes.emplace_back(s.substr(i + 1, e - i - 1), open == '"');
}

}  // namespace

void lex_source(const std::string& s, SourceFile& out, std::vector<std::uint32_t>& directives) {
  std::uint64_t tokens = 0;
  bool line_start = true;
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      line_start = true;
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      const std::size_t e = s.find("*/", i + 2);
      i = e == std::string::npos ? n : e + 2;
    } else if (c == '#' && line_start) {
      directives.push_back(static_cast<std::uint32_t>(i));  // kMaxSourceBytes < 2^32
      ++tokens;
      ++i;
      line_start = false;
    } else if (ident_start(c)) {
      while (i < n && ident_char(static_cast<unsigned char>(s[i]))) ++i;
      ++tokens;
      line_start = false;
    } else if (std::isdigit(c)) {
      while (i < n && (ident_char(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      ++tokens;
      line_start = false;
    } else if (c == '"' || c == '\'') {
      ++i;
      while (i < n && s[i] != static_cast<char>(c) && s[i] != '\n') i += (s[i] == '\\') ? 2 : 1;
      ++i;
      ++tokens;
      line_start = false;
    } else {
      ++i;
      ++tokens;
      line_start = false;
    }
  }
  out.tokens = tokens;
}

void collect_includes(const std::string& text, const std::vector<std::uint32_t>& directives, SourceFile& out) {
  for (std::uint32_t at : directives) parse_directive(text, at, out);
}

void scan_source(const std::string& text, SourceFile& out) {
  std::vector<std::uint32_t> directives;
  lex_source(text, out, directives);
  collect_includes(text, directives, out);
}

IncludeIndex::IncludeIndex(const std::vector<SourceFile>& files) {
  by_suffix_.reserve(files.size() * 4);
  for (std::uint32_t i = 0; i < files.size(); ++i) {
    const std::string& p = files[i].path;
    for (std::size_t pos = 0;;) {
      auto [it, fresh] = by_suffix_.emplace(p.substr(pos), i);
      if (!fresh && files[it->second].path.size() > p.size()) it->second = i;
      const std::size_t slash = p.find('/', pos);
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
  }
  by_path_.reserve(files.size());
  for (std::uint32_t i = 0; i < files.size(); ++i) by_path_.emplace(files[i].path, i);
}

void IncludeIndex::resolve(SourceFile& f) const {
  const std::string dir = f.path.rfind('/') == std::string::npos ? "" : f.path.substr(0, f.path.rfind('/') + 1);
  for (const auto& [name, quoted] : f.includes) {
    if (quoted) {
      auto it = by_path_.find(fs::path(dir + name).lexically_normal().generic_string());
      if (it != by_path_.end()) {
        f.edges.push_back(it->second);
        continue;
      }
    }
    auto it = by_suffix_.find(fs::path(name).lexically_normal().generic_string());
    if (it != by_suffix_.end()) f.edges.push_back(it->second);
  }
  std::sort(f.edges.begin(), f.edges.end());
  f.edges.erase(std::unique(f.edges.begin(), f.edges.end()), f.edges.end());
}

JobResult run_job_phases(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files) {
  for (SourceFile& f : files) reset_file(f);
  const auto t0 = std::chrono::steady_clock::now();

  // Phase 1: read and tokenize, one task per file.
  parallel_for(sched, 0, files.size(), 1, [&](std::size_t i) {
    SourceFile& f = files[i];
    std::string text;
    read_source(root + "/" + f.path, f, text);
    if (f.skipped != Skip::None) return;
    f.bytes = text.size();
    scan_source(text, f);
  });

  // Phase 2: resolve includes by path suffix (serial index build, parallel lookups).
  const IncludeIndex index(files);
  parallel_for(sched, 0, files.size(), 16, [&](std::size_t i) { index.resolve(files[i]); });

  // Phase 3: transitive include count per file (a DFS per file, one task each; each
  // worker keeps an epoch-stamped visited array, so no clearing between searches).
  per_worker<ReachScratch> scratch(sched);
  parallel_for(sched, 0, files.size(), 4, [&](std::size_t root_file) {
    files[root_file].reach = scratch.local().count(files, static_cast<std::uint32_t>(root_file));
  });

  JobResult r = summarize(sched, files);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

namespace {

void fold_file(JobResult& r, const SourceFile& f) {
  ++r.files;
  r.bytes += f.bytes;
  r.tokens += f.tokens;
  r.include_directives += f.includes.size();
  r.resolved += f.edges.size();
  if (f.skipped != Skip::None)
    r.skipped.add(f.skipped, f.path, f.skip_why);
  else
    ++r.files_read;
  r.reach_sum += f.reach;
  if (f.reach > r.reach_max) {
    r.reach_max = f.reach;
    r.reach_max_file = f.path;
  }
}

// `a` holds files before `b`'s: on a tie the earlier file keeps the largest reach.
JobResult combine(JobResult a, const JobResult& b) {
  a.files += b.files;
  a.bytes += b.bytes;
  a.tokens += b.tokens;
  a.include_directives += b.include_directives;
  a.resolved += b.resolved;
  a.files_read += b.files_read;
  a.skipped.merge(b.skipped);
  a.reach_sum += b.reach_sum;
  if (b.reach_max > a.reach_max) {
    a.reach_max = b.reach_max;
    a.reach_max_file = b.reach_max_file;
  }
  return a;
}

}  // namespace

JobResult summarize(Scheduler& sched, const std::vector<SourceFile>& files) {
  return parallel_reduce(
      sched, 0, files.size(), 0, JobResult{},
      [&](std::size_t b, std::size_t e, JobResult acc) {
        for (std::size_t i = b; i < e; ++i) fold_file(acc, files[i]);
        return acc;
      },
      combine);
}

std::uint32_t ReachScratch::count(const std::vector<SourceFile>& files, std::uint32_t root) {
  if (stamp.size() != files.size()) stamp.assign(files.size(), 0);
  return count_reach(files, root, ++epoch, stamp, stack);
}

std::uint32_t count_reach(const std::vector<SourceFile>& files, std::uint32_t root, std::uint32_t epoch,
                          std::vector<std::uint32_t>& seen, std::vector<std::uint32_t>& stack) {
  stack.assign(1, root);
  seen[root] = epoch;
  std::uint32_t count = 0;
  while (!stack.empty()) {
    const std::uint32_t v = stack.back();
    stack.pop_back();
    for (std::uint32_t u : files[v].edges)
      if (seen[u] != epoch) {
        seen[u] = epoch;
        ++count;
        stack.push_back(u);
      }
  }
  return count;
}

}  // namespace vitte::cli

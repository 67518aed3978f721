#include "cli/include_graph.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "vitte/error.hpp"
#include "vitte/parallel_for.hpp"

namespace vitte::cli {

namespace fs = std::filesystem;

std::vector<SourceFile> list_tree(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw UsageError("--dir '" + root + "' is not a readable directory");
  std::vector<SourceFile> files;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) throw UsageError("--dir '" + root + "' cannot be read: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    SourceFile f;
    f.path = fs::relative(it->path(), root, ec).generic_string();
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(), [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  if (files.empty()) throw UsageError("--dir '" + root + "' holds no regular files");
  return files;
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

void scan_source(const std::string& s, SourceFile& out) {
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
      parse_directive(s, i, out);
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

JobResult run_job(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files) {
  for (SourceFile& f : files) {
    f.bytes = f.tokens = f.reach = 0;
    f.includes.clear();
    f.edges.clear();
    f.read_ok = true;
  }
  const auto t0 = std::chrono::steady_clock::now();

  // Phase 1: read and tokenize, one task per file.
  parallel_for(sched, 0, files.size(), 1, [&](std::size_t i) {
    SourceFile& f = files[i];
    std::ifstream in(root + "/" + f.path, std::ios::binary);
    if (!in) {
      f.read_ok = false;
      return;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    f.bytes = text.size();
    scan_source(text, f);
  });

  // Phase 2: resolve includes by path suffix (serial index build, parallel lookups).
  std::unordered_map<std::string, std::uint32_t> by_suffix;
  by_suffix.reserve(files.size() * 4);
  for (std::uint32_t i = 0; i < files.size(); ++i) {
    const std::string& p = files[i].path;
    for (std::size_t pos = 0;;) {
      auto [it, fresh] = by_suffix.emplace(p.substr(pos), i);
      if (!fresh && files[it->second].path.size() > p.size()) it->second = i;
      const std::size_t slash = p.find('/', pos);
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
  }
  std::unordered_map<std::string, std::uint32_t> by_path;
  by_path.reserve(files.size());
  for (std::uint32_t i = 0; i < files.size(); ++i) by_path.emplace(files[i].path, i);
  parallel_for(sched, 0, files.size(), 16, [&](std::size_t i) {
    SourceFile& f = files[i];
    const std::string dir = f.path.rfind('/') == std::string::npos ? "" : f.path.substr(0, f.path.rfind('/') + 1);
    for (const auto& [name, quoted] : f.includes) {
      if (quoted) {
        auto it = by_path.find(fs::path(dir + name).lexically_normal().generic_string());
        if (it != by_path.end()) {
          f.edges.push_back(it->second);
          continue;
        }
      }
      auto it = by_suffix.find(fs::path(name).lexically_normal().generic_string());
      if (it != by_suffix.end()) f.edges.push_back(it->second);
    }
    std::sort(f.edges.begin(), f.edges.end());
    f.edges.erase(std::unique(f.edges.begin(), f.edges.end()), f.edges.end());
  });

  // Phase 3: transitive include count per file (a DFS per file, one task each; each
  // worker keeps an epoch-stamped visited array, so no clearing between searches).
  const std::size_t nw = sched.num_workers();
  std::vector<std::vector<std::uint32_t>> stamp(nw, std::vector<std::uint32_t>(files.size(), 0));
  std::vector<std::vector<std::uint32_t>> stacks(nw);
  std::vector<std::uint32_t> epoch(nw, 0);
  parallel_for(sched, 0, files.size(), 4, [&](std::size_t root_file) {
    const std::size_t w = static_cast<std::size_t>(Scheduler::current_worker());
    const std::uint32_t e = ++epoch[w];
    std::vector<std::uint32_t>& seen = stamp[w];
    std::vector<std::uint32_t>& stack = stacks[w];
    stack.assign(1, static_cast<std::uint32_t>(root_file));
    seen[root_file] = e;
    std::uint32_t count = 0;
    while (!stack.empty()) {
      const std::uint32_t v = stack.back();
      stack.pop_back();
      for (std::uint32_t u : files[v].edges)
        if (seen[u] != e) {
          seen[u] = e;
          ++count;
          stack.push_back(u);
        }
    }
    files[root_file].reach = count;
  });

  JobResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.files = files.size();
  for (const SourceFile& f : files) {
    r.bytes += f.bytes;
    r.tokens += f.tokens;
    r.include_directives += f.includes.size();
    r.resolved += f.edges.size();
    r.unreadable += f.read_ok ? 0 : 1;
    r.reach_sum += f.reach;
    if (f.reach > r.reach_max) {
      r.reach_max = f.reach;
      r.reach_max_file = f.path;
    }
  }
  return r;
}

}  // namespace vitte::cli

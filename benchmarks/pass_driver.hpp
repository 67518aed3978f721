// A compile-pass driver (issue #21), written once per runtime in its own idiom, over the
// same work: the files of /usr/include/c++/12 (783 headers) or of VITTE_BENCH_PASS_DIR.
//
//   pass 1   per file, in parallel: read it by path (timed; the page cache is warm after the
//            first run), lex it (token hashes, #includes, "functions": outermost brace blocks
//            opened after `)`, const, noexcept, override, final or a _GLIBCXX_* macro),
//            diagnose lines over 100 columns and tabs, resolve includes by path suffix;
//   DAG      analyse(f) after analyse(g) for each g that f includes; cycles broken as
//            src/cli/pipeline.cpp does (a DFS in path order drops edges to files on its stack);
//   analyse  a nested parallel loop over the file's functions (a hash of their tokens,
//            kRounds times; "function longer than 400 tokens"), then a digest of those hashes
//            and of its includes' digests (a stale read, an edge not respected, shows);
//   totals   tokens, functions, digests, a double "weighted complexity": a deterministic
//            reduction over the files, grain kTotalsGrain;
//   output   every worker's diagnostics, combined, sorted by (file, line, message), hashed.
//
//   vitte:  parallel_for, per_worker<vector<Diag>>, vitte::Graph, nested parallel_for,
//           parallel_reduce. No with_tbb(), no slots indexed by current_worker().
//   oneTBB: parallel_for, enumerable_thread_specific<vector<Diag>>, flow::graph of
//           continue_nodes, nested parallel_for, parallel_deterministic_reduce.
//
// Checked: the result (diagnostics hash, totals, the double bit for bit) equals a serial
// run's, on every runtime, worker count and run. Hard error: analyse of `error_file` throws
// inside its function loop; the run must report it (vitte: GraphRun::wait() rethrows it and
// skips the tasks not started; oneTBB: the graph's context is cancelled, wait_for_all()
// rethrows) and must not have analysed any file that includes it, directly or not. Checked
// once per benchmark row, untimed; the timed runs inject no error.
#pragma once

#include <benchmark/benchmark.h>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/flow_graph.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "algorithm_kernels.hpp"  // serial_tree_fold, process_cpu_s
#include "runtimes.hpp"

namespace bench::pass {

inline constexpr int kRounds = 32;               // hash rounds per function token
inline constexpr std::size_t kFnGrain = 4;       // functions per leaf of the nested loop
inline constexpr std::size_t kTotalsGrain = 8;   // files per leaf of the totals
inline constexpr std::uint32_t kLongFunction = 400, kLongLine = 100;

// Enumerated in the order their texts sort, so sorting by kind sorts by message.
enum class Msg : std::uint8_t { LongFunction, LongLine, Tab };
inline const char* const kText[] = {"function longer than 400 tokens", "line longer than 100 columns",
                                     "tab character"};
struct Diag {
  std::uint32_t file, line;
  Msg msg;
  std::uint64_t key() const { return std::uint64_t{file} << 34 | std::uint64_t{line} << 2 | std::uint64_t(msg); }
};
struct Func {
  std::uint32_t begin, end, line;  // token range [begin, end), line of its `{`
};
struct File {
  std::vector<std::uint32_t> tok;
  std::vector<Func> funcs;
  std::vector<std::pair<std::string, bool>> includes;  // name, quoted
  std::vector<std::uint32_t> deps;   // resolved includes, sorted, unique
  std::vector<std::uint32_t> preds;  // deps kept after breaking cycles
  std::uint64_t digest = 0;
  double complexity = 0;
  bool analysed = false;  // written by its analyse task only; read after the graph's wait
};

// The tree: sorted relative paths and the include lookup, made once (not timed).
struct Corpus {
  std::string root;
  std::vector<std::string> paths;
  std::unordered_map<std::string, std::uint32_t> by_path, by_suffix;
};

inline std::uint32_t fnv(const char* p, std::size_t n) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 16777619u;
  return h;
}
inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h = (h ^ v) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

struct HardError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
inline void hard_error(const Corpus& c, std::uint32_t id) { throw HardError("hard error in " + c.paths[id]); }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string s(static_cast<std::size_t>(std::max<std::streamoff>(0, in.tellg())), '\0');
  if (!in || !in.seekg(0).read(s.data(), static_cast<std::streamsize>(s.size())))
    throw std::runtime_error("pass_driver: cannot read " + path);
  return s;
}

// ASCII classes inline: <cctype>'s calls (locale lookups) were half of the lexer's time.
inline bool alpha(unsigned char c) { return static_cast<unsigned>((c | 32) - 'a') < 26u || c == '_'; }
inline bool digit(unsigned char c) { return static_cast<unsigned>(c - '0') < 10u; }
inline bool ident(unsigned char c) { return alpha(c) || digit(c); }

// Pass 1 for one file: read, diagnose lines, lex, resolve includes. Diagnostics go to `out`.
inline void lex_file(const Corpus& c, std::uint32_t id, File& f, std::vector<Diag>& out) {
  const std::string s = read_file(c.root + "/" + c.paths[id]);
  const std::size_t n = s.size();
  std::uint32_t line = 1;
  for (std::size_t b = 0; b < n; ++line) {  // line diagnostics
    const char* nl = static_cast<const char*>(std::memchr(s.data() + b, '\n', n - b));
    const std::size_t e = nl != nullptr ? static_cast<std::size_t>(nl - s.data()) : n;
    if (e - b > kLongLine) out.push_back({id, line, Msg::LongLine});
    if (std::memchr(s.data() + b, '\t', e - b) != nullptr) out.push_back({id, line, Msg::Tab});
    b = e + 1;
  }
  std::uint32_t fn_line = 0, fn_begin = 0;
  int depth = 0, fn_depth = -1;
  bool line_start = true, prev_opens_fn = false, in_namespace_head = false;
  line = 1;
  for (std::size_t i = 0; i < n;) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch == ' ' || (ch >= '\t' && ch <= '\r')) {
      if (ch == '\n') ++line, line_start = true;
      ++i;
      continue;
    }
    if (ch == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') ++i;
      continue;
    }
    if (ch == '/' && i + 1 < n && s[i + 1] == '*') {
      const std::size_t e = std::min(n, s.find("*/", i + 2));
      line += static_cast<std::uint32_t>(std::count(s.begin() + static_cast<std::ptrdiff_t>(i),
                                                    s.begin() + static_cast<std::ptrdiff_t>(e), '\n'));
      i = std::min(n, e + 2);
      continue;
    }
    const std::size_t start = i;
    if (ch == '#' && line_start) {  // a directive is one token, continuation lines included
      while (i < n && s[i] != '\n') i += (s[i] == '\\' && i + 1 < n) ? (s[i + 1] == '\n' ? (++line, 2) : 2) : 1;
      std::size_t k = start + 1;
      while (k < i && (s[k] == ' ' || s[k] == '\t')) ++k;
      if (s.compare(k, 7, "include") == 0) {
        k += 7;
        while (k < i && (s[k] == ' ' || s[k] == '\t')) ++k;
        const char close = k < i && s[k] == '<' ? '>' : k < i && s[k] == '"' ? '"' : 0;
        const std::size_t e = close != 0 ? s.find(close, k + 1) : std::string::npos;
        if (e != std::string::npos && e < i) f.includes.emplace_back(s.substr(k + 1, e - k - 1), close == '"');
      }
    } else if (alpha(ch)) {
      while (i < n && ident(static_cast<unsigned char>(s[i]))) ++i;
    } else if (digit(ch)) {
      while (i < n && (ident(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    } else if (ch == '"' || ch == '\'') {
      ++i;
      while (i < n && s[i] != static_cast<char>(ch) && s[i] != '\n') i += (s[i] == '\\') ? 2 : 1;
      i = std::min(n, i + 1);
    } else {
      ++i;
    }
    line_start = false;
    const std::uint32_t h = fnv(s.data() + start, i - start);
    f.tok.push_back(h);
    if (ch == '{') {
      if (fn_depth < 0 && prev_opens_fn && !in_namespace_head) {
        fn_depth = depth;
        fn_begin = static_cast<std::uint32_t>(f.tok.size() - 1);
        fn_line = line;
      }
      ++depth;
    } else if (ch == '}' && depth > 0) {
      if (--depth == fn_depth) {
        f.funcs.push_back({fn_begin, static_cast<std::uint32_t>(f.tok.size()), fn_line});
        fn_depth = -1;
      }
    }
    // A `{` after these opens a function body (libstdc++ ends many signatures with a
    // _GLIBCXX_* macro), unless a namespace's: `namespace std _GLIBCXX_VISIBILITY(default) {`.
    const std::string_view tok(s.data() + start, i - start);
    in_namespace_head = tok == "namespace" || (in_namespace_head && tok != "{" && tok != "}" && tok != ";");
    prev_opens_fn = tok == ")" || (alpha(ch) && (tok == "const" || tok == "noexcept" || tok == "override" ||
                                                 tok == "final" || tok.starts_with("_GLIBCXX")));
  }
  // Includes: "x" relative to the file's directory first, then by path suffix in the tree.
  const std::string& p = c.paths[id];
  const std::string dir = p.substr(0, p.rfind('/') + 1);  // npos + 1 == 0: the root
  for (const auto& [name, quoted] : f.includes) {
    const auto it = quoted ? c.by_path.find(dir + name) : c.by_path.end();
    if (it != c.by_path.end())
      f.deps.push_back(it->second);
    else if (const auto sit = c.by_suffix.find(name); sit != c.by_suffix.end())
      f.deps.push_back(sit->second);
  }
  std::sort(f.deps.begin(), f.deps.end());
  f.deps.erase(std::unique(f.deps.begin(), f.deps.end()), f.deps.end());
}

// Fills every file's preds (its deps minus those that close a cycle) and returns the files
// in DFS post-order, in which every kept edge runs from an earlier file to a later one.
inline std::vector<std::uint32_t> break_cycles(std::vector<File>& files) {
  const auto n = static_cast<std::uint32_t>(files.size());
  enum : std::uint8_t { kWhite, kOnStack, kDone };
  std::vector<std::uint8_t> color(n, kWhite);
  std::vector<std::uint32_t> order;
  order.reserve(n);
  std::vector<std::pair<std::uint32_t, std::size_t>> stack;
  for (std::uint32_t start = 0; start < n; ++start) {
    if (color[start] != kWhite) continue;
    color[start] = kOnStack;
    stack.assign(1, {start, 0});
    while (!stack.empty()) {
      auto& [v, next] = stack.back();
      if (next < files[v].deps.size()) {
        const std::uint32_t u = files[v].deps[next++];
        if (color[u] == kWhite) color[u] = kOnStack, stack.emplace_back(u, 0);  // v and next die here
        continue;
      }
      const std::uint32_t f = v;
      stack.pop_back();
      for (std::uint32_t u : files[f].deps)
        if (color[u] != kOnStack) files[f].preds.push_back(u);
      color[f] = kDone;
      order.push_back(f);
    }
  }
  return order;
}

// One function's work; true when it is long enough for a diagnostic. Throws the hard
// error in the error file's first function.
inline bool analyse_fn(const File& f, std::uint32_t id, std::size_t k, std::uint64_t* fh, std::int64_t error_file,
                       const Corpus& c) {
  if (static_cast<std::int64_t>(id) == error_file && k == 0) hard_error(c, id);
  const Func& fn = f.funcs[k];
  std::uint64_t h = k;
  for (int r = 0; r < kRounds; ++r)
    for (std::uint32_t t = fn.begin; t < fn.end; ++t) h = mix(h, f.tok[t] + static_cast<std::uint32_t>(r));
  fh[k] = h;
  return fn.end - fn.begin > kLongFunction;
}

// After the loop: the file's hash, complexity and digest (its includes' digests folded in).
inline void finish_file(std::vector<File>& files, std::uint32_t id, const std::vector<std::uint64_t>& fh,
                        std::int64_t error_file, const Corpus& c) {
  File& f = files[id];
  if (f.funcs.empty() && static_cast<std::int64_t>(id) == error_file) hard_error(c, id);
  std::uint64_t h = id;
  double cx = 0;
  for (std::size_t k = 0; k < fh.size(); ++k) {
    h = mix(h, fh[k]);
    cx += static_cast<double>(f.funcs[k].end - f.funcs[k].begin) * (1.0 + static_cast<double>(fh[k] >> 11) * 0x1p-53);
  }
  for (std::uint32_t u : f.preds) h = mix(h, files[u].digest);
  f.complexity = cx;
  f.digest = h;
  f.analysed = true;
}

struct Totals {
  std::uint64_t tokens = 0, functions = 0, digest = 0;
  double complexity = 0;
};
inline Totals totals_leaf(const std::vector<File>& files, std::size_t b, std::size_t e, Totals acc) {
  for (std::size_t i = b; i < e; ++i) {
    acc.tokens += files[i].tok.size();
    acc.functions += files[i].funcs.size();
    acc.digest = mix(acc.digest, files[i].digest);
    acc.complexity += files[i].complexity;
  }
  return acc;
}
inline Totals totals_join(Totals a, const Totals& b) {
  return {a.tokens + b.tokens, a.functions + b.functions, a.digest * 31 + b.digest, a.complexity + b.complexity};
}

struct Result {
  std::uint64_t diag_hash = 0, diags = 0;
  Totals t;
  std::uint32_t analysed = 0;
  std::vector<std::uint8_t> done;  // per file: analysed (filled only by a run that failed)
  std::string error;               // the hard error's message, when one was raised
  bool same(const Result& o) const {  // the double bit for bit
    return diag_hash == o.diag_hash && diags == o.diags && t.tokens == o.t.tokens && t.functions == o.t.functions &&
           t.digest == o.t.digest &&
           std::bit_cast<std::uint64_t>(t.complexity) == std::bit_cast<std::uint64_t>(o.t.complexity);
  }
};

// The output: the diagnostics in (file, line, message) order, hashed.
inline Result finish(const Corpus& c, const std::vector<File>& files, std::vector<Diag>& all, const Totals& t) {
  std::sort(all.begin(), all.end(), [](const Diag& a, const Diag& b) { return a.key() < b.key(); });
  Result r;
  r.diags = all.size();
  r.t = t;
  for (const Diag& d : all) {
    const std::string& p = c.paths[d.file];
    const char* m = kText[static_cast<int>(d.msg)];
    r.diag_hash = mix(mix(mix(r.diag_hash, fnv(p.data(), p.size())), d.line), fnv(m, std::strlen(m)));
  }
  for (const File& f : files) r.analysed += f.analysed;
  return r;
}

// ---- the serial reference -------------------------------------------------------------------
inline Result run_serial(const Corpus& c, std::vector<File>& files, std::vector<std::uint32_t>& order) {
  files.resize(c.paths.size());
  std::vector<Diag> diags;
  for (std::uint32_t i = 0; i < files.size(); ++i) lex_file(c, i, files[i], diags);
  order = break_cycles(files);
  for (std::uint32_t f : order) {
    std::vector<std::uint64_t> fh(files[f].funcs.size());
    for (std::size_t k = 0; k < fh.size(); ++k)
      if (analyse_fn(files[f], f, k, fh.data(), -1, c)) diags.push_back({f, files[f].funcs[k].line, Msg::LongFunction});
    finish_file(files, f, fh, -1, c);
  }
  auto leaf = [&](std::size_t b, std::size_t e, Totals acc) { return totals_leaf(files, b, e, acc); };
  const Totals t = serial_tree_fold(0, files.size(), kTotalsGrain, Totals{}, leaf, totals_join);
  return finish(c, files, diags, t);
}

// Which files a run analysed, and its hard error: what the error check reads.
inline Result failed(const std::vector<File>& files, const char* what) {
  Result r;
  r.error = what;
  for (const File& f : files) r.analysed += f.analysed, r.done.push_back(f.analysed);
  return r;
}

// ---- vitte ----------------------------------------------------------------------------------
inline Result run_vitte(vitte::Scheduler& s, const Corpus& c, std::int64_t error_file) {
  const std::size_t n = c.paths.size();
  std::vector<File> files(n);
  vitte::per_worker<std::vector<Diag>> diags(s);
  vitte::parallel_for(s, 0, n, 1, [&](std::size_t i) {
    lex_file(c, static_cast<std::uint32_t>(i), files[i], diags.local());
  });
  const std::vector<std::uint32_t> order = break_cycles(files);
  vitte::Graph g("analyse");
  std::vector<vitte::TaskRef> task(n);
  for (std::uint32_t f : order) {
    task[f] = g.add([&, f] {
      std::vector<std::uint64_t> fh(files[f].funcs.size());
      vitte::parallel_for(s, 0, fh.size(), kFnGrain, [&](std::size_t k) {
        if (analyse_fn(files[f], f, k, fh.data(), error_file, c))
          diags.local().push_back({f, files[f].funcs[k].line, Msg::LongFunction});
      });
      finish_file(files, f, fh, error_file, c);
    });
    for (std::uint32_t u : files[f].preds) task[u].precede(task[f]);
  }
  try {
    s.run(g).wait();  // the first error skips every task not yet started
  } catch (const HardError& e) {
    return failed(files, e.what());
  }
  const Totals t = vitte::parallel_reduce(
      s, 0, n, kTotalsGrain, Totals{},
      [&](std::size_t b, std::size_t e, Totals acc) { return totals_leaf(files, b, e, acc); }, totals_join);
  std::vector<Diag> all;
  diags.for_each([&](const std::vector<Diag>& d) { all.insert(all.end(), d.begin(), d.end()); });
  return finish(c, files, all, t);
}

// ---- oneTBB (called inside the arena) ------------------------------------------------------
inline Result run_tbb(const Corpus& c, std::int64_t error_file) {
  using Range = tbb::blocked_range<std::size_t>;
  using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
  const std::size_t n = c.paths.size();
  std::vector<File> files(n);
  tbb::enumerable_thread_specific<std::vector<Diag>> diags;
  tbb::parallel_for(Range(0, n, 1), [&](const Range& r) {
    std::vector<Diag>& d = diags.local();
    for (std::size_t i = r.begin(); i < r.end(); ++i) lex_file(c, static_cast<std::uint32_t>(i), files[i], d);
  });
  const std::vector<std::uint32_t> order = break_cycles(files);
  tbb::flow::graph g;  // its own task_group_context: a body's exception cancels the graph
  std::vector<std::unique_ptr<Node>> node(n);
  for (std::uint32_t f : order) {
    node[f] = std::make_unique<Node>(g, [&, f](const tbb::flow::continue_msg&) {
      std::vector<std::uint64_t> fh(files[f].funcs.size());
      tbb::parallel_for(Range(0, fh.size(), kFnGrain), [&](const Range& r) {
        for (std::size_t k = r.begin(); k < r.end(); ++k)
          if (analyse_fn(files[f], f, k, fh.data(), error_file, c))
            diags.local().push_back({f, files[f].funcs[k].line, Msg::LongFunction});
      });
      finish_file(files, f, fh, error_file, c);
    });
    for (std::uint32_t u : files[f].preds) tbb::flow::make_edge(*node[u], *node[f]);
  }
  for (std::uint32_t f : order)
    if (files[f].preds.empty()) node[f]->try_put(tbb::flow::continue_msg());
  try {
    g.wait_for_all();  // rethrows the body's exception after cancelling the graph's context
  } catch (const HardError& e) {
    return failed(files, e.what());
  }
  const Totals t = tbb::parallel_deterministic_reduce(
      Range(0, n, kTotalsGrain), Totals{},
      [&](const Range& r, Totals acc) { return totals_leaf(files, r.begin(), r.end(), acc); }, totals_join,
      tbb::simple_partitioner());
  std::vector<Diag> all;
  for (const std::vector<Diag>& d : diags) all.insert(all.end(), d.begin(), d.end());
  return finish(c, files, all, t);
}

// ---- setup: the tree, the serial answer, the error file ------------------------------------
struct Setup {
  Corpus c;
  Result ref;
  std::int64_t error_file = -1;
  std::vector<std::uint32_t> dependents;  // the files that include the error file, directly or not
  std::string problem;                    // why there is nothing to run, if so
};

inline const Setup& setup() {
  static const Setup s = [] {
    namespace fs = std::filesystem;
    Setup s;
    const char* env = std::getenv("VITTE_BENCH_PASS_DIR");
    s.c.root = env != nullptr && *env != '\0' ? env : "/usr/include/c++/12";
    std::error_code ec;
    for (fs::recursive_directory_iterator it(s.c.root, ec), end; !ec && it != end; it.increment(ec))
      if (it->symlink_status(ec).type() == fs::file_type::regular)
        s.c.paths.push_back(it->path().lexically_relative(s.c.root).generic_string());
    if (ec || s.c.paths.empty()) {
      s.problem = "pass_driver: '" + s.c.root + "' holds no regular files" + (ec ? " (" + ec.message() + ")" : "") +
                  "; set VITTE_BENCH_PASS_DIR to a source tree";
      return s;
    }
    std::sort(s.c.paths.begin(), s.c.paths.end());
    for (std::uint32_t i = 0; i < s.c.paths.size(); ++i) {
      const std::string& p = s.c.paths[i];
      s.c.by_path.emplace(p, i);
      // Every suffix that starts a path component; the shortest path wins, then the first.
      for (std::size_t pos = 0;;) {
        auto [it, fresh] = s.c.by_suffix.emplace(p.substr(pos), i);
        if (!fresh && s.c.paths[it->second].size() > p.size()) it->second = i;
        const std::size_t slash = p.find('/', pos);
        if (slash == std::string::npos) break;
        pos = slash + 1;
      }
    }
    std::vector<File> files;
    std::vector<std::uint32_t> order;
    s.ref = run_serial(s.c, files, order);
    // The error file: the one most files depend on, directly or not, so its error must skip
    // the most. `order` is topological (preds first), so one pass marks a file's dependents.
    std::vector<std::uint8_t> mark(files.size());
    for (std::uint32_t f = 0; f < files.size(); ++f) {
      std::fill(mark.begin(), mark.end(), 0);
      mark[f] = 1;
      std::vector<std::uint32_t> reach;
      for (std::uint32_t g : order)
        for (std::uint32_t u : files[g].preds)
          if (mark[u] != 0 && mark[g] == 0) mark[g] = 1, reach.push_back(g);
      if (s.error_file < 0 || reach.size() > s.dependents.size()) s.error_file = f, s.dependents = std::move(reach);
    }
    return s;
  }();
  return s;
}

inline Result drive(Runtime r, int threads, const Corpus& c, std::int64_t error_file) {
  Result out;
  if (r == Runtime::Vitte) {
    // As a root task, so the driver's serial parts run on a worker, as oneTBB's run on a
    // thread of its arena.
    vitte::Scheduler& s = vitte_scheduler(threads);
    vitte::TaskGroup root(s);
    root.run([&] { out = run_vitte(s, c, error_file); });
    root.wait();
  } else {
    tbb_arena(threads).execute([&] { out = run_tbb(c, error_file); });
  }
  return out;
}

inline void pass_bench(benchmark::State& st, Runtime r, int threads, std::atomic<bool>* wrong, double (*peak_rss)()) {
  const Setup& s = setup();
  auto fail = [&](const std::string& why) {
    *wrong = true;
    st.SkipWithError(why.c_str());
  };
  if (!s.problem.empty()) return fail(s.problem);
  // Once, untimed: the injected hard error is reported and nothing that depends on it ran.
  const Result e = drive(r, threads, s.c, s.error_file);
  const std::string want = "hard error in " + s.c.paths[static_cast<std::size_t>(s.error_file)];
  std::size_t ran = e.done.empty() ? 0 : e.done[static_cast<std::size_t>(s.error_file)];
  for (std::uint32_t d : s.dependents) ran += e.done.empty() ? 0 : e.done[d];
  if (e.error != want || ran != 0)
    return fail("the injected hard error: reported '" + e.error + "' (want '" + want + "'), " + std::to_string(ran) +
                " file(s) that depend on it were analysed");
  double cpu = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = algo::process_cpu_s();
    const Result got = drive(r, threads, s.c, -1);
    cpu += algo::process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!got.error.empty() || !got.same(s.ref)) {
      fail("wrong result: not the serial run's diagnostics and totals" + (got.error.empty() ? "" : ": " + got.error));
      break;
    }
  }
  algo::add_cpu_counter(st, cpu);
  st.counters["files"] = static_cast<double>(s.c.paths.size());
  st.counters["tokens"] = static_cast<double>(s.ref.t.tokens);
  st.counters["functions"] = static_cast<double>(s.ref.t.functions);
  st.counters["diags"] = static_cast<double>(s.ref.diags);
  st.counters["cancel_skipped"] = static_cast<double>(s.c.paths.size() - e.analysed);  // at least the dependents
  st.counters["cancel_dependents"] = static_cast<double>(s.dependents.size());
  st.counters["peak_rss_MiB"] = peak_rss();
}

}  // namespace bench::pass

namespace bench {
inline void register_pass_driver(const std::vector<int>& thread_counts, std::atomic<bool>& wrong,
                                 double (*peak_rss)()) {
  for (Runtime r : {Runtime::Vitte, Runtime::Tbb})
    for (int t : thread_counts)
      benchmark::RegisterBenchmark((std::string("pass_driver/") + name(r) + "/threads:" + std::to_string(t)).c_str(),
                                   pass::pass_bench, r, t, &wrong, peak_rss)
          ->Unit(benchmark::kMillisecond)->UseManualTime();
}
}  // namespace bench

// The pass driver's workload (pass_driver.hpp), shared by every runtime: the corpus, the
// lexer and its diagnostics, the include DAG's cycle breaking, a file's analysis, the
// totals and the result. Nothing here knows a runtime.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

}  // namespace bench::pass

#include "cli/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

namespace vitte::cli {

namespace {
enum : std::uint8_t { kWhite = 0, kOnStack = 1, kDone = 2 };

std::string task_name(const char* pass, const std::string& path, bool name_files) {
  return name_files ? std::string(pass) + " " + path : std::string(pass);
}
}  // namespace

PassPipeline::PassPipeline(std::string root, std::vector<SourceFile>& files, bool name_files)
    : root_(std::move(root)), files_(files), name_files_(name_files), index_(files) {
  const std::size_t n = files_.size();
  text_.resize(n);
  directives_.resize(n);
  std::vector<TaskRef> collects;
  collects.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string& path = files_[i].path;
    TaskRef read = graph_.add(
        [this, i] {
          SourceFile& f = files_[i];
          read_source(root_ + "/" + f.path, f, text_[i]);
          f.bytes = text_[i].size();
        },
        task_name("read", path, name_files_));
    TaskRef lex = graph_.add(
        [this, i] {
          if (files_[i].skipped == Skip::None) lex_source(text_[i], files_[i], directives_[i]);
        },
        task_name("lex", path, name_files_));
    TaskRef collect = graph_.add(
        [this, i] {
          SourceFile& f = files_[i];
          if (f.skipped == Skip::None) {
            collect_includes(text_[i], directives_[i], f);
            index_.resolve(f);
          }
          std::string().swap(text_[i]);  // the text is not needed any more
          directives_[i].clear();
        },
        task_name("collect", path, name_files_));
    read.precede(lex);
    lex.precede(collect);
    collects.push_back(collect);
  }
  // Added last, so that every edge runs from an earlier task to a later one: the graph
  // needs no cycle check when it runs.
  TaskRef link = graph_.add([this](Subflow& sf) { this->link(sf); }, "link");
  for (TaskRef c : collects) c.precede(link);
  link_graph_.add([this](Subflow& sf) { this->link(sf); }, "link");
}

JobResult PassPipeline::run(Scheduler& sched, bool trace) {
  for (SourceFile& f : files_) reset_file(f);
  const auto t0 = std::chrono::steady_clock::now();
  prepare(sched);
  sched.run(graph_, RunOptions{.trace = trace}).wait();
  return result(sched, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

JobResult PassPipeline::run_linked(Scheduler& sched) {
  const auto t0 = std::chrono::steady_clock::now();
  prepare(sched);
  sched.run(link_graph_).wait();
  return result(sched, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void PassPipeline::prepare(Scheduler& sched) { scratch_ = std::make_unique<per_worker<ReachScratch>>(sched); }

JobResult PassPipeline::result(Scheduler& sched, double seconds) const {
  JobResult r = summarize(sched, files_);
  r.seconds = seconds;
  r.tasks = tasks_for(files_.size());
  r.analyse_edges = analyse_edges_;
  r.cycle_edges_dropped = dropped_.size();
  return r;
}

// Breaks the include graph's cycles and adds the analyse tasks. An iterative DFS from each
// file in path order, following edges in path order: an edge to a file still on the stack
// (an ancestor, or the file itself) closes a cycle and is dropped; every other edge is
// kept. A file's analyse task is added when the DFS leaves it, after those of all the
// files its kept edges reach, so every kept edge runs from an earlier task to a later one
// (the subflow needs no cycle check).
void PassPipeline::link(Subflow& sf) {
  const auto n = static_cast<std::uint32_t>(files_.size());
  color_.assign(n, kWhite);
  analyse_task_.assign(n, TaskRef{});
  dropped_.clear();
  analyse_edges_ = 0;
  for (std::uint32_t start = 0; start < n; ++start) {
    if (color_[start] != kWhite) continue;
    color_[start] = kOnStack;
    stack_.assign(1, {start, 0});
    while (!stack_.empty()) {
      auto& [v, next] = stack_.back();
      const std::vector<std::uint32_t>& edges = files_[v].edges;
      if (next < edges.size()) {
        const std::uint32_t u = edges[next++];
        if (color_[u] == kWhite) {
          color_[u] = kOnStack;
          stack_.emplace_back(u, 0);  // invalidates v and next: not used below
        }
        continue;
      }
      // Leaving v: its successors are done except those on the stack (dropped edges).
      const std::uint32_t file = v;
      stack_.pop_back();
      TaskRef t = sf.add([this, file] { analyse(file); }, task_name("analyse", files_[file].path, name_files_));
      for (std::uint32_t u : files_[file].edges) {
        if (color_[u] == kOnStack) {
          dropped_.emplace_back(file, u);
        } else {
          analyse_task_[u].precede(t);
          ++analyse_edges_;
        }
      }
      color_[file] = kDone;
      analyse_task_[file] = t;
    }
  }
}

// The files `file` reaches over all its include edges (cycles included), as
// run_job_phases() counts them: a DFS with this worker's epoch-stamped visited array.
void PassPipeline::analyse(std::uint32_t file) { files_[file].reach = scratch_->local().count(files_, file); }

std::vector<std::pair<std::string, std::string>> PassPipeline::dropped_edges() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(dropped_.size());
  for (const auto& [from, to] : dropped_) out.emplace_back(files_[from].path, files_[to].path);
  return out;
}

std::vector<PassTime> PassPipeline::pass_times() const {
  const nlohmann::json trace = nlohmann::json::parse(graph_.trace_json());
  struct Acc {
    std::size_t tasks = 0;
    std::int64_t sum = 0, first = -1, last = 0;
  };
  std::map<std::string, Acc> acc;
  for (const auto& t : trace["tasks"]) {
    if (!t["ran"].get<bool>()) continue;
    const std::string name = t["name"].get<std::string>();
    Acc& a = acc[name.substr(0, name.find(' '))];
    const auto start = t["start_ns"].get<std::int64_t>();
    const auto dur = t["duration_ns"].get<std::int64_t>();
    ++a.tasks;
    a.sum += dur;
    if (a.first < 0 || start < a.first) a.first = start;
    a.last = std::max(a.last, start + dur);
  }
  std::vector<PassTime> out;
  for (const char* pass : kPasses) {
    const Acc& a = acc[pass];
    out.push_back({pass, a.tasks, static_cast<double>(a.sum) / 1e9,
                   a.tasks == 0 ? 0.0 : static_cast<double>(a.last - a.first) / 1e9});
  }
  return out;
}

namespace {
std::string comment_safe(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}
}  // namespace

std::string PassPipeline::dot() const {
  std::string out = graph_.trace_dot();
  std::string notes = "  // include cycles broken: " + std::to_string(dropped_.size()) + " edge(s) dropped\n";
  for (const auto& [from, to] : dropped_edges()) notes += "  // dropped: " + comment_safe(from) + " -> " + comment_safe(to) + "\n";
  out.insert(out.rfind('}'), notes);
  return out;
}

}  // namespace vitte::cli

// The main job across MPI ranks (cli/dist_job.hpp). Built only with vitte::dist.
#include "cli/dist_job.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <utility>

#include "cli/pipeline.hpp"
#include "cli/report.hpp"
#include "vitte/dist.hpp"

namespace vitte::cli {

namespace {

namespace vd = vitte::dist;
using Clock = std::chrono::steady_clock;

// What one file's read, lex and collect passes found: what link, analyse and the answers
// need of it, shipped back to rank 0 (never its text).
struct Scanned {
  std::uint64_t bytes = 0, tokens = 0;
  std::uint8_t skipped = 0;  // Skip
  std::string skip_why;
  std::vector<std::pair<std::string, bool>> includes;
  std::vector<std::uint32_t> edges;
  template <class Archive>
  void serialize(Archive& a) {
    a(bytes, tokens, skipped, skip_why, includes, edges);
  }
};

// The registered function below runs wherever a chunk is stolen to and is called by its
// index in the function table, so what it needs cannot travel with it by address: each
// process keeps it here (one cluster per process, dist.hpp). Set before the cluster
// starts; only the counters change while it runs.
struct RankState {
  std::string root;
  const std::vector<SourceFile>* files = nullptr;
  std::unique_ptr<IncludeIndex> index;
  std::atomic<std::uint64_t> chunks{0}, files_done{0}, bytes{0}, busy_ns{0};
};
RankState g_rank;

// Read, lex and collect of files [begin, end) of this rank's list, as the pipeline's
// tasks do them (pipeline.cpp), one file after another on the worker that runs the chunk.
std::vector<Scanned> scan_chunk(std::uint32_t begin, std::uint32_t end) {
  const auto t0 = Clock::now();
  const std::vector<SourceFile>& files = *g_rank.files;
  if (begin > end || end > files.size())
    throw std::out_of_range("scan_chunk: files [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a list of " + std::to_string(files.size()));
  std::vector<Scanned> out(end - begin);
  SourceFile f;
  std::string text;
  std::vector<std::uint32_t> directives;
  std::uint64_t bytes = 0;
  for (std::uint32_t i = begin; i < end; ++i) {
    f.path = files[i].path;  // resolve() looks beside it for quoted includes
    reset_file(f);
    read_source(g_rank.root + "/" + f.path, f, text);
    f.bytes = text.size();
    if (f.skipped == Skip::None) {
      directives.clear();
      lex_source(text, f, directives);
      collect_includes(text, directives, f);
      g_rank.index->resolve(f);
    }
    bytes += f.bytes;
    out[i - begin] = Scanned{f.bytes, f.tokens, static_cast<std::uint8_t>(f.skipped), std::move(f.skip_why),
                             std::move(f.includes), std::move(f.edges)};
  }
  g_rank.chunks.fetch_add(1, std::memory_order_relaxed);
  g_rank.files_done.fetch_add(end - begin, std::memory_order_relaxed);
  g_rank.bytes.fetch_add(bytes, std::memory_order_relaxed);
  g_rank.busy_ns.fetch_add(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()),
      std::memory_order_relaxed);
  return out;
}

vd::Functions functions() {
  vd::Functions f;
  f.add<&scan_chunk>("vitte-sched run: scan_chunk");
  return f;
}

// Files per chunk: a few dozen files (milliseconds of work) outweigh the messages that
// ship a stolen chunk and its result; and a tree of a few hundred files still makes dozens
// of chunks, enough for every rank's workers to steal from.
std::uint32_t chunk_size(std::size_t files) { return static_cast<std::uint32_t>(std::clamp<std::size_t>(files / 64, 1, 32)); }

// What each rank says about its listing at start-up.
struct ListingStatus {
  std::string error;  // this rank could not list the tree
  std::string root;
  std::uint64_t files = 0, hash = 0;  // FNV-1a over the paths, in list order
  template <class Archive>
  void serialize(Archive& a) {
    a(error, root, files, hash);
  }
};

std::uint64_t hash_paths(const std::vector<SourceFile>& files) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const SourceFile& f : files) {
    for (unsigned char c : f.path) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xffu) * 0x100000001b3ull;  // a separator no path holds ('\xff' is not UTF-8)
  }
  return h;
}

template <class T>
std::string to_wire(const T& v) {
  vd::detail::Writer w;
  w.put(v);
  return w.take();
}
template <class T>
T from_wire(const std::string& s) {
  vd::detail::Reader r(s);
  T v = r.template get<T>();
  r.finish();
  return v;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

}  // namespace

struct DistJob::Impl {
  Impl(Scheduler& s, std::vector<SourceFile>& f) : sched(s), files(f) {}
  Scheduler& sched;
  std::vector<SourceFile>& files;
  std::unique_ptr<vd::Cluster> cluster;
  vd::ClusterStats before, after;  // around the last run

  // Every rank stops with `message` (status `status`): rank 0 reports it. All ranks get
  // here together (agree() is collective), so the cluster is shut down in step first: a
  // Cluster destroyed while an exception unwinds would abort the job (dist.hpp).
  [[noreturn]] void fail(int status, const std::string& message) const {
    const int rank = cluster->rank();
    cluster->shutdown();
    if (rank == 0) throw Failure(status, message);
    throw RanksFailure(status, message);
  }
  // Collective: stops every rank with the first rank's error, if any rank has one.
  void agree(const std::string& my_error) {
    const std::vector<std::string> errors = cluster->all_gather(my_error);
    for (std::size_t r = 0; r < errors.size(); ++r)
      if (!errors[r].empty()) fail(kExitRuntime, errors[r]);
  }
};

DistJob::DistJob(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files,
                 const std::string& listing_error)
    : impl_(std::make_unique<Impl>(sched, files)) {
  g_rank.root = root;
  g_rank.files = &files;
  g_rank.index = std::make_unique<IncludeIndex>(files);
  try {
    impl_->cluster = std::make_unique<vd::Cluster>(sched, functions());
  } catch (const vd::SetupError& e) {
    // The same message on every rank (dist.hpp): rank 0 reports it.
    const Launch l = launch_info();
    if (l.rank > 0) throw RanksFailure(kExitRuntime, e.what());
    throw Failure(kExitRuntime, std::string("the ranks cannot start a cluster: ") + e.what());
  }
  const std::vector<std::string> all = impl_->cluster->all_gather(
      to_wire(ListingStatus{listing_error, root, files.size(), listing_error.empty() ? hash_paths(files) : 0}));
  std::vector<ListingStatus> lists;
  for (const std::string& s : all) lists.push_back(from_wire<ListingStatus>(s));
  for (std::size_t r = 0; r < lists.size(); ++r)
    if (!lists[r].error.empty()) impl_->fail(kExitUsage, "rank " + std::to_string(r) + ": " + lists[r].error);
  const ListingStatus& first = lists[0];
  for (std::size_t r = 1; r < lists.size(); ++r) {
    const ListingStatus& l = lists[r];
    if (l.root == first.root && l.files == first.files && l.hash == first.hash) continue;
    std::string what;
    if (l.root != first.root)
      what = "rank " + std::to_string(r) + " lists --dir '" + l.root + "', rank 0 '" + first.root + "'";
    else if (l.files != first.files)
      what = "rank " + std::to_string(r) + " lists " + std::to_string(l.files) + " files under '" + l.root +
             "', rank 0 lists " + std::to_string(first.files);
    else
      what = "rank " + std::to_string(r) + " lists as many files under '" + l.root + "' as rank 0 (" +
             std::to_string(l.files) + ") but other paths";
    impl_->fail(kExitRuntime, "the ranks see different trees: " + what +
                                  "; every rank must see the same tree (a shared filesystem, the same --dir)");
  }
}

DistJob::~DistJob() = default;

int DistJob::rank() const { return impl_->cluster->rank(); }
int DistJob::size() const { return impl_->cluster->size(); }

JobResult DistJob::run(PassPipeline& pipeline) {
  vd::Cluster& cluster = *impl_->cluster;
  // relaxed: no chunk runs here until the agree() below, a collective that orders these.
  for (auto* c : {&g_rank.chunks, &g_rank.files_done, &g_rank.bytes, &g_rank.busy_ns})
    c->store(0, std::memory_order_relaxed);
  impl_->before = cluster.stats();
  // Every rank has reset its counters before rank 0 spawns the first chunk.
  impl_->agree("");
  JobResult r;
  std::string error;
  if (cluster.rank() == 0) {
    try {
      std::vector<SourceFile>& files = impl_->files;
      const auto n = static_cast<std::uint32_t>(files.size());
      const std::uint32_t step = chunk_size(n);
      const auto t0 = Clock::now();
      std::vector<std::pair<std::uint32_t, Future<std::vector<Scanned>>>> chunks;
      for (std::uint32_t b = 0; b < n; b += step) chunks.emplace_back(b, cluster.spawn<&scan_chunk>(b, std::min(n, b + step)));
      for (auto& [begin, future] : chunks) {
        std::vector<Scanned> part = future.get();
        for (std::size_t k = 0; k < part.size(); ++k) {
          SourceFile& f = files[begin + k];
          Scanned& s = part[k];
          reset_file(f);
          f.bytes = s.bytes;
          f.tokens = s.tokens;
          f.skipped = static_cast<Skip>(s.skipped);
          f.skip_why = std::move(s.skip_why);
          f.includes = std::move(s.includes);
          f.edges = std::move(s.edges);
        }
      }
      cluster.join_all();  // nothing of this run is left in flight
      r = pipeline.run_linked(impl_->sched);
      r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      r.tasks = chunks.size() + 1 + files.size();  // the chunks, link, an analyse per file
    } catch (const std::exception& e) {
      error = std::string("the run across ranks failed: ") + e.what();
      cluster.join_all();  // the chunks still running, so that every rank meets the next step
    }
  } else {
    cluster.join_all();
  }
  impl_->after = cluster.stats();
  impl_->agree(error);
  return r;
}

std::vector<RankReport> DistJob::finish() {
  vd::Cluster& cluster = *impl_->cluster;
  const vd::ClusterStats& a = impl_->after;
  const vd::ClusterStats& b = impl_->before;
  RankReport mine;
  mine.rank = cluster.rank();
  mine.host = host_name();
  mine.workers = impl_->sched.num_workers();
  // relaxed: the chunks' tasks ended before join_all() returned, which ordered their counts.
  mine.chunks = g_rank.chunks.load(std::memory_order_relaxed);
  mine.files = g_rank.files_done.load(std::memory_order_relaxed);
  mine.bytes = g_rank.bytes.load(std::memory_order_relaxed);
  mine.busy_seconds = static_cast<double>(g_rank.busy_ns.load(std::memory_order_relaxed)) / 1e9;
  mine.messages_sent = a.messages_sent - b.messages_sent;
  mine.bytes_sent = a.bytes_sent - b.bytes_sent;
  mine.bytes_received = a.bytes_received - b.bytes_received;
  mine.steal_requests = a.steal_requests - b.steal_requests;
  mine.steals_won = a.steals_won - b.steals_won;
  mine.tasks_stolen_in = a.tasks_stolen_in - b.tasks_stolen_in;
  mine.tasks_given = a.tasks_given - b.tasks_given;
  mine.peak_rss_bytes = peak_rss_bytes();
  const std::vector<std::string> all = cluster.all_gather(to_wire(mine));
  cluster.shutdown();
  std::vector<RankReport> out;
  if (mine.rank == 0)
    for (const std::string& s : all) out.push_back(from_wire<RankReport>(s));
  return out;
}

}  // namespace vitte::cli

// The start-up checks. Every rank must have the same function table and the same build of
// the program (dist.hpp): each rank describes itself in text; all texts are gathered to
// every rank, which compares them and, on any difference, throws the same SetupError.
// Ranks on one machine should not pin workers to the same CPUs: rank 0 warns.
#include <cxxabi.h>
#include <elf.h>
#include <link.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dist/cluster_core.hpp"
#include "vitte/plan.hpp"

namespace vitte::dist::detail {
namespace {

// The main program's GNU build-id note as hex, or a hash of its file when it has none.
std::string build_id() {
  std::string id;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) -> int {
        // The first object is the program itself.
        auto& s = *static_cast<std::string*>(out);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
          const char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const char* name = p + sizeof(ElfW(Nhdr));
            const char* desc = name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
              static const char* hex = "0123456789abcdef";
              for (unsigned k = 0; k < n->n_descsz; ++k) {
                const auto b = static_cast<unsigned char>(desc[k]);
                s += hex[b >> 4];
                s += hex[b & 15];
              }
              return 1;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
          }
        }
        return 1;  // only the first object
      },
      &id);
  if (!id.empty()) return id;
  std::ifstream f("/proc/self/exe", std::ios::binary);
  std::ostringstream all;
  all << f.rdbuf();
  return "file-hash-" + std::to_string(std::hash<std::string>{}(all.str()));
}

std::string demangle(const std::string& mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string out = (status == 0 && d != nullptr) ? d : mangled;
  std::free(d);
  return out;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) s += (i ? "," : "") + std::to_string(ranks[i]);
  return s;
}

struct Described {
  std::string build;
  std::map<std::string, std::string> functions;  // name -> signature
};

Described parse(const std::string& text) {
  Described d;
  std::istringstream in(text);
  std::getline(in, d.build);
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    d.functions[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return d;
}

}  // namespace

std::string describe_table(const std::vector<Entry>& table) {
  std::string s = build_id() + "\n";
  for (const auto& e : table) s += e.name + "\t" + e.signature + "\n";
  return s;
}

// "host\tcpu cpu ...": where this rank's workers are pinned (none when unpinned).
std::string describe_placement(const Scheduler& sched) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string s = std::string(host) + "\t";
  for (const auto& w : sched.plan().workers)
    if (w.os_cpu >= 0) s += std::to_string(w.os_cpu) + " ";
  return s;
}

// Ranks on one host whose schedulers pin workers to the same CPUs share those cores: each
// plans the whole machine when the launcher did not bind it (mpirun --bind-to none, or
// oversubscription). Not an error (the tests oversubscribe on purpose), but it halves
// what each rank gets, so rank 0 says so once, naming the ranks and the fix.
void warn_shared_cpus(int rank, const std::vector<std::string>& placements) {
  if (rank != 0) return;
  std::map<std::string, std::vector<std::pair<int, std::vector<int>>>> by_host;
  for (std::size_t r = 0; r < placements.size(); ++r) {
    const auto tab = placements[r].find('\t');
    std::istringstream cpus(placements[r].substr(tab + 1));
    std::vector<int> v;
    for (int c; cpus >> c;) v.push_back(c);
    std::sort(v.begin(), v.end());
    by_host[placements[r].substr(0, tab)].emplace_back(static_cast<int>(r), std::move(v));
  }
  std::string shared;
  for (const auto& [host, ranks] : by_host)
    for (std::size_t i = 0; i < ranks.size(); ++i)
      for (std::size_t k = i + 1; k < ranks.size(); ++k) {
        std::vector<int> both;
        std::set_intersection(ranks[i].second.begin(), ranks[i].second.end(), ranks[k].second.begin(),
                              ranks[k].second.end(), std::back_inserter(both));
        if (both.empty()) continue;
        shared += "\n  ranks " + std::to_string(ranks[i].first) + " and " + std::to_string(ranks[k].first) + " on " +
                  host + " both pin workers to CPU " + std::to_string(both.front()) +
                  (both.size() > 1 ? " (and " + std::to_string(both.size() - 1) + " more)" : "");
      }
  if (shared.empty()) return;
  std::fprintf(stderr,
               "vitte::dist: warning: ranks share CPUs, so their workers share cores:%s\n  Bind each rank to its own "
               "CPUs (mpirun's default binding, --bind-to core|socket|numa, or a placement config per rank); "
               "docs/distributed.md, \"Ranks that share a machine\".\n",
               shared.c_str());
}

// Throws SetupError when the ranks' descriptions differ, naming what differs where.
void check_tables(const std::vector<std::string>& texts) {
  if (std::all_of(texts.begin(), texts.end(), [&](const std::string& t) { return t == texts[0]; })) return;
  std::vector<Described> ds;
  for (const auto& t : texts) ds.push_back(parse(t));
  std::string why;
  // Builds: group ranks by build id.
  std::map<std::string, std::vector<int>> builds;
  for (std::size_t r = 0; r < ds.size(); ++r) builds[ds[r].build].push_back(static_cast<int>(r));
  if (builds.size() > 1) {
    why += "\n  the ranks run different builds of the program:";
    for (const auto& [b, ranks] : builds) why += " " + rank_list(ranks) + " build " + b.substr(0, 16) + ";";
  }
  std::map<std::string, bool> names;
  for (const auto& d : ds)
    for (const auto& [n, s] : d.functions) names[n] = true;
  for (const auto& [name, unused] : names) {
    std::vector<int> missing;
    std::map<std::string, std::vector<int>> sigs;
    for (std::size_t r = 0; r < ds.size(); ++r) {
      auto it = ds[r].functions.find(name);
      if (it == ds[r].functions.end()) missing.push_back(static_cast<int>(r));
      else sigs[it->second].push_back(static_cast<int>(r));
    }
    if (!missing.empty()) why += "\n  function \"" + name + "\" is not registered on " + rank_list(missing);
    if (sigs.size() > 1) {
      why += "\n  function \"" + name + "\" is registered with different signatures:";
      for (const auto& [sig, ranks] : sigs) why += " " + demangle(sig) + " on " + rank_list(ranks) + ";";
    }
  }
  throw SetupError("vitte::dist: the ranks disagree; every rank must run the same program with the same "
                   "Functions table:" + why);
}

}  // namespace vitte::dist::detail

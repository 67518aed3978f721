// The MPI seam (mpi_seam.hpp): the only file of vitte that includes <mpi.h>.
#include "dist/mpi_seam.hpp"

#include <mpi.h>

#include <cstdlib>
#include <deque>
#include <numeric>
#include <utility>

#include "vitte/dist.hpp"

namespace vitte::dist::detail::mpi {
namespace {

MPI_Comm g_comm = MPI_COMM_NULL;

struct PendingSend {
  MPI_Request req = MPI_REQUEST_NULL;
  std::string bytes;
};
// Communication thread only. A deque: elements stay put while MPI holds their bytes.
std::deque<PendingSend> g_sends;

[[noreturn]] void fail(const std::string& what) { throw SetupError("vitte::dist: " + what); }

}  // namespace

Started start(int* argc, char*** argv) {
  Started s;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) fail("MPI was finalised already: a Cluster must be made before MPI_Finalize()");
  int initialised = 0;
  MPI_Initialized(&initialised);
  int provided = 0;
  if (!initialised) {
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) fail("MPI_Init_thread failed");
    s.initialised_here = true;
    // Finalised at exit, not when the cluster ends: MPI cannot start twice in a process,
    // and a program may make one Cluster after another.
    std::atexit([] {
      int done = 0;
      MPI_Finalized(&done);
      if (!done) MPI_Finalize();
    });
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    fail("MPI gives thread level " + std::to_string(provided) +
         ", below MPI_THREAD_SERIALIZED: the communication thread calls MPI (initialise MPI with "
         "MPI_Init_thread(..., MPI_THREAD_SERIALIZED or MPI_THREAD_MULTIPLE, ...), or let the Cluster do it)");
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &g_comm);
  MPI_Comm_rank(g_comm, &s.rank);
  MPI_Comm_size(g_comm, &s.size);
  return s;
}

void stop() {
  if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
}

void abort(int code) {
  MPI_Abort(g_comm != MPI_COMM_NULL ? g_comm : MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort should not return
}

std::vector<std::string> all_gather_now(const std::string& mine) {
  int size = 0;
  MPI_Comm_size(g_comm, &size);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size));
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, g_comm);
  std::vector<int> offs(lens.size());
  std::exclusive_scan(lens.begin(), lens.end(), offs.begin(), 0);
  std::string all(static_cast<std::size_t>(offs.back() + lens.back()), '\0');
  MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, g_comm);
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lens.size(); ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offs[r]), static_cast<std::size_t>(lens[r])));
  return out;
}

bool poll(Incoming& in) {
  int flag = 0;
  MPI_Status st;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, g_comm, &flag, &st);
  if (!flag) return false;
  int n = 0;
  MPI_Get_count(&st, MPI_CHAR, &n);
  in.source = st.MPI_SOURCE;
  in.tag = st.MPI_TAG;
  in.bytes.resize(static_cast<std::size_t>(n));
  MPI_Recv(in.bytes.data(), n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, g_comm, MPI_STATUS_IGNORE);
  return true;
}

void send(int dest, int tag, std::string bytes) {
  g_sends.push_back(PendingSend{MPI_REQUEST_NULL, std::move(bytes)});
  auto& p = g_sends.back();
  MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_CHAR, dest, tag, g_comm, &p.req);
}

bool progress_sends() {
  // Sends complete roughly in order: retire finished ones from the front.
  while (!g_sends.empty()) {
    int done = 0;
    MPI_Test(&g_sends.front().req, &done, MPI_STATUS_IGNORE);
    if (!done) break;
    g_sends.pop_front();
  }
  return !g_sends.empty();
}

void flush_sends() {
  for (auto& p : g_sends) MPI_Wait(&p.req, MPI_STATUS_IGNORE);
  g_sends.clear();
}

struct Gather::State {
  int size = 0;
  int step = 0;  // 0: lengths in flight, 1: bytes in flight, 2: done
  int len = 0;
  std::string mine;
  std::vector<int> lens, offs;
  std::string all;
  MPI_Request req = MPI_REQUEST_NULL;
};

Gather::Gather(std::string mine) : s_(new State) {
  MPI_Comm_size(g_comm, &s_->size);
  s_->mine = std::move(mine);
  s_->len = static_cast<int>(s_->mine.size());
  s_->lens.resize(static_cast<std::size_t>(s_->size));
  MPI_Iallgather(&s_->len, 1, MPI_INT, s_->lens.data(), 1, MPI_INT, g_comm, &s_->req);
}

Gather::~Gather() {
  if (s_->step < 2 && s_->req != MPI_REQUEST_NULL) MPI_Wait(&s_->req, MPI_STATUS_IGNORE);
  delete s_;
}

bool Gather::test() {
  if (s_->step == 2) return true;
  int done = 0;
  MPI_Test(&s_->req, &done, MPI_STATUS_IGNORE);
  if (!done) return false;
  if (s_->step == 0) {
    s_->offs.resize(s_->lens.size());
    std::exclusive_scan(s_->lens.begin(), s_->lens.end(), s_->offs.begin(), 0);
    s_->all.assign(static_cast<std::size_t>(s_->offs.back() + s_->lens.back()), '\0');
    MPI_Iallgatherv(s_->mine.data(), s_->len, MPI_CHAR, s_->all.data(), s_->lens.data(), s_->offs.data(), MPI_CHAR,
                    g_comm, &s_->req);
    s_->step = 1;
    return false;
  }
  for (std::size_t r = 0; r < s_->lens.size(); ++r)
    out_.push_back(s_->all.substr(static_cast<std::size_t>(s_->offs[r]), static_cast<std::size_t>(s_->lens[r])));
  s_->step = 2;
  return true;
}

}  // namespace vitte::dist::detail::mpi

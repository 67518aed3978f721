// ClusterCore: one rank's share of a vitte::dist::Cluster.
//
// Threads: the program's workers (and its own threads) spawn and call; the
// communication thread (comm_loop.cpp) alone talks to MPI. They meet in:
//   - the outbox (outbox.hpp): messages to send;
//   - the pool (pool.hpp): spawned tasks, which the communication thread may ship;
//   - `sent` and `active`, which the termination waves read (termination.cpp);
//   - the reply slots (under slots_mu) and the collective request (under coll_mu).
//
// Counting (termination.cpp has the proof sketch):
//   C1  `sent` rises when a counted message (messages.hpp) is queued, before the task that
//       queued it lowers `active`; `received` rises when the communication thread takes
//       one in, before it acts on it.
//   C2  `active` counts the pool's tokens queued or running here (one per item spawned or
//       accepted here, whether the item then runs here or is shipped), remote calls being
//       served here and async() calls to this rank from itself. It rises before the work
//       is visible to anyone and falls after the work's last message was queued (release;
//       the waves read it with acquire).
//   C3  a task's fall of `active` is the last thing it does with the core: once the
//       cluster may be quiet, the program may destroy it (end_work()).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dist/mpi_seam.hpp"
#include "dist/outbox.hpp"
#include "dist/pool.hpp"
#include "vitte/detail/waiter.hpp"
#include "vitte/dist.hpp"

namespace vitte::dist::detail {

struct Counters {
  std::atomic<std::uint64_t> messages_sent{0}, messages_received{0}, bytes_sent{0}, bytes_received{0};
  std::atomic<std::uint64_t> steal_requests{0}, steals_won{0}, tasks_stolen_in{0}, tasks_given{0};
  std::atomic<std::uint64_t> lifeline_pushes{0}, calls_served{0}, pool_tasks_run{0};
  std::atomic<std::uint64_t> steal_replies{0}, steal_reply_ns{0};
  std::atomic<std::int64_t> idle_ns{0}, idle_cpu_ns{0};
};

// The thief's side of the steal protocol (steal.cpp), communication thread only.
enum class Hunger {
  Fed,           // this rank has pool work queued
  Hungry,        // nothing queued: the next step is a random steal
  WaitRandom,    // a random steal is out
  WaitLifeline,  // a lifeline request is out (to lifelines[lifeline_next - 1])
  Lifelined,     // registered on every lifeline: waits for a push
};

class ClusterCore {
 public:
  ClusterCore(Cluster* owner, Scheduler& sched, const Functions& fns, int* argc, char*** argv, ClusterOptions opts);
  ~ClusterCore();

  // --- identity ---
  Cluster* owner;
  Scheduler& sched;
  ClusterOptions opts;
  int rank = 0;
  int size = 1;
  bool mpi_initialised_here = false;
  std::vector<Entry> table;                               // sorted by name: index = position
  std::unordered_map<std::uintptr_t, std::uint32_t> index;  // function address -> index

  // --- hand-offs (see the file comment) ---
  Outbox outbox;
  vitte::detail::Waiter comm_waiter;  // the communication thread sleeps on it when idle
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::int64_t> active{0};
  Pool pool;
  // Set by the communication thread while some thief is registered here: a spawn then
  // wakes it, so a lifeline push does not wait for its next poll. relaxed both ways: a
  // missed wake-up costs one sleep period, never a lost task.
  std::atomic<bool> thieves_waiting{false};
  Counters counters;

  // Queues a message for the communication thread (any thread).
  void post(int dest, int tag, std::string bytes);
  // Queues pool work from this thread (a worker's own list, else the shared one).
  void spawn(std::unique_ptr<PoolItem> item);
  // Queues items that arrived (communication thread).
  void accept(std::vector<std::unique_ptr<PoolItem>> items);
  // Runs one item of `list` (a token's body).
  void run_token(std::size_t list);
  // Ends a unit of counted work (C2, C3).
  void end_work() noexcept;
  // A shipped or called function's outcome, to its origin.
  void deliver(int origin, std::uint64_t slot, std::uint32_t fn, const std::string* bytes, std::exception_ptr error);

  // --- reply slots ---
  std::uint64_t add_slot(std::unique_ptr<ReplySlot> s);
  std::unique_ptr<ReplySlot> take_slot(std::uint64_t id);

  // --- errors (protocol errors this rank met; join_all() rethrows the first) ---
  void record_error(std::string what);
  std::exception_ptr take_error();

  // --- termination (termination.cpp) ---
  void join_all();
  std::atomic<std::uint64_t> join_epoch{0};  // the join_all() the program is in (0: none)
  std::atomic<std::uint64_t> done_epoch{0};  // the last one terminated
  std::mutex join_mu;
  std::condition_variable join_cv;
  bool passive() const;

  // --- collectives ---
  std::vector<std::string> all_gather(std::string mine);

  // --- the communication thread ---
  void start_comm();
  void stop_comm();
  // Has the communication thread end the whole job with MPI_Abort; does not return.
  [[noreturn]] void abort_job();
  bool stopped = false;  // program thread only
  // Set by shutdown() before it joins: later spawn()/async() are refused. relaxed: a
  // spawn racing with shutdown() is the program's own race; this catches the sequential
  // misuse (spawning after shutdown() returned).
  std::atomic<bool> closed{false};
  void check_open(const char* what) const;

 private:
  friend struct CommLoop;
  // comm_loop.cpp
  void comm_main();
  bool drain_outbox();
  bool receive();
  void dispatch(const mpi::Incoming& in);
  void on_call(int src, std::string_view body);
  void on_result(int src, std::string_view body);
  void on_tasks(int src, std::string_view body);
  // steal.cpp
  bool steal_step();
  bool give_to_lifelines();
  void on_steal_request(int src, std::string_view body);
  void on_steal_none(int src, std::string_view body);
  void ship(int dest, bool lifeline_push, std::vector<std::unique_ptr<PoolItem>> items);
  void request_steal(int victim, bool lifeline);
  void steal_answered();
  // termination.cpp
  bool wave_step();
  void on_wave(int src, std::string_view body);
  void on_wave_reply(int src, std::string_view body);
  void on_done(std::string_view body);
  void close_wave();
  void finish(std::uint64_t epoch);
  // collectives
  bool collective_step();

  void send_now(int dest, int tag, std::string bytes);  // communication thread

  std::thread comm_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};  // abort_job() asked; the communication thread aborts
  std::uint64_t received_ = 0;  // communication thread only (C1)

  std::mutex slots_mu_;
  std::unordered_map<std::uint64_t, std::unique_ptr<ReplySlot>> slots_;
  std::uint64_t next_slot_ = 1;

  std::mutex err_mu_;
  std::exception_ptr first_error_;

  // Steal protocol state, communication thread only.
  Hunger hunger_ = Hunger::Hungry;
  std::vector<int> lifelines_;        // my buddies: ranks I register with
  std::size_t lifeline_next_ = 0;
  std::int64_t steal_sent_ns_ = 0;    // when the request now out was sent
  std::vector<char> thieves_;         // ranks registered with me, waiting for a push
  std::minstd_rand rng_;

  // Waves (rank 0), communication thread only.
  struct Wave {
    std::uint64_t epoch = 0, id = 0;
    int replies = 0;
    bool passive = true;
    std::uint64_t sent = 0, received = 0;
  };
  bool wave_open_ = false;
  Wave wave_, last_;
  bool last_valid_ = false;
  std::uint64_t next_wave_id_ = 1;
  std::int64_t next_wave_ns_ = 0;
  std::int64_t wave_gap_ns_ = 0;

  // The collective in progress: the program thread fills `coll_in_` and waits; the
  // communication thread runs it.
  std::mutex coll_mu_;
  std::condition_variable coll_cv_;
  std::optional<std::string> coll_in_;
  std::optional<std::vector<std::string>> coll_out_;
  std::unique_ptr<mpi::Gather> gather_;
};

// Nanoseconds on the steady clock.
std::int64_t now_ns() noexcept;
// A readable name of the exception in flight's type.
std::string current_exception_type();

}  // namespace vitte::dist::detail

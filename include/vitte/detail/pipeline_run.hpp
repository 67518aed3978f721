// run_pipeline's engine (pipeline.hpp): the typed walk of one token through the stages.
//
// Stage 0 is the source, stages 1..S-1 the middle ones, stage S the sink. A token holds
// one item, constructed in place in its buffer: after stage k (k < S) the item of type
// T_k, where T_0 is the source's result and T_k what stage k returns for T_(k-1); `held`
// says which (-1: none).
//
// Walk: a thread that takes the source lock (pipeline_ring.hpp, P2) while a token is free
// makes an item and carries it on itself, stage after stage, in the same task: a parallel
// stage runs at once; a serial one runs at once when the item holds its gate, and otherwise
// the item parks in the gate's ring. The holder that passes the gate takes the parked
// successor: at the sink it runs it inline in the same loop; at a middle stage it spawns
// one task that continues it there (the stage's hold moves to that task) and carries its
// own item on. Whenever a walk ends (the item left the sink, or parked) the same task tries
// the source again: the token just freed drives it, with no hand-over to another thread.
// So in a steady state each worker loops source -> stages -> sink without spawning (a task
// starts at most kWalksPerTask items, then leaves the rest to a new task). One task that
// runs the source is left queued while tokens are free (hint_), for idle workers to pick
// up; a thread that found no token free raises starved_, and the next thread that frees one
// leaves such a task (give_back), so that no worker stays out for good. A task is spawned
// per item only where parallelism calls for it, never per stage.
//
// Stop: every stage call first looks at the stop flag (LoopState, relaxed, a hint). Once
// set (an exception from a stage, the stop token), an item that reaches a stage is
// destroyed there instead, the source is not called again, and items parked in gates are
// destroyed by sweep() after the group has joined. A stage call already running finishes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vitte/detail/pipeline_ring.hpp"
#include "vitte/error.hpp"
#include "vitte/parallel_for.hpp"
#include "vitte/task_group.hpp"

namespace vitte {

enum class StageMode : unsigned char { SerialInOrder, SerialOutOfOrder, Parallel };

// Handed to the source: done() says there are no more items (what the source returns
// with it is discarded).
class PipelineStop {
 public:
  void done() noexcept { done_ = true; }
  bool is_done() const noexcept { return done_; }

 private:
  bool done_ = false;
};

namespace detail {

// tuple<T_0, ..., T_(S-1)>: the source's result, then what each middle stage makes of it.
// Fns: the middle stages' callables, then the sink's.
template <class In, class... Fns>
struct PipeItems;
template <class In, class Sink>
struct PipeItems<In, Sink> {
  static_assert(std::is_invocable_v<Sink, In&&>, "run_pipeline: the sink cannot take the item the stage before it makes");
  using type = std::tuple<In>;
};
template <class In, class F, class G, class... Fns>
struct PipeItems<In, F, G, Fns...> {
  static_assert(std::is_invocable_v<F, In&&>, "run_pipeline: a stage cannot take the item the one before it makes");
  using Out = std::invoke_result_t<F, In&&>;
  static_assert(!std::is_void_v<Out> && !std::is_reference_v<Out>,
                "run_pipeline: a middle stage returns its item by value (only the sink returns void)");
  using type = decltype(std::tuple_cat(std::declval<std::tuple<In>>(),
                                       std::declval<typename PipeItems<Out, G, Fns...>::type>()));
};

template <class... T>
constexpr std::size_t max_size(std::tuple<T...>*) {
  std::size_t m = 1;
  ((m = sizeof(T) > m ? sizeof(T) : m), ...);
  return m;
}
template <class... T>
constexpr std::size_t max_align(std::tuple<T...>*) {
  std::size_t m = alignof(std::max_align_t);
  ((m = alignof(T) > m ? alignof(T) : m), ...);
  return m;
}

// One resumable piece of work: run the source (tok null), or continue `tok` holding the gate
// of `stage` for `id`. stage ~0u: nothing left.
struct PipeWork {
  void* tok = nullptr;
  std::uint64_t id = 0;
  unsigned stage = 0;
  static constexpr unsigned kNone = ~0u;
};

// Fns: the callables, each as the reference type its filter object gives (F& or const F&).
template <class Items, class... Fns>
class PipeRun;

template <class Items, class... Fns>
class PipeRun {
  static constexpr std::size_t S = sizeof...(Fns) - 1;  // the sink's index
  static_assert(std::tuple_size_v<Items> == S);
  static constexpr std::size_t kSize = max_size(static_cast<Items*>(nullptr));
  static constexpr std::size_t kAlign = max_align(static_cast<Items*>(nullptr));
  template <std::size_t K>
  using T = std::tuple_element_t<K, Items>;

  struct alignas(kAlign > kCacheLine ? kAlign : kCacheLine) Token : PoolNode {
    std::uint64_t seq = 0;
    int held = -1;  // the index k of the T_k in buf, -1: empty
    alignas(kAlign) unsigned char buf[kSize];
  };

 public:
  PipeRun(std::size_t cap, const std::array<StageMode, S + 1>& modes, std::tuple<Fns...> fns,
          const std::stop_token* stop)
      : cap_(cap), modes_(modes), fns_(fns), stop_(stop) {
    tokens_ = std::make_unique<Token[]>(cap);
    auto nodes = std::make_unique<PoolNode*[]>(cap);
    for (std::size_t i = 0; i < cap; ++i) nodes[i] = &tokens_[i];
    pool_.init(nodes.get(), cap);
    for (std::size_t k = 1; k <= S; ++k)
      if (modes_[k] != StageMode::Parallel) gates_[k].init(cap);
  }
  PipeRun(const PipeRun&) = delete;
  PipeRun& operator=(const PipeRun&) = delete;
  ~PipeRun() { sweep(); }

  // After the group joined (or before anything ran): destroys the items left in tokens
  // (dropped while parked, or when a spawn failed).
  void sweep() noexcept {
    for (std::size_t i = 0; i < cap_; ++i)
      if (tokens_[i].held >= 0) drop(&tokens_[i]);
  }

  void set_group(TaskGroup* g) noexcept { group_ = g; }
  LoopState& state() noexcept { return st_; }

  // The body of every task of the pipeline (and of the caller, for the first item).
  void drive(PipeWork w) noexcept {
    if (w.stage == kHint) {
      // release: pairs with leave_hint()'s exchange; a new hint may be left from now on.
      hint_.store(false, std::memory_order_release);
      w.stage = 0;
    }
    for (unsigned walks = 0; w.stage != PipeWork::kNone;) {
      if (w.tok != nullptr) {
        w = kResume[w.stage](*this, w);
      } else if (++walks <= kWalksPerTask) {
        Token* t = make_item();
        w = t != nullptr ? arrive<1>(t) : none();
      } else {
        // Enough items for one task: the rest in a new one, so that a pipeline's task stays
        // as short as any (deadlines, group shares, the worker's other queues).
        spawn(source());
        return;
      }
    }
  }

 private:
  static constexpr PipeWork none() noexcept { return {nullptr, 0, PipeWork::kNone}; }
  static constexpr PipeWork source() noexcept { return {nullptr, 0, 0}; }
  static constexpr unsigned kHint = PipeWork::kNone - 1;  // a pending task that runs the source
  static constexpr unsigned kWalksPerTask = 64;           // items one task starts at most

  void spawn(PipeWork w) noexcept {
    try {
      group_->run([this, w] { drive(w); });
    } catch (...) {
      st_.fail(std::current_exception());  // a parked item stays for sweep(); the source is not run again
    }
  }

  // The stop flag, and the stop token, which the first to see it turns into the flag.
  bool stopped() noexcept {
    // relaxed: a hint (LoopState).
    if (st_.stop.load(std::memory_order_relaxed)) [[unlikely]]
      return true;
    if (stop_ != nullptr && stop_->stop_requested()) [[unlikely]] {
      // relaxed: only one of the threads that see the token records the cancellation.
      if (!token_seen_.exchange(true, std::memory_order_relaxed))
        st_.fail(std::make_exception_ptr(Cancelled("run_pipeline: its stop token asked it to stop")));
      st_.stop.store(true, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  template <std::size_t K>
  static void destroy_as(Token* t) noexcept {
    std::launder(reinterpret_cast<T<K>*>(t->buf))->~T<K>();
  }
  template <std::size_t... K>
  static constexpr auto destroyers(std::index_sequence<K...>) {
    return std::array<void (*)(Token*) noexcept, S>{&destroy_as<K>...};
  }
  static constexpr auto kDestroy = destroyers(std::make_index_sequence<S>{});

  static void drop(Token* t) noexcept {
    if (t->held < 0) return;
    const int k = t->held;
    t->held = -1;
    kDestroy[static_cast<std::size_t>(k)](t);
  }

  // Makes one item, if a token is free and nobody else is calling the source. Null: none
  // made (none free, the lock taken, or the source ended). One item per hold of the lock:
  // an item made is walked at once, never held back behind another of the same thread (a
  // stage that waits for a later item would wait for ever).
  Token* make_item() noexcept {
    for (;;) {
      if (!pool_.try_lock_briefly()) {
        if (pool_.any_free()) return nullptr;  // the holder sees them when it lets go (P3)
        // None free: ask the next giver for a task, then look once more (seq_cst store then
        // seq_cst load, against give_back()'s count then load of starved_: one of us sees the
        // other).
        starved_.store(true, std::memory_order_seq_cst);
        if (pool_.any_free_now()) continue;
        return nullptr;
      }
      if (src_done_ || stopped()) {
        pool_.unlock();
        return nullptr;  // ended: nobody needs to try again
      }
      if (!pool_.any_free()) {
        if (pool_.unlock()) continue;  // one came back meanwhile (P3)
        return nullptr;
      }
      Token* t = static_cast<Token*>(pool_.take());
      VITTE_ASSERT(t->held == -1, "a free token still holds an item");
      PipelineStop ps;
      try {
        T<0> item = std::get<0>(fns_)(ps);
        if (ps.is_done()) {
          pool_.untake(t);
          src_done_ = true;
          pool_.unlock();
          return nullptr;
        }
        ::new (static_cast<void*>(t->buf)) T<0>(std::move(item));
        t->held = 0;
      } catch (...) {
        pool_.untake(t);
        src_done_ = true;
        pool_.unlock();
        st_.fail(std::current_exception());
        return nullptr;
      }
      t->seq = next_seq_++;
      // More tokens are free: leave a task that makes the next item, for an idle worker to
      // take (one at a time; a worker that frees a token tries the source itself first).
      if (pool_.unlock()) leave_hint();
      return t;
    }
  }

  // `t` left the sink: its token is free again. A thread that found none free (and went on
  // to other work) gets a task to come back for it.
  void give_back(Token* t) noexcept {
    pool_.give(t);
    // seq_cst load: after give()'s seq_cst count (see make_item). relaxed load first: the
    // flag is read-mostly.
    if (starved_.load(std::memory_order_seq_cst) && starved_.exchange(false, std::memory_order_acq_rel))
      leave_hint();
  }
  void leave_hint() noexcept {
    // relaxed load: a first look; acq_rel exchange: one spawner per pending task, and
    // pairs with the task's store (release) when it starts.
    if (!hint_.load(std::memory_order_relaxed) && !hint_.exchange(true, std::memory_order_acq_rel))
      spawn({nullptr, 0, kHint});
  }

  // Item in `t` (a T_(K-1)) reaches stage K.
  template <std::size_t K>
  PipeWork arrive(Token* t) noexcept {
    if (modes_[K] == StageMode::Parallel) {
      if (!call<K>(t)) return none();
      if constexpr (K == S) {
        give_back(t);
        return source();  // the freed token drives the source (P3)
      } else {
        return arrive<K + 1>(t);
      }
    }
    const std::uint64_t id = modes_[K] == StageMode::SerialInOrder ? t->seq : gates_[K].ticket();
    if (!gates_[K].arrive(id, t)) return source();  // parked (the holder of id - 1 takes it): make another
    return holding<K>(t, id);
  }

  // Item in `t` holds stage K's gate for `id`.
  template <std::size_t K>
  PipeWork holding(Token* t, std::uint64_t id) noexcept {
    for (;;) {
      const bool ok = call<K>(t);
      Token* next = static_cast<Token*>(gates_[K].pass(id));
      if constexpr (K == S) {
        if (ok) give_back(t);
        if (next == nullptr) return source();  // the freed tokens drive the source (P3)
        t = next;  // the parked successor, inline
        ++id;
      } else {
        if (next != nullptr) spawn({next, id + 1, static_cast<unsigned>(K)});
        if (!ok) return none();
        return arrive<K + 1>(t);
      }
    }
  }

  template <std::size_t K>
  static PipeWork resume(PipeRun& r, PipeWork w) noexcept {
    static_assert(K > 0, "the source is run by drive()");
    return r.template holding<K>(static_cast<Token*>(w.tok), w.id);
  }
  template <std::size_t... K>
  static constexpr auto resumers(std::index_sequence<K...>) {
    return std::array<PipeWork (*)(PipeRun&, PipeWork) noexcept, S + 1>{nullptr, &resume<K + 1>...};
  }
  static constexpr auto kResume = resumers(std::make_index_sequence<S>{});

  // Calls stage K on the item in `t`. False: the item is gone (stopped, or the stage threw).
  template <std::size_t K>
  bool call(Token* t) noexcept {
    if (stopped()) {
      drop(t);
      return false;
    }
    VITTE_ASSERT(t->held == static_cast<int>(K) - 1, "a stage reached with another stage's item");
    T<K - 1>* in = std::launder(reinterpret_cast<T<K - 1>*>(t->buf));
    try {
      if constexpr (K == S) {
        std::get<K>(fns_)(std::move(*in));
        t->held = -1;
        in->~T<K - 1>();
      } else {
        T<K> out = std::get<K>(fns_)(std::move(*in));
        t->held = -1;
        in->~T<K - 1>();
        ::new (static_cast<void*>(t->buf)) T<K>(std::move(out));
        t->held = static_cast<int>(K);
      }
      return true;
    } catch (...) {
      st_.fail(std::current_exception());
      drop(t);
      return false;
    }
  }

  const std::size_t cap_;
  const std::array<StageMode, S + 1> modes_;
  std::tuple<Fns...> fns_;
  const std::stop_token* stop_;  // null: none that can stop
  std::unique_ptr<Token[]> tokens_;
  TaskGroup* group_ = nullptr;
  LoopState st_;
  std::atomic<bool> token_seen_{false};
  alignas(kCacheLine) std::atomic<bool> hint_{false};  // a task that runs the source is queued, not started
  alignas(kCacheLine) std::atomic<bool> starved_{false};  // a thread found no free token and left
  TokenPool pool_;
  std::array<SerialGate, S + 1> gates_;  // [0] unused (the source is ordered by the pool's lock)
  // The source lock's (P2): plain, handed over with the lock.
  std::uint64_t next_seq_ = 0;
  bool src_done_ = false;
};

}  // namespace detail
}  // namespace vitte

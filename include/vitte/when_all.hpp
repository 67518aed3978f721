// when_all / when_any: one future for many.
//
//   auto [n, s] = vitte::when_all(sched.async(count), sched.async(name)).get();  // a tuple
//   std::vector<vitte::Future<int>> parts = ...;
//   vitte::Future<std::vector<int>> all = vitte::when_all(std::move(parts));
//   vitte::WhenAnyResult<int> first = vitte::when_any(std::move(others)).get();
//
// Contract:
// - when_all(f...) -> Future<std::tuple<V...>>, V = T, or std::monostate for a Future<void>.
//   when_all(std::vector<Future<T>>) -> Future<std::vector<T>>, or Future<void> for T = void.
//   Ready once every input completed. If inputs failed, it fails with the first error (in
//   completion order), reported only once all inputs completed, so nothing it was given is
//   still running when it reports; their values are dropped. Of an empty vector (or of no
//   futures): ready at once, with an empty vector (tuple).
// - when_any(std::vector<Future<T>>), when_any(f, g, ...) (one T) -> Future<WhenAnyResult<T>>:
//   ready when the first input completes, with its index and value, or failed with its
//   error. The other inputs still run to the end; their results are dropped as they arrive
//   (nobody awaits them). when_any of no future is a UsageError.
// - Inputs are consumed (taken by value: pass std::move); an empty input is a UsageError
//   naming its position.
// - No thread blocks and no task runs per input: each input gets an intrusive continuation
//   on its slot (future.hpp), one atomic countdown counts their arrivals, and the last
//   arrival (for when_any: the first) queues one task that builds the result, with the
//   arriving thread's locality and counted like a then() continuation (future.hpp: where
//   it runs, accounting, shutdown). The result is bound to the first input's scheduler.
#pragma once

#include <atomic>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "vitte/future.hpp"

namespace vitte {

template <class T>
struct WhenAnyResult {
  std::size_t index;  // position of the first input to complete
  T value;
};
template <>
struct WhenAnyResult<void> {
  std::size_t index;
};

namespace detail {

template <class T>
using AllValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
template <class T>
using RangeAllValue = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

// One input's subscription to its future's slot.
struct GatherInput : Continuation {
  void* owner = nullptr;              // the Gather
  WaitCounter* error = nullptr;       // the input's counter, which holds its error
  ContinuationSlot* slot = nullptr;   // the input's slot
  std::size_t index = 0;
};

// The shared state of a when_all/when_any: the result future's state, the inputs'
// subscriptions and the countdown. Self (CRTP) holds the inputs' states and builds the
// result in run_task().
// Invariants:
//   W1  each input's ready() runs exactly once (C2): from its fulfiller, or from start()
//       when the input was ready already.
//   W2  remaining_ counts the inputs whose ready() has not finished. The ready() that takes
//       it to zero is the last one to touch inputs_ and the inputs' states: until then
//       neither is freed (when_any's winner task releases only the winner's state).
//   W3  self_ keeps the Gather alive while an input can still fire (the slot refers to
//       it; the result future may be dropped meanwhile); the last arrival moves it out
//       (when_all: into its task). start() runs under the caller's own reference.
//   W4  when_all: an input's error is recorded, and failed_ set, before its countdown
//       step (release); the last arrival's acquire makes them visible to the task.
//       when_any: won_ is claimed once; only the winner writes winner_ and queues the
//       task, which reads it after the queue's hand-off.
template <class Out, class Self>
class Gather : public FutureState<Out> {
 public:
  using result_type = Out;

  // Subscribes every input; the caller holds a Future on `g` across the call.
  static void start(std::shared_ptr<Self> g) noexcept {
    Self* s = g.get();
    const std::size_t n = s->inputs_.size();
    GatherInput* in = s->inputs_.data();
    s->self_ = std::move(g);  // W3; published to the fulfillers by subscribe's release
    for (std::size_t i = 0; i < n; ++i)
      if (!in[i].slot->subscribe(&in[i])) on_input(&in[i]);  // no access after the last one (W2)
  }

  // The task was refused (future.hpp: shutdown): fail rather than never complete.
  void abandon() noexcept {
    static_cast<Self*>(this)->release();
    this->counter.record_exception(std::make_exception_ptr(BrokenPromise(
        std::string(Self::kName) + ": the result could not be built: the scheduler had shut down (or was "
                                   "destroyed, or inherited through fork()) before its inputs completed")));
    complete(*this);
  }

 protected:
  Gather(CoreRef core, std::size_t n)
      : FutureState<Out>(core), inputs_(n), remaining_(n), region_(region_for(core.core)) {
    this->ends_walks = Self::kAny;  // F2: before bind() feeds the inputs
  }

  template <class T>
  void bind(std::size_t i, FutureState<T>& input) noexcept {
    GatherInput& in = inputs_[i];
    in.ready = &on_input;
    in.owner = static_cast<Gather*>(this);
    in.error = &input.counter;
    in.slot = &input.continuation;
    in.index = i;
    input.feed(this);  // F1: before start() subscribes
  }

  // when_all's arrival.
  void arrive_all(GatherInput& in) noexcept {
    if (std::exception_ptr e = in.error->take_error()) {
      failed_.store(true, std::memory_order_relaxed);  // W4: ordered by remaining_ below
      this->counter.record_exception(std::move(e));    // the first recorded wins
    }
    // acq_rel: release publishes this arrival (W4) and, through the input's own
    // make_ready, its value; the last arrival's acquire sees every earlier one.
    const std::size_t left = remaining_.fetch_sub(1, std::memory_order_acq_rel);
    VITTE_ASSERT(left >= 1, "W1: more arrivals than inputs");
    if (left != 1) return;  // W2: the last arrival may free the inputs from here on
    queue_task(std::move(self_));
  }

  // when_any's arrival.
  void arrive_any(GatherInput& in) noexcept {
    // relaxed: the RMW alone picks one winner (W4).
    if (!won_.exchange(true, std::memory_order_relaxed)) {
      winner_ = in.index;
      queue_task(self_);  // a copy: later arrivals still need self_ (W3)
    } else {
      static_cast<Self*>(this)->drop(in.index);  // nobody awaits a later result
    }
    // acq_rel: the last arrival's acquire orders its release of self_ after every other
    // arrival's use of it (the winner's copy included).
    const std::size_t left = remaining_.fetch_sub(1, std::memory_order_acq_rel);
    VITTE_ASSERT(left >= 1, "W1: more arrivals than inputs");
    if (left != 1) return;
    std::shared_ptr<Self> last = std::move(self_);  // may free *this on return
  }

  std::vector<GatherInput> inputs_;
  std::atomic<std::size_t> remaining_;
  std::atomic<bool> failed_{false};  // when_all
  std::atomic<bool> won_{false};     // when_any
  std::size_t winner_ = 0;           // when_any, written by the winner alone
  std::shared_ptr<Self> self_;       // W3

 private:
  static void on_input(Continuation* c) noexcept {
    auto* in = static_cast<GatherInput*>(c);
    static_cast<Self*>(static_cast<Gather*>(in->owner))->arrive(*in);
  }

  void queue_task(std::shared_ptr<Self> s) noexcept {
    SchedulerCore* core = this->core;  // read before the push: the task may free *this
    const std::uint64_t live = this->live;
    const std::uint64_t region = region_;
    const FutureCore* joins = this;
    queue_continuation(core, live, ContinuationTask<Self>(std::move(s)), region, joins);
  }

  std::uint64_t region_;
};

// The scheduler a gather runs its task on: the first input's that has one.
inline CoreRef first_core(std::initializer_list<CoreRef> cores) noexcept {
  for (const CoreRef& c : cores)
    if (c.core != nullptr) return c;
  return bound_ref(nullptr, 0);
}
template <class T>
CoreRef first_core(const std::vector<std::shared_ptr<FutureState<T>>>& states) noexcept {
  for (const auto& s : states)
    if (s->core != nullptr) return {s->core, s->live};
  return bound_ref(nullptr, 0);
}

[[noreturn]] inline void throw_empty_input(const char* what, std::size_t i) {
  throw UsageError(std::string(what) + ": input " + std::to_string(i) +
                   " is an empty future (moved from, already read, or consumed by then())");
}

// A gather over a vector of inputs of one type.
template <class Out, class Self, class T>
class RangeGather : public Gather<Out, Self> {
 public:
  explicit RangeGather(std::vector<std::shared_ptr<FutureState<T>>> src)
      : Gather<Out, Self>(first_core(src), src.size()), src_(std::move(src)) {
    for (std::size_t i = 0; i < src_.size(); ++i) this->bind(i, *src_[i]);
  }

 protected:
  std::vector<std::shared_ptr<FutureState<T>>> src_;
};

template <class T>
class RangeAll final : public RangeGather<RangeAllValue<T>, RangeAll<T>, T> {
  friend Gather<RangeAllValue<T>, RangeAll<T>>;
  using RangeGather<RangeAllValue<T>, RangeAll<T>, T>::src_;

 public:
  static constexpr const char* kName = "when_all()";
  static constexpr bool kAny = false;
  using RangeGather<RangeAllValue<T>, RangeAll<T>, T>::RangeGather;
  void run_task(std::shared_ptr<RangeAll>&) noexcept {
    if constexpr (!std::is_void_v<T>) {
      if (!this->failed_.load(std::memory_order_relaxed)) {  // W4
        try {
          std::vector<T> out;
          out.reserve(src_.size());
          for (auto& s : src_) out.push_back(std::move(*s->value));
          this->value.emplace(std::move(out));
        } catch (...) {
          this->counter.record_exception(std::current_exception());
        }
      }
    }
    release();
    complete_in_strand(*this);
  }

 private:
  void arrive(GatherInput& in) noexcept { this->arrive_all(in); }
  void release() noexcept {
    std::vector<std::shared_ptr<FutureState<T>>>().swap(src_);
    std::vector<GatherInput>().swap(this->inputs_);
  }
};

template <class... Ts>
class TupleAll final : public Gather<std::tuple<AllValue<Ts>...>, TupleAll<Ts...>> {
  using Base = Gather<std::tuple<AllValue<Ts>...>, TupleAll<Ts...>>;
  friend Base;

 public:
  static constexpr const char* kName = "when_all()";
  static constexpr bool kAny = false;
  TupleAll(CoreRef core, std::shared_ptr<FutureState<Ts>>... src)
      : Base(core, sizeof...(Ts)), src_(std::move(src)...) {
    bind_all(std::index_sequence_for<Ts...>{});
  }
  void run_task(std::shared_ptr<TupleAll>&) noexcept {
    if (!this->failed_.load(std::memory_order_relaxed)) {  // W4
      try {
        build(std::index_sequence_for<Ts...>{});
      } catch (...) {
        this->counter.record_exception(std::current_exception());
      }
    }
    release();
    complete_in_strand(*this);
  }

 private:
  template <std::size_t... I>
  void bind_all(std::index_sequence<I...>) noexcept {
    (this->bind(I, *std::get<I>(src_)), ...);
  }
  template <std::size_t... I>
  void build(std::index_sequence<I...>) {
    this->value.emplace(take<I>()...);
  }
  template <std::size_t I>
  auto take() {
    if constexpr (std::is_void_v<std::tuple_element_t<I, std::tuple<Ts...>>>)
      return std::monostate{};
    else
      return std::move(*std::get<I>(src_)->value);
  }
  void arrive(GatherInput& in) noexcept { this->arrive_all(in); }
  void release() noexcept { src_ = {}; }
  std::tuple<std::shared_ptr<FutureState<Ts>>...> src_;
};

template <class T>
class RangeAny final : public RangeGather<WhenAnyResult<T>, RangeAny<T>, T> {
  friend Gather<WhenAnyResult<T>, RangeAny<T>>;
  using RangeGather<WhenAnyResult<T>, RangeAny<T>, T>::src_;

 public:
  static constexpr const char* kName = "when_any()";
  static constexpr bool kAny = true;
  using RangeGather<WhenAnyResult<T>, RangeAny<T>, T>::RangeGather;
  void run_task(std::shared_ptr<RangeAny>&) noexcept {
    const std::size_t i = this->winner_;  // W4: the winner's write, before its push
    std::shared_ptr<FutureState<T>> s = std::move(src_[i]);
    if (std::exception_ptr e = s->counter.take_error()) {
      this->counter.record_exception(std::move(e));
    } else {
      try {
        if constexpr (std::is_void_v<T>)
          this->value.emplace(WhenAnyResult<void>{i});
        else
          this->value.emplace(WhenAnyResult<T>{i, std::move(*s->value)});
      } catch (...) {
        this->counter.record_exception(std::current_exception());
      }
    }
    s.reset();
    complete_in_strand(*this);
  }

 private:
  void arrive(GatherInput& in) noexcept { this->arrive_any(in); }
  void drop(std::size_t i) noexcept { src_[i].reset(); }  // only input i's own arrival touches src_[i]
  void release() noexcept { src_[this->winner_].reset(); }
};

template <class T>
std::vector<std::shared_ptr<FutureState<T>>> take_all(const char* what, std::vector<Future<T>>& fs) {
  for (std::size_t i = 0; i < fs.size(); ++i)
    if (!fs[i].valid()) throw_empty_input(what, i);
  std::vector<std::shared_ptr<FutureState<T>>> src;
  src.reserve(fs.size());
  for (Future<T>& f : fs) src.push_back(FutureAccess::take(f));
  return src;
}

// Starts a gather and returns its future.
template <class G, class... A>
auto start_gather(A&&... args) {
  auto g = std::make_shared<G>(std::forward<A>(args)...);
  Future<typename G::result_type> out(g);
  G::start(std::move(g));
  return out;
}

}  // namespace detail

// A future of every input's value, in order (see the file comment).
template <class... Ts>
Future<std::tuple<detail::AllValue<Ts>...>> when_all(Future<Ts>... fs) {
  using Out = std::tuple<detail::AllValue<Ts>...>;
  if constexpr (sizeof...(Ts) == 0) {
    auto s = std::make_shared<detail::FutureState<Out>>(detail::bound_core(nullptr));
    s->value.emplace();
    detail::complete(*s);
    return Future<Out>(std::move(s));
  } else {
    const bool valid[] = {fs.valid()...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
      if (!valid[i]) detail::throw_empty_input("when_all()", i);
    const detail::CoreRef core =
        detail::first_core({detail::CoreRef{detail::FutureAccess::peek(fs)->core, detail::FutureAccess::peek(fs)->live}...});
    return detail::start_gather<detail::TupleAll<Ts...>>(core, detail::FutureAccess::take(fs)...);
  }
}

// A future of every input's value, in input order (Future<void> for void inputs).
template <class T>
Future<detail::RangeAllValue<T>> when_all(std::vector<Future<T>> fs) {
  if (fs.empty()) {
    auto s = std::make_shared<detail::FutureState<detail::RangeAllValue<T>>>(detail::bound_core(nullptr));
    if constexpr (!std::is_void_v<T>) s->value.emplace();
    detail::complete(*s);
    return Future<detail::RangeAllValue<T>>(std::move(s));
  }
  return detail::start_gather<detail::RangeAll<T>>(detail::take_all("when_all()", fs));
}

// A future of the first input to complete: its index and value, or its error.
template <class T>
Future<WhenAnyResult<T>> when_any(std::vector<Future<T>> fs) {
  if (fs.empty()) throw UsageError("when_any() of no future: nothing could ever complete it");
  return detail::start_gather<detail::RangeAny<T>>(detail::take_all("when_any()", fs));
}

template <class T, class... Rest>
  requires(std::is_same_v<T, Rest> && ...)
Future<WhenAnyResult<T>> when_any(Future<T> first, Future<Rest>... rest) {
  std::vector<Future<T>> fs;
  fs.reserve(1 + sizeof...(Rest));
  fs.push_back(std::move(first));
  (fs.push_back(std::move(rest)), ...);
  return when_any(std::move(fs));
}

}  // namespace vitte

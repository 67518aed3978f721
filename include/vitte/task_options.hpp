// TaskOptions: how any piece of work is to be run, one type for every way work enters the
// scheduler:
//
//   sched.submit(vitte::Task(fn), {.node = 1});
//   vitte::TaskGroup g(sched, {.group = build, .name = "lex"});
//   vitte::spawn(fn, {.priority = vitte::Priority::High});        // inside a task
//   sched.async(fn, {.deadline = 5ms});
//   std::move(fut).then(fn, {.group = ide});
//   vitte::parallel_for(sched, 0, n, 64, fn, {.group = pass});
//   sched.start(serve(), {.group = ide});                          // a coroutine
//   co_await vitte::reschedule({.priority = vitte::Priority::High}); // inside a coroutine
//   sched.run(graph, {.options = {.group = pass}});                 // a graph run
//   graph_task.options({.node = 0});                                // one graph task
//   sched.every(10ms, fn, {.deadline = 2ms, .name = "tick"});       // a timer
//
// Every field is unset by default (an empty optional, no group, an empty name), and unset
// means what the entry point does without options. Fields:
//   node      the NUMA node whose queue takes it (a node without CPUs: the nearest one
//             with workers): its injection queue, or its ReadyQueue for policy work.
//             Its workers run it, unless workers of other nodes run out of work of their
//             own and take it, after their patience, as they take any queued work (a
//             config's steal_scope = "node" forbids that). From a task the worker's own
//             node keeps it on the worker's deque, except for submit(), which always
//             queues. Unset: the calling worker's node, or the calling thread's home node.
//   group     the level of the scheduling tree it queues at (policy.hpp).
//   priority  High, Normal or Low at that level; other than Normal needs a Priority level.
//   deadline  > 0: it must finish within this of being queued (a timer's run: of its tick);
//             earliest deadline first, a late finish counted and reported.
//   name      labels its slices in a trace (trace.hpp) and counts its runs in its group's
//             metrics (GroupMetrics::named; the arena's when no group is given).
// A group, a priority or a deadline makes the work policy work (policy.hpp): it queues in
// its node's ReadyQueue instead of a deque. Node and name alone keep it plain.
//
// Options are checked when they are given (UsageError naming the entry point and the
// field): a node the topology lacks, a group of another scheduler, a priority the group's
// policy would not apply, a deadline that is not positive. An option that cannot apply to
// an entry point is refused there the same way, never ignored (coro.hpp: a coroutine takes
// no deadline).
#pragma once

#include <chrono>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "vitte/error.hpp"
#include "vitte/policy.hpp"

namespace vitte {

// A Group as TaskOptions names it (made implicitly from a Group): a reference, which does
// not keep the group alive.
class GroupRef {
 public:
  GroupRef() noexcept = default;
  GroupRef(const Group& g) noexcept : g_(&g) {}  // NOLINT: implicit, for `.group = g`
  // False for none, and for the arena (a default-constructed Group).
  explicit operator bool() const noexcept { return g_ != nullptr && static_cast<bool>(*g_); }
  const Group& group() const noexcept { return *g_; }

 private:
  const Group* g_ = nullptr;
};

// A name as TaskOptions holds it: its own copy, inline (see TaskOptions). UsageError for a
// name longer than kMax bytes, naming its length.
namespace detail {
// The offset of the first byte of `s` that does not start a well-formed UTF-8 sequence
// (no overlong forms, surrogates or code points above U+10FFFF); s.size() if none.
inline std::size_t invalid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return i;
    std::uint32_t cp = n == 1 ? c : c & (0x7fu >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto t = static_cast<unsigned char>(s[i + k]);
      if ((t >> 6) != 0x2) return i;
      cp = (cp << 6) | (t & 0x3fu);
    }
    const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n;
  }
  return i;
}
}  // namespace detail

class Name {
 public:
  static constexpr std::size_t kMax = 95;
  Name() noexcept = default;
  Name(std::string_view s) {  // NOLINT: implicit, for `.name = "lex"`
    if (s.size() > kMax)
      throw UsageError("TaskOptions::name of " + std::to_string(s.size()) + " bytes (\"" +
                       printable(s.substr(0, 24)) + "...\"): a name holds at most " + std::to_string(kMax));
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      // A name goes into traces and Prometheus labels as it is: no control characters.
      if (c < 0x20 || c == 0x7f)
        throw UsageError("TaskOptions::name \"" + printable(s) + "\": control character " + std::to_string(c) +
                         " at position " + std::to_string(i) + " (a name is shown in traces and metrics as it is)");
      chars_[i] = s[i];
    }
    if (const std::size_t bad = detail::invalid_utf8(s); bad != s.size())
      throw UsageError("TaskOptions::name \"" + printable(s) + "\": not UTF-8 at byte " + std::to_string(bad) +
                       " (a name is written into JSON traces and Prometheus labels, which are UTF-8)");
    size_ = static_cast<unsigned char>(s.size());
  }
  Name(const char* s) : Name(std::string_view(s)) {}          // NOLINT: implicit
  Name(const std::string& s) : Name(std::string_view(s)) {}   // NOLINT: implicit
  std::string_view view() const noexcept { return {chars_, size_}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit
  bool empty() const noexcept { return size_ == 0; }

 private:
  // `s` with each control character and each byte above 0x7f written as \xNN, for a
  // message (which may cut a name inside a UTF-8 sequence).
  static std::string printable(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f)
        out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      else
        out += ch;
    }
    return out;
  }
  char chars_[kMax]{};
  unsigned char size_ = 0;
};

// Trivially destructible on purpose: GCC 12 (Debian 12's compiler) destroys an aggregate
// temporary twice when a call in a co_await expression makes one whose members have
// destructors, so `co_await sched.async(fn, {.name = "lex"})` would free a std::string
// twice. The name is therefore copied inline (Name), and the group is a reference
// (GroupRef): the Group it names must outlive the call that takes the options (which
// keeps its own hold on the group where it needs one).
struct TaskOptions {
  std::optional<unsigned> node{};
  GroupRef group{};
  std::optional<Priority> priority{};
  std::optional<std::chrono::nanoseconds> deadline{};
  Name name{};

  // True when nothing is set: the entry point behaves as without options.
  bool empty() const noexcept { return !node && !group && !priority && !deadline && name.empty(); }
};
static_assert(std::is_trivially_destructible_v<TaskOptions>);

}  // namespace vitte

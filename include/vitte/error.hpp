// Errors the runtime reports. Every message names the culprit (the file, the key, the
// value, the argument) and says what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace vitte {

// Base of every error vitte-scheduler throws itself.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A topology could not be loaded: a missing or malformed XML file, a bad synthetic string.
class TopologyError : public Error {
 public:
  using Error::Error;
};

// A worker plan cannot be built as asked (0 workers, more pinned workers than PUs, ...).
class PlanError : public Error {
 public:
  using Error::Error;
  PlanError(const std::string& what, std::string key) : Error(what), key_(std::move(key)) {}
  // The config key the error is about (e.g. "workers.nodes"), or "" when none is; lets a
  // Config point at the line that set it.
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

// A placement config is malformed or invalid: the message names the file, line, key and
// value.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A bounded scheduler (Options::max_backlog, BacklogFull::Fail) refused an external
// submission because the node's backlog is full; the task was not queued (submit() leaves
// it in the Task).
class BacklogFull;

// The scheduler cannot do what was asked in its current state (submit after shutdown,
// join_all from inside one of its own tasks, ...).
class UsageError : public Error {
 public:
  using Error::Error;
};

class BacklogFull : public Error {
 public:
  using Error::Error;
};

// Work called off instead of done. A suspended coroutine resumes with it from the co_await
// that was interrupted (sleep_for, a Future, yield, schedule_on) when its stop token was
// triggered (a std::stop_source of the caller's, or a when_all/when_any sibling's failure
// or win) or the scheduler shut down while it slept; any task may throw it to say it
// stopped because it was told to. Cancellation is not failure (docs/errors.md): a task that
// ends with it counts as `cancelled`, not `failed`, and TaskGroup::wait(), join_all() and
// GraphRun::wait() rethrow it only when asked (Rethrow::ErrorsAndCancellations). A call
// that returns the work's result (Future::get, co_await, parallel_for, sync_wait) has no
// result to give and rethrows it.
class Cancelled : public Error {
 public:
  using Error::Error;
};

// What a join that returns no value rethrows once its work has ended: the first error (the
// default), or the first error and, when there was none, the first cancellation.
enum class Rethrow : unsigned char { Errors, ErrorsAndCancellations };

// A future's producer went away without a result: a Promise destroyed unsatisfied, or a
// then()/when_all()/when_any() continuation that could not run because its scheduler had
// already shut down (or was destroyed, or inherited through fork()). The message names
// which.
class BrokenPromise : public Error {
 public:
  using Error::Error;
};

// A wait that can never finish in a deterministic run (deterministic.hpp): every worker is
// idle, no timer is pending, and the awaited work is not done (or the wait lasted
// max_turns). The message names the seed and the turn. Thrown once per finding: the program may mend the
// cause (set the promise) and wait again. A scheduler destroyed while a task of it is
// blocked in such a wait is abandoned (its threads and memory are leaked, as nothing can
// unwind that task), with a line on stderr.
class Deadlock : public Error {
 public:
  using Error::Error;
};

}  // namespace vitte

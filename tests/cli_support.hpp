// Helpers for the tests of vitte-sched: run it (or a shell command around it) and capture
// what it prints; make small source trees for its main job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#ifndef VITTE_SCHED_BIN
#error "VITTE_SCHED_BIN must name the vitte-sched binary"
#endif

namespace vitte::clitest {

namespace fs = std::filesystem;

struct CliRun {
  int status;  // the exit status; -1 when killed by a signal
  std::string output;
};

// Runs `command` with /bin/sh and captures its stdout.
CliRun shell(const std::string& command);
// vitte-sched ARGS with stdout and stderr together; `env` (VAR=value ...) and `wrapper`
// (e.g. "taskset -c 0") go before it.
CliRun vitte_sched(const std::string& args, const std::string& env = "", const std::string& wrapper = "");

// stdout and stderr apart; `redirect` (e.g. ">/dev/full") replaces the captured stdout.
struct CliStreams {
  int status;
  std::string out, err;
};
CliStreams vitte_sched_streams(const std::string& args, const std::string& redirect = "");
// Runs vitte-sched with SIGPIPE ignored and stdout a pipe whose reading end is already
// closed, so that every write fails with EPIPE (no race with a reader).
CliStreams vitte_sched_into_closed_pipe(std::vector<std::string> args);

std::string slurp(const fs::path& p);
// A fresh directory of this process's own (mkdtemp), so that parallel runs never collide.
fs::path make_temp_dir(const std::string& tag);
// a.h -> b.h -> c.h, d/e.h -> "../a.h" and <c.h>; f.h includes nothing it can find.
fs::path make_tree();

}  // namespace vitte::clitest

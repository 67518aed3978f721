// The live view of vitte-sched top and run --live: what the scheduler did in each second,
// per node and per worker (docs/metrics.md, "Live view").
//
// A sampler thread takes Scheduler::metrics() about once a second and writes the
// difference with the previous snapshot as rates. On a terminal it redraws the screen in
// place (ANSI home + clear: no curses library); anywhere else it writes one plain
// key=value line per node per refresh, for grep and logs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "vitte/metrics.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::cli {

struct ViewStyle {
  bool terminal = false;  // redraw in place; otherwise plain lines
  unsigned columns = 80;  // the terminal's width: rows never wrap, columns are left out
};

// One refresh: the `interval_s` seconds from `earlier` to `later`, two raw snapshots of one
// scheduler (not differences: the view subtracts every field itself). `since_start`:
// seconds since the view started; `title`: the first line on a terminal (unused in plain
// lines).
std::string render_live(const MetricsSnapshot& earlier, const MetricsSnapshot& later, double interval_s,
                        double since_start, const ViewStyle& style, const std::string& title);

// The style for `out`: a terminal when it is one (isatty), as wide as it says (TIOCGWINSZ;
// else $COLUMNS; else 80).
ViewStyle style_of(std::FILE* out);

class LiveView {
 public:
  // Starts the sampler, which writes a frame to `out` every `period`; `title` is called
  // (on the sampler thread) for each terminal frame.
  LiveView(const Scheduler& sched, std::FILE* out, std::function<std::string()> title,
           std::chrono::milliseconds period = std::chrono::seconds(1));
  LiveView(const LiveView&) = delete;
  LiveView& operator=(const LiveView&) = delete;
  ~LiveView();
  // Writes a last frame for the time since the previous one and ends the sampler.
  void stop();

 private:
  void loop();

  const Scheduler& sched_;
  std::FILE* out_;
  std::function<std::string()> title_;
  std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // under mutex_
  std::thread thread_;
};

}  // namespace vitte::cli

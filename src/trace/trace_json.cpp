// vitte::Trace: the finished recording, and its export as Chrome/Perfetto trace-event JSON.
//
// Tracks: pid = node + 1 and tid = worker + 1 (trace viewers reserve 0 for the idle
// process and thread), named by metadata events "node N" and "worker W", sorted by node and
// worker. Timestamps are microseconds since start_trace() with three decimals: exact
// nanoseconds, so nested slices stay nested. A steal is a flow: "s" on the victim's track at
// the moment of the steal (bound to the slice enclosing it there: the task that spawned the
// stolen one, or whatever the victim ran then), "f" with "bp": "e" on the thief's track at
// the start of the stolen task's slice (bound to that slice). Both carry the same cat, name
// and id, as the format pairs them by all three.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "trace/trace_data.hpp"
#include "vitte/error.hpp"
#include "vitte/trace.hpp"

namespace vitte {

namespace {

using detail::TraceData;
using detail::TraceEvent;
using detail::TraceKind;
using detail::WorkerTrace;

// Length of the valid UTF-8 sequence at s[i], 0 if it is not one.
std::size_t utf8_length(const std::string& s, std::size_t i) noexcept {
  const auto b = static_cast<unsigned char>(s[i]);
  const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}

// A JSON string: quotes, backslashes and control characters escaped; bytes that are not
// UTF-8 (a file name can hold any) become U+FFFD, so that every parser accepts the file.
void append_string(std::string& out, const std::string& s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    const std::size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  out += '"';
}

// ns since the trace began, as microseconds with three decimals.
void append_us(std::string& out, std::int64_t ns) {
  if (ns < 0) {
    out += '-';
    ns = -ns;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000), static_cast<long long>(ns % 1000));
  out += buf;
}

void append_uint(std::string& out, std::uint64_t v) { out += std::to_string(v); }

struct Writer {
  const TraceData& d;
  std::string out;
  bool first = true;

  void open(const char* ph, const char* cat, unsigned worker) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"ph\":\"";
    out += ph;
    out += "\",\"cat\":\"";
    out += cat;
    out += "\",\"pid\":";
    append_uint(out, d.workers[worker].node + 1);
    out += ",\"tid\":";
    append_uint(out, d.workers[worker].index + 1);
  }
  void at(const char* key, std::int64_t ns) {
    out += ",\"";
    out += key;
    out += "\":";
    append_us(out, ns);
  }
  void name(const std::string& n) {
    out += ",\"name\":";
    append_string(out, n);
  }

  void metadata() {
    std::vector<bool> named(d.workers.size() + 1, false);
    for (unsigned w = 0; w < d.workers.size(); ++w) {
      const unsigned node = d.workers[w].node;
      if (node >= named.size()) named.resize(node + 1, false);
      if (!named[node]) {
        named[node] = true;
        open("M", "__metadata", w);
        out += ",\"name\":\"process_name\",\"args\":{\"name\":\"node " + std::to_string(node) + "\"}}";
        open("M", "__metadata", w);
        out += ",\"name\":\"process_sort_index\",\"args\":{\"sort_index\":" + std::to_string(node) + "}}";
      }
      open("M", "__metadata", w);
      out += ",\"name\":\"thread_name\",\"args\":{\"name\":\"worker " + std::to_string(d.workers[w].index) + "\"}}";
      open("M", "__metadata", w);
      out += ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":" + std::to_string(d.workers[w].index) + "}}";
    }
  }

  void event(unsigned w, const WorkerTrace& t, const TraceEvent& e) {
    static const std::string kTask = "task", kPark = "park", kWake = "wake", kSteal = "steal";
    const std::int64_t ts = d.ns_since_start(e.ts);
    switch (e.kind) {
      case TraceKind::Task:
        open("X", "task", w);
        name(e.name != 0 ? t.names.name(e.name) : kTask);
        break;
      case TraceKind::Graph:
        open("X", "graph", w);
        name(t.names.name(e.name));
        out += ",\"args\":{\"index\":";
        append_uint(out, e.arg);
        out += '}';
        break;
      case TraceKind::Park:
        open("X", "park", w);
        name(kPark);
        break;
      case TraceKind::Wake:
        open("i", "wake", w);
        name(kWake);
        out += ",\"s\":\"t\"";
        at("ts", ts);
        out += '}';
        return;
      case TraceKind::Steal:
        if (e.name < d.workers.size()) {
          open("s", "steal", e.name);
          name(kSteal);
          out += ",\"id\":";
          append_uint(out, e.arg);
          at("ts", d.ns_since_start(e.dur));
          out += '}';
        }
        open("f", "steal", w);
        name(kSteal);
        out += ",\"bp\":\"e\",\"id\":";
        append_uint(out, e.arg);
        at("ts", ts);
        out += '}';
        return;
    }
    // Both ends mapped from ticks, so that a slice nested in another stays inside it.
    at("ts", ts);
    at("dur", d.ns_since_start(e.ts + e.dur) - ts);
    out += '}';
  }

  void vitte_metadata() {
    std::uint64_t dropped = 0, names_dropped = 0;
    out += "\n],\n\"metadata\":{\"vitte\":{\"sample_every\":" + std::to_string(d.sample_every);
    out += ",\"events_per_worker\":" + std::to_string(d.events_per_worker);
    out += ",\"worker_count\":" + std::to_string(d.workers.size());
    out += std::string(",\"clock\":\"") + (d.tsc ? "tsc" : "steady_clock") + "\",\"duration_us\":";
    append_us(out, d.stop_ns - d.start_ns);
    out += ",\"plan_binding\":";
    append_string(out, d.binding);
    out += ",\"plan_binding_reason\":";
    append_string(out, d.binding_reason);
    out += ",\"topology\":";
    append_string(out, d.topology);
    out += ",\"workers\":[";
    for (std::size_t w = 0; w < d.workers.size(); ++w) {
      const TraceData::Worker& tw = d.workers[w];
      const WorkerTrace& t = *tw.trace;
      dropped += t.dropped;
      names_dropped += t.names.overflow;
      out += w == 0 ? "" : ",";
      out += "{\"worker\":" + std::to_string(tw.index) + ",\"node\":" + std::to_string(tw.node) +
             ",\"os_cpu\":" + std::to_string(tw.os_cpu) + ",\"tasks_run\":" + std::to_string(t.tasks_run) +
             ",\"task_slices\":" + std::to_string(t.task_slices) + ",\"events\":" + std::to_string(t.size) +
             ",\"dropped_events\":" + std::to_string(t.dropped) + "}";
    }
    out += "],\"dropped_events\":" + std::to_string(dropped);
    out += ",\"names_dropped\":" + std::to_string(names_dropped) + "}}}\n";
  }
};

std::uint64_t sum_over_workers(const TraceData* d, std::uint64_t WorkerTrace::*count) noexcept {
  std::uint64_t n = 0;
  if (d != nullptr)
    for (const TraceData::Worker& w : d->workers) n += (*w.trace).*count;
  return n;
}

}  // namespace

Trace::Trace() noexcept = default;
Trace::Trace(Trace&&) noexcept = default;
Trace& Trace::operator=(Trace&&) noexcept = default;
Trace::~Trace() = default;

std::string Trace::json() const {
  static const TraceData kEmpty;
  Writer w{data_ != nullptr ? *data_ : kEmpty, {}};
  std::size_t events = 0;
  for (const TraceData::Worker& tw : w.d.workers) events += tw.trace->size;
  w.out.reserve(160 * events + 4096);
  w.out += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
  w.metadata();
  for (unsigned i = 0; i < w.d.workers.size(); ++i) {
    const WorkerTrace& t = *w.d.workers[i].trace;
    for (std::size_t k = 0; k < t.size; ++k) w.event(i, t, t.events[k]);
  }
  w.vitte_metadata();
  return std::move(w.out);
}

void Trace::write(const std::string& path) const {
  const std::string doc = json();
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out.write(doc.data(), static_cast<std::streamsize>(doc.size()));
  if (out) out.close();
  if (!out)
    throw Error("cannot write the trace to '" + path + "'" + (errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
}

std::uint64_t Trace::task_slices() const noexcept { return sum_over_workers(data_.get(), &WorkerTrace::task_slices); }
std::uint64_t Trace::tasks_run() const noexcept { return sum_over_workers(data_.get(), &WorkerTrace::tasks_run); }
std::uint64_t Trace::dropped() const noexcept { return sum_over_workers(data_.get(), &WorkerTrace::dropped); }

unsigned Trace::sample_every() const noexcept { return data_ != nullptr ? data_->sample_every : 1; }

std::size_t Trace::workers() const noexcept { return data_ != nullptr ? data_->workers.size() : 0; }

}  // namespace vitte

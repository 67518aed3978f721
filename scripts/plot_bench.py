#!/usr/bin/env python3
"""Plots vitte-bench JSON runs (Google Benchmark's --benchmark_out) with matplotlib.

    build/benchmarks/vitte-bench --benchmark_out=run.json --benchmark_out_format=json
    python3 scripts/plot_bench.py run.json --out plots

Figures, each written as DIR/NAME.FORMAT for every format in --formats:
  time_per_task     time per task, one group of bars per kernel, one bar per runtime, at the
                    largest worker count in the input (--per-worker-count adds
                    time_per_task_threads<N> for every worker count). Seconds per task come
                    from the `per_task` counter, else from real_time / `tasks`; benchmarks with
                    neither are left out and named on stderr.
  speedup           per kernel and runtime: time per task at 1 worker / at N workers, against
                    the ideal line (for fixed-work kernels that is the ratio of run times).
  steal_distance    vitte benchmarks' steals by distance, stacked shares per benchmark, from
                    the counters steals_l3, steals_node and steals_remote_d<distance>.
  counters_<event>  one bar chart per event counter across benchmarks, from the user
                    counters ctr_<event> (the prefix for vitte-bench's counters; <event> with
                    every character outside [A-Za-z0-9_] replaced by _), papi_<event> and
                    perf_<event>, read as events per task and plotted as reported. Where a
                    benchmark carries the same event under two prefixes, ctr_ wins.
A figure whose data no benchmark carries is not drawn; stderr says why. A counter that a
benchmark does not report is left out of its figure, never drawn as zero.

Benchmarks are those named KERNEL/RUNTIME/threads:N[/...]. Repeated runs: the median
aggregate where the file has one, else the repetition with the median time. Several input
files are merged (e.g. a full run and a graph-only run); one benchmark in two files is an
error. Every figure carries the date and machine of the run(s) it comes from.

Exit status: 0 figures written; 1 nothing to plot, or matplotlib missing; 2 bad input.
"""
import argparse
import io
import json
import math
import os
import re
import sys
from collections import defaultdict

NAME = re.compile(r"^(?P<kernel>[^/]+)/(?P<runtime>[^/]+)/threads:(?P<threads>\d+)(?:/|$)")
TIME_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
STEAL = re.compile(r"^steals_(?:l3|node|remote_d(?P<distance>\d+))$")
EVENT = re.compile(r"^(?P<prefix>ctr|papi|perf)_(?P<event>.+)$")
EVENT_PREFIX_RANK = {"ctr": 0, "papi": 1, "perf": 1}
# Runtimes in a fixed order, so one runtime keeps its colour and slot in every figure.
RUNTIME_ORDER = ("vitte", "tbb", "omp", "asio")
FORMATS = ("png", "svg")
DPI = 100


class InputError(Exception):
    """Input that is not what the script reads; the message names the file."""


def note(msg):
    print(f"plot_bench: {msg}", file=sys.stderr)


class Bench:
    """One measured benchmark: kernel, runtime, workers, and the JSON entry it came from."""

    def __init__(self, kernel, runtime, threads, entry):
        self.kernel, self.runtime, self.threads, self.entry = kernel, runtime, threads, entry

    @property
    def label(self):
        return f"{self.kernel}/{self.runtime}/threads:{self.threads}"

    def seconds_per_task(self):
        """Wall seconds per task, or None where the benchmark counts no tasks."""
        e = self.entry
        if number(e.get("per_task")) is not None:
            return float(e["per_task"])
        tasks = number(e.get("tasks"))
        if tasks is not None and tasks > 0:
            return e["real_time"] * TIME_UNIT_S[e["time_unit"]] / tasks
        return None


def number(v):
    """v as a finite float, or None for anything else (a string, NaN, inf): not measured."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def load_run(path):
    """The context and chosen entries of one JSON file; InputError names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if (not isinstance(run, dict) or not isinstance(run.get("context"), dict)
            or not isinstance(run.get("benchmarks"), list)):
        raise InputError(f"{path}: not Google Benchmark JSON (no 'context' object and "
                         f"'benchmarks' list; write it with --benchmark_out_format=json)")
    groups = defaultdict(list)  # (kernel, runtime, threads) -> entries
    ignored = []
    for e in run["benchmarks"]:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise InputError(f"{path}: a 'benchmarks' entry without a name")
        # Aggregates' names end in _median etc.; their run_name is the benchmark's own.
        run_name = e.get("run_name")
        m = NAME.match(run_name if isinstance(run_name, str) else e["name"])
        if not m:
            ignored.append(e["name"])
            continue
        if e.get("error_occurred"):
            note(f"{path}: {e['name']} reported an error ({e.get('error_message', '?')}); left out")
            continue
        if e.get("run_type") == "aggregate" and e.get("aggregate_name") != "median":
            continue  # means, deviations: the median stands for the repetitions
        if number(e.get("real_time")) is None or e.get("time_unit") not in TIME_UNIT_S:
            raise InputError(f"{path}: {e['name']}: no real_time with a time_unit of "
                             f"{', '.join(TIME_UNIT_S)}")
        groups[(m["kernel"], m["runtime"], int(m["threads"]))].append(e)
    if ignored:
        note(f"{path}: {len(ignored)} benchmark(s) not named KERNEL/RUNTIME/threads:N left out, "
             f"e.g. {ignored[0]}")
    chosen = {}
    for key, entries in groups.items():
        medians = [e for e in entries if e.get("run_type") == "aggregate"]
        if medians:
            chosen[key] = medians[0]
        else:
            entries.sort(key=lambda e: e["real_time"] * TIME_UNIT_S[e["time_unit"]])
            chosen[key] = entries[(len(entries) - 1) // 2]
    return run["context"], chosen


def load_all(paths):
    """Every file's benches merged, and one provenance line per file."""
    benches, seen, provenance = [], {}, []
    for path in paths:
        ctx, chosen = load_run(path)
        provenance.append(f"{os.path.basename(path)}: {ctx.get('date', 'date?')}, host "
                          f"{ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
                          f"{ctx.get('mhz_per_cpu', '?')} MHz")
        for (kernel, runtime, threads), e in chosen.items():
            b = Bench(kernel, runtime, threads, e)
            if b.label in seen:
                raise InputError(f"{path}: {b.label} is also in {seen[b.label]}; "
                                 f"give each benchmark once")
            seen[b.label] = path
            benches.append(b)
    return benches, provenance


def runtime_key(runtime):
    """Known runtimes first, in RUNTIME_ORDER, then the others by name."""
    if runtime in RUNTIME_ORDER:
        return (RUNTIME_ORDER.index(runtime), "")
    return (len(RUNTIME_ORDER), runtime)


def runtime_order(runtimes):
    return sorted(set(runtimes), key=runtime_key)


# --- the data of each figure, kept apart from drawing so the test can check it -------------

def time_per_task_data(benches, threads):
    """{kernel: {runtime: seconds per task}} at `threads` workers."""
    data = defaultdict(dict)
    for b in benches:
        s = b.seconds_per_task()
        if b.threads == threads and s is not None:
            data[b.kernel][b.runtime] = s
    return dict(data)


def speedup_data(benches):
    """{kernel: {runtime: [(workers, speedup)]}} for kernels measured at 1 worker and more."""
    per = defaultdict(dict)  # (kernel, runtime) -> {threads: seconds per task}
    for b in benches:
        s = b.seconds_per_task()
        if s is not None and s > 0:
            per[(b.kernel, b.runtime)][b.threads] = s
    data = defaultdict(dict)
    for (kernel, runtime), times in per.items():
        if 1 in times and len(times) > 1:
            data[kernel][runtime] = [(n, times[1] / times[n]) for n in sorted(times)]
    return dict(data)


def steal_rank(counter):
    """Nearest first: same L3, same node, then remote bins by NUMA distance."""
    if counter == "steals_l3":
        return (0, 0)
    if counter == "steals_node":
        return (1, 0)
    return (2, int(STEAL.match(counter)["distance"]))


def steal_bins(entry):
    """{counter: steals} of the steal counters the entry carries, nearest first."""
    found = {k: number(v) for k, v in entry.items() if STEAL.match(k)}
    return {k: found[k] for k in sorted(found, key=steal_rank) if found[k] is not None}


def steal_data(benches):
    """[(label, {bin: steals})] for the vitte benchmarks that carry steal counters."""
    rows = [(f"{b.kernel}/threads:{b.threads}", steal_bins(b.entry))
            for b in sorted(benches, key=lambda b: (b.kernel, b.threads)) if b.runtime == "vitte"]
    return [(label, bins) for label, bins in rows if bins]


def counter_data(benches):
    """{event (file-safe): [(bench, value, counter name)]}, only benchmarks that report it."""
    data = defaultdict(list)
    for b in sorted(benches, key=lambda b: (b.kernel, runtime_key(b.runtime), b.threads)):
        best = {}  # event -> (rank, counter name)
        for k in b.entry:
            m = EVENT.match(k)
            if m and number(b.entry[k]) is not None:
                event = re.sub(r"[^A-Za-z0-9_]", "_", m["event"])
                cand = (EVENT_PREFIX_RANK[m["prefix"]], k)
                best[event] = min(best.get(event, cand), cand)
        for event, (_, k) in best.items():
            data[event].append((b, float(b.entry[k]), k))
    return dict(data)


# --- drawing -------------------------------------------------------------------------------

def spans_decades(values):
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and len(pos) > 1 and max(pos) / min(pos) >= 10


def colours(runtimes, plt):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = runtime_order(set(runtimes) | set(RUNTIME_ORDER))
    return {r: cycle[order.index(r) % len(cycle)] for r in runtimes}


def fmt_ns(ns):
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def finish(fig, plt, provenance, out, name, formats, written, top_in=0.0):
    """Puts the run's provenance under the figure, then saves it in every format.

    top_in: inches kept free above the axes (for a figure-wide title and legend)."""
    height = fig.get_figheight()
    fig.text(0.01, 0.04 / height, "\n".join(provenance), fontsize=7, color="0.35",
             va="bottom", ha="left")
    fig.tight_layout(rect=(0, (0.08 + 0.13 * len(provenance)) / height, 1, 1 - top_in / height))
    for fmt in formats:
        path = os.path.join(out, f"{name}.{fmt}")
        if fmt == "png":
            # The PNGs live in the repository and are re-rendered with every dated run: a
            # 128-colour palette keeps them about a quarter of matplotlib's RGBA size, with no
            # visible loss on flat-coloured plots.
            from PIL import Image  # checked by import_pyplot
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI)
            buf.seek(0)
            Image.open(buf).convert("RGB").quantize(colors=128).save(path, optimize=True)
        else:
            # No date in the metadata: an SVG re-rendered from the same JSON stays the same.
            fig.savefig(path, format=fmt, metadata={"Date": None})
        written.append(path)
    plt.close(fig)


def plot_time_per_task(data, threads, plt, provenance, out, name, formats, written):
    kernels = sorted(data)
    runtimes = runtime_order({r for k in kernels for r in data[k]})
    colour = colours(runtimes, plt)
    widest = max(len(data[k]) for k in kernels)
    width = 0.8 / widest
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(kernels) + 2), 4.6))
    values = []
    for i, k in enumerate(kernels):
        present = [r for r in runtimes if r in data[k]]
        for j, r in enumerate(present):
            x = i + (j - (len(present) - 1) / 2) * width
            ns = data[k][r] * 1e9
            values.append(ns)
            ax.bar(x, ns, width, color=colour[r])
            ax.annotate(fmt_ns(ns), (x, ns), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6, rotation=90)
    if spans_decades(values):
        ax.set_yscale("log")
    ax.margins(y=0.15)
    ax.set_xticks(range(len(kernels)), kernels, rotation=30, ha="right")
    ax.set_ylabel("time per task, ns" + (" (log scale)" if spans_decades(values) else ""))
    ax.set_title(f"Time per task at {threads} worker{'s' if threads != 1 else ''} (lower is better)")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colour[r]) for r in runtimes],
              labels=runtimes, fontsize=8)
    finish(fig, plt, provenance, out, name, formats, written)


def plot_speedup(data, plt, provenance, out, formats, written):
    kernels = sorted(data)
    runtimes = runtime_order({r for k in kernels for r in data[k]})
    colour = colours(runtimes, plt)
    ncols = min(5, len(kernels))
    nrows = math.ceil(len(kernels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols + 0.4, 1.9 * nrows + 0.9),
                             squeeze=False)
    for i, (ax, k) in enumerate(zip(axes.flat, kernels)):
        workers = sorted({n for r in data[k] for n, _ in data[k][r]})
        ax.plot([1, workers[-1]], [1, workers[-1]], "--", color="0.6", lw=1)
        for r in runtimes:
            if r in data[k]:
                ax.plot(*zip(*data[k][r]), "o-", color=colour[r], ms=3)
        ax.set_title(k, fontsize=8)
        ax.set_xticks(workers)
        ax.tick_params(labelsize=6)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("workers", fontsize=7, labelpad=1)
        if i % ncols == 0:
            ax.set_ylabel("speedup over 1 worker", fontsize=7)
    for ax in axes.flat[len(kernels):]:
        ax.set_visible(False)
    fig.suptitle("Speedup against workers: time per task at 1 worker / at N", fontsize=10,
                 x=0.01, ha="left")
    fig.legend(handles=[plt.Line2D([], [], color=colour[r], marker="o", ms=3) for r in runtimes]
               + [plt.Line2D([], [], color="0.6", ls="--")],
               labels=runtimes + ["ideal"], loc="upper right", fontsize=7, ncol=len(runtimes) + 1)
    finish(fig, plt, provenance, out, "speedup", formats, written, top_in=0.25)


def steal_bin_label(k):
    if k == "steals_l3":
        return "same L3"
    if k == "steals_node":
        return "same node, other L3"
    return f"remote, distance {STEAL.match(k)['distance']}"


def plot_steals(rows, plt, provenance, out, formats, written):
    names = sorted({k for _, bins in rows for k in bins}, key=steal_rank)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(rows) + 2.5), 4.6))
    cmap = plt.get_cmap("viridis")
    for i, (_, bins) in enumerate(rows):
        total = sum(bins.values())
        bottom = 0.0
        for j, k in enumerate(names):
            # A bin the benchmark does not report gets no segment, rather than a zero.
            if k in bins and total > 0:
                share = 100 * bins[k] / total
                ax.bar(i, share, 0.7, bottom=bottom, color=cmap(j / max(1, len(names) - 1)))
                bottom += share
        count = f"{total:,.0f}" if total >= 10 else f"{total:.3g}"
        ax.annotate(f"{count} steals" if total > 0 else "no steals", (i, bottom),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0, 108)
    ax.set_yticks(range(0, 101, 20))
    ax.set_xticks(range(len(rows)), [label for label, _ in rows], rotation=30, ha="right")
    ax.set_ylabel("share of the benchmark's steals (%)")
    ax.set_title("vitte: steals by distance between thief and victim")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=cmap(j / max(1, len(names) - 1)))
                       for j in range(len(names))],
              labels=[steal_bin_label(k) for k in names], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1))
    finish(fig, plt, provenance, out, "steal_distance", formats, written)


def plot_counter(event, rows, unmeasured, plt, provenance, out, formats, written):
    runtimes = runtime_order({b.runtime for b, _, _ in rows})
    colour = colours(runtimes, plt)
    values = [v for _, v, _ in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2.5), 4.6))
    ax.bar(range(len(rows)), values, 0.7, color=[colour[b.runtime] for b, _, _ in rows])
    if spans_decades(values):
        ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [b.label for b, _, _ in rows], rotation=40, ha="right",
                  fontsize=7)
    counters = sorted({k for _, _, k in rows})
    ax.set_ylabel(f"{event} per task")
    ax.set_title(f"{event} per task\nfrom {', '.join(counters)}"
                 + (f"\n{unmeasured} benchmark(s) without it left out" if unmeasured else ""),
                 fontsize=9)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colour[r]) for r in runtimes],
              labels=runtimes, fontsize=8)
    finish(fig, plt, provenance, out, f"counters_{event}", formats, written)


def import_pyplot():
    try:
        import matplotlib
        import PIL  # noqa: F401 (finish() quantizes PNGs; python3-matplotlib depends on it)
    except ImportError:
        note(f"matplotlib is not importable by {sys.executable}: run scripts/setup.sh, which "
             f"installs Debian's python3-matplotlib (for /usr/bin/python3)")
        sys.exit(1)
    matplotlib.use("Agg")  # headless: no display on build machines
    import matplotlib.pyplot as plt
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable SVGs
    plt.rcParams["svg.hashsalt"] = "vitte-bench"  # stable ids between renders
    return plt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="+", help="Google Benchmark JSON from --benchmark_out")
    parser.add_argument("--out", required=True, help="folder for the figures (created)")
    parser.add_argument("--formats", default="png,svg", help="comma-separated: png, svg")
    parser.add_argument("--per-worker-count", action="store_true",
                        help="also time_per_task_threads<N> for every worker count")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        parser.error(f"--formats: {', '.join(bad) or 'none given'}; choose from {', '.join(FORMATS)}")
    try:
        benches, provenance = load_all(args.json)
    except InputError as e:
        note(str(e))
        return 2
    plt = import_pyplot()
    os.makedirs(args.out, exist_ok=True)
    written = []

    no_tasks = sorted({b.kernel for b in benches if b.seconds_per_task() is None})
    if no_tasks:
        note(f"time per task: no per_task or tasks counter, left out: {', '.join(no_tasks)}")
    workers = sorted({b.threads for b in benches if b.seconds_per_task() is not None})
    if workers:
        plot_time_per_task(time_per_task_data(benches, workers[-1]), workers[-1], plt, provenance,
                           args.out, "time_per_task", formats, written)
        for n in workers if args.per_worker_count else []:
            plot_time_per_task(time_per_task_data(benches, n), n, plt, provenance, args.out,
                               f"time_per_task_threads{n}", formats, written)
    else:
        note("time per task: not drawn, no benchmark counts tasks")

    speedups = speedup_data(benches)
    if speedups:
        plot_speedup(speedups, plt, provenance, args.out, formats, written)
    else:
        note("speedup: not drawn, no kernel was measured at 1 worker and at more")

    steals = steal_data(benches)
    if steals:
        plot_steals(steals, plt, provenance, args.out, formats, written)
    else:
        note("steal distance: not drawn, no vitte benchmark carries steals_l3, steals_node "
             "or steals_remote_d<distance> counters")

    counters = counter_data(benches)
    if not counters:
        note("event counters: not drawn, no benchmark carries ctr_, papi_ or perf_ counters")
    for event, rows in sorted(counters.items()):
        plot_counter(event, rows, len(benches) - len(rows), plt, provenance, args.out, formats,
                     written)

    for path in written:
        print(path)
    if not written:
        note("nothing to plot")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

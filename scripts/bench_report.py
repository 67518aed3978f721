#!/usr/bin/env python3
"""Turns one vitte-bench JSON run into a Markdown table of ratios.

Every row compares runtimes measured in the same process and run, so ratios are
meaningful even where absolute times are not comparable across machines or days.

    build/benchmarks/vitte-bench --benchmark_out=run.json --benchmark_out_format=json
    python3 scripts/bench_report.py run.json
"""
import json
import re
import sys
from collections import defaultdict

NAME = re.compile(r"^(?P<kernel>[^/]+)/(?P<runtime>[^/]+)/threads:(?P<threads>\d+)")


def main(path):
    with open(path) as f:
        run = json.load(f)
    rows = defaultdict(dict)
    cv = {}  # (kernel, threads, runtime) -> coefficient of variation of the repetitions
    for b in run["benchmarks"]:
        m = NAME.match(b["name"])
        if not m:
            continue
        if b.get("error_occurred"):
            print(f"error in {b['name']}: {b.get('error_message')}", file=sys.stderr)
            return 1
        key = (m["kernel"], int(m["threads"]))
        # Repetitions: the median aggregate stands for the row; a single run: its iteration.
        kind = b.get("run_type", "iteration")
        if kind == "aggregate":
            if b.get("aggregate_name") == "cv":
                cv[key + (m["runtime"],)] = b["real_time"]
            if b.get("aggregate_name") != "median":
                continue
        elif m["runtime"] in rows[key] and rows[key][m["runtime"]].get("run_type") == "aggregate":
            continue
        rows[key][m["runtime"]] = b
    ctx = run.get("context", {})
    print(f"Run {ctx.get('date', '?')} on {ctx.get('host_name', '?')}, "
          f"{ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz.")
    if cv:
        print("Times are medians of the repetitions; ±N% is their coefficient of variation.")
    if any(k not in POLICY_KERNELS for (k, _) in rows):  # a run of the policy kernels alone has no such rows
        print("\n| kernel | threads | vitte | oneTBB | OpenMP | oneTBB / vitte | OpenMP / vitte "
              "| vitte per task | oneTBB per task | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|")
    async_keys = []
    for (kernel, threads) in sorted(rows, key=lambda k: (k[0], k[1])):
        r = rows[(kernel, threads)]
        v, t, o = r.get("vitte"), r.get("tbb"), r.get("omp")
        if kernel in ASYNC_KERNELS or kernel.startswith("timer_"):
            async_keys.append((kernel, threads))
            continue
        if kernel in POLICY_KERNELS:
            continue
        if kernel == "wakeup":
            def lat(b):
                return f"{b['median_us']:.1f} / {b['p99_us']:.1f} µs" if b else "-"
            print(f"| wakeup (median / p99) | {threads} | {lat(v)} | {lat(t)} | {lat(o)} | | | | | |")
            continue

        def ms(b, rt):
            c = cv.get((kernel, threads, rt))
            spread = f" ±{c * 100:.0f}%" if c is not None else ""
            return f"{b['real_time']:.1f} ms{spread}" if b else "-"

        def ratio(b):
            return f"{b['real_time'] / v['real_time']:.2f}x" if b and v else "-"

        def per_task(b):
            return f"{b['per_task'] * 1e9:.1f} ns" if b and "per_task" in b else "-"

        rss = max((b.get("peak_rss_MiB", 0) for b in r.values()), default=0)
        print(f"| {kernel} | {threads} | {ms(v, 'vitte')} | {ms(t, 'tbb')} | {ms(o, 'omp')} | {ratio(t)} | {ratio(o)} "
              f"| {per_task(v)} | {per_task(t)} | {rss:.0f} |")
    print_floor(rows)
    if async_keys:
        print_async(rows, async_keys)
    print_policies(rows)
    return 0


def print_floor(rows):
    """Each runtime against the floor: the same recursion as plain calls (serial, 1 thread).
    fib35 and skynet also give the time per spawn as a multiple of the serial time per
    spawn point."""
    lines = []
    for kernel in ("fib35", "skynet", "nqueens12", "uts"):
        floor = rows.get((kernel, 1), {}).get("serial")
        if not floor:
            continue
        for (k, threads) in sorted(key for key in rows if key[0] == kernel):
            for rt in ("vitte", "tbb", "omp"):
                b = rows[(k, threads)].get(rt)
                if not b:
                    continue
                spawn = "-"
                if kernel in ("fib35", "skynet") and "per_task" in b and "per_task" in floor:
                    spawn = (f"{b['per_task'] * 1e9:.1f} ns = {b['per_task'] / floor['per_task']:.1f}x "
                             f"{floor['per_task'] * 1e9:.2f} ns")
                lines.append(f"| {kernel} | {rt} | {threads} | {b['real_time']:.1f} ms | {floor['real_time']:.1f} ms "
                             f"| {b['real_time'] / floor['real_time']:.2f}x | {spawn} |")
    if lines:
        print("\n| against the serial floor | runtime | threads | time | serial | time / serial "
              "| per spawn = multiple of the serial time per spawn point |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(lines))


# Kernels of the asynchronous models (issue #8): coroutine forms of fib and skynet against
# vitte's own TaskGroup forms in the same run, the yield round trip, continuations, and
# timers against Asio.
ASYNC_KERNELS = {"cofib35": "fib35", "coskynet": "skynet", "coyield": None, "coyield_crowd": None,
                 "then_chain_1M": None, "when_all_100k": None}


def print_async(rows, keys):
    print("\n| async kernel | threads | vitte | compared with | ratio | per op | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for (kernel, threads) in keys:
        r = rows[(kernel, threads)]
        v = r.get("vitte")
        if kernel.startswith("timer_lateness"):
            a = r.get("asio")

            def lat(b):
                return (f"{b['median_us']:.0f} / {b['p99_us']:.0f} / {b['max_us']:.0f} µs" if b else "-")
            ratio = f"{a['p99_us'] / v['p99_us']:.2f}x (Asio p99 / vitte p99)" if a and v else "-"
            print(f"| {kernel} (p50 / p99 / max late) | {threads} | {lat(v)} | Asio {lat(a)} | {ratio} | | |")
            continue
        if kernel.startswith("timer_arm_cancel"):
            a = r.get("asio")

            def op(b):
                return f"{b['per_op'] * 1e9:.0f} ns" if b else "-"
            ratio = f"{a['per_op'] / v['per_op']:.2f}x (Asio / vitte)" if a and v else "-"
            print(f"| {kernel} (arm + cancel) | {threads} | {op(v)} | Asio {op(a)} | {ratio} | | "
                  f"{v.get('peak_rss_MiB', 0):.0f} |")
            continue
        if not v:
            continue
        base_kernel = ASYNC_KERNELS.get(kernel)
        base = rows.get((base_kernel, threads), {}).get("vitte") if base_kernel else None
        compared = f"TaskGroup {base_kernel} {base['real_time']:.1f} ms" if base else "-"
        ratio = f"{v['real_time'] / base['real_time']:.2f}x" if base else "-"
        per = next((v[c] for c in ("per_task", "per_yield", "per_op") if c in v), None)
        per_s = f"{per * 1e9:.1f} ns" if per is not None else "-"
        print(f"| {kernel} | {threads} | {v['real_time']:.1f} ms | {compared} | {ratio} | {per_s} "
              f"| {v.get('peak_rss_MiB', 0):.0f} |")


# Kernels of the scheduling policies (issue #9), in the order the Policies table shows them.
POLICY_KERNELS = ("prio_latency", "fair_2to1", "fair_nested", "edf_on", "edf_off")


def verdict(*benches):
    """The bars the kernels report themselves (bar_met counters): all met, or not."""
    return "met" if all(b and b.get("bar_met") == 1 for b in benches) else "**missed**"


def print_policies(rows):
    keys = sorted((k for k in rows if k[0] in POLICY_KERNELS),
                  key=lambda k: (POLICY_KERNELS.index(k[0]), k[1]))
    if not keys:
        return
    print("\n| policy kernel | threads | vitte | compared with | bar | verdict |")
    print("|---|---|---|---|---|---|")
    for (kernel, threads) in keys:
        v = rows[(kernel, threads)].get("vitte")
        if not v:
            continue
        if kernel == "prio_latency":
            t = rows[(kernel, threads)].get("tbb")

            def us(x):
                return f"{x / 1e3:.0f} ms" if x >= 1e4 else f"{x:.0f} µs"

            def lat(b):
                return (f"{us(b['median_us'])} / {us(b['p99_us'])} / {us(b['max_us'])} "
                        f"({b['samples']:.0f} samples)" if b else "-")
            ok = v.get("bar_met") == 1 and t is not None and v["p99_us"] <= t["p99_us"]
            print(f"| priority latency, High start under a Low backlog (p50 / p99 / max) | {threads} "
                  f"| {lat(v)} | oneTBB {lat(t)} | vitte p99 <= 500 µs and <= oneTBB's "
                  f"| {'met' if ok else '**missed**'} |")
        elif kernel == "fair_2to1":
            print(f"| fair share 2:1 (CPU a / b) | {threads} | {v['ratio']:.3f} "
                  f"(a {v['frac_a']:.3f}, b {v['frac_b']:.3f}) | oneTBB: no weighted share | 2.0 +- 0.2 "
                  f"| {verdict(v)} |")
        elif kernel == "fair_nested":
            print(f"| fair share nested (CPU l3 / l1 / right) | {threads} | {v['frac_l3']:.3f} / "
                  f"{v['frac_l1']:.3f} / {v['frac_right']:.3f} | oneTBB: no weighted share "
                  f"| 0.375 / 0.125 / 0.500 +- 0.05 | {verdict(v)} |")
        elif kernel == "edf_on" or (kernel == "edf_off" and ("edf_on", threads) not in rows):
            on = rows.get(("edf_on", threads), {}).get("vitte")
            off = rows.get(("edf_off", threads), {}).get("vitte")

            def missed(b):
                return (f"{b['missed']:.0f} / {b['jobs']:.0f} missed, worst {b['worst_late_us'] / 1e3:+.1f} ms"
                        if b else "-")
            print(f"| EDF, 3 periodic jobs beside saturating work | {threads} | deadlines: {missed(on)} "
                  f"| no deadlines: {missed(off)} | with: 0 missed; without: some | {verdict(on, off)} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))

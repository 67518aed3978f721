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
    for b in run["benchmarks"]:
        m = NAME.match(b["name"])
        if not m or b.get("run_type", "iteration") != "iteration":
            continue
        if b.get("error_occurred"):
            print(f"error in {b['name']}: {b.get('error_message')}", file=sys.stderr)
            return 1
        key = (m["kernel"], int(m["threads"]))
        rows[key][m["runtime"]] = b
    ctx = run.get("context", {})
    print(f"Run {ctx.get('date', '?')} on {ctx.get('host_name', '?')}, "
          f"{ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz.\n")
    print("| kernel | threads | vitte | oneTBB | OpenMP | oneTBB / vitte | OpenMP / vitte "
          "| vitte per task | oneTBB per task | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    async_keys = []
    for (kernel, threads) in sorted(rows, key=lambda k: (k[0], k[1])):
        r = rows[(kernel, threads)]
        v, t, o = r.get("vitte"), r.get("tbb"), r.get("omp")
        if kernel in ASYNC_KERNELS or kernel.startswith("timer_"):
            async_keys.append((kernel, threads))
            continue
        if kernel == "wakeup":
            def lat(b):
                return f"{b['median_us']:.1f} / {b['p99_us']:.1f} µs" if b else "-"
            print(f"| wakeup (median / p99) | {threads} | {lat(v)} | {lat(t)} | {lat(o)} | | | | | |")
            continue

        def ms(b):
            return f"{b['real_time']:.1f} ms" if b else "-"

        def ratio(b):
            return f"{b['real_time'] / v['real_time']:.2f}x" if b and v else "-"

        def per_task(b):
            return f"{b['per_task'] * 1e9:.1f} ns" if b and "per_task" in b else "-"

        rss = max((b.get("peak_rss_MiB", 0) for b in r.values()), default=0)
        print(f"| {kernel} | {threads} | {ms(v)} | {ms(t)} | {ms(o)} | {ratio(t)} | {ratio(o)} "
              f"| {per_task(v)} | {per_task(t)} | {rss:.0f} |")
    if async_keys:
        print_async(rows, async_keys)
    return 0


# Kernels of the asynchronous models (issue #8): coroutine forms of fib and skynet against
# vitte's own TaskGroup forms in the same run, the yield round trip, continuations, and
# timers against Asio.
ASYNC_KERNELS = {"cofib35": "fib35", "coskynet": "skynet", "coyield": None,
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))

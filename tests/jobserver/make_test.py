#!/usr/bin/env python3
"""The jobserver client across processes (jobserver.hpp), with GNU make and by hand.

usage: make_test.py PROBE VITTE_SCHED

1. `make -j2` runs four probes at once, each wanting 2 workers: from the tasks' own
   start and end times (CLOCK_MONOTONIC, one clock for all processes), at no instant do
   more than 2 tasks run across the four; the make run ends without make's "INTERNAL:
   Exiting with N jobserver tokens available" (a leaked token). The same four with the
   jobserver off run more than 2 at once: the measurement can fail.
2. A pipe jobserver made here with 3 tokens and a probe of 4 workers holding all of them:
   after exit(), SIGTERM, or a normal end, the 3 tokens are back in the pipe; after
   SIGKILL they are not (the leak jobserver.hpp documents).
3. A jobserver that cannot be used (a closed descriptor, a missing fifo) gives a warning
   naming it, and the probe runs its workers without it.
4. A recipe without + (make closed the pipe): the program's own pipe is not taken for it.
5. The main job, `vitte-sched run`, takes part under make -j2.
"""
import json
import os
import subprocess
import sys
import tempfile

PROBE = os.path.abspath(sys.argv[1])
SCHED = os.path.abspath(sys.argv[2])
TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include")
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


def max_concurrency(spans):
    events = []
    for s, e in spans:
        events.append((s, 1))
        events.append((e, -1))
    events.sort(key=lambda x: (x[0], x[1]))  # an end before a start at the same instant
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def make_one(tmp, recipe, jobs):
    """Runs `make -s -jJOBS` on a one-rule Makefile in tmp, MAKEFLAGS of the caller removed."""
    mk = os.path.join(tmp, "Makefile")
    with open(mk, "w") as f:
        f.write("all:\n")
        f.write(f"\t{recipe}\n")
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "-s", f"-j{jobs}", "-f", mk], capture_output=True, text=True, env=env, timeout=120)


def make_run(tmp, off):
    mk = os.path.join(tmp, "Makefile")
    flag = " --off" if off else ""
    with open(mk, "w") as f:
        f.write("all: p1 p2 p3 p4\n")
        f.write("p1 p2 p3 p4:\n")
        f.write(f"\t+{PROBE} --workers 2 --tasks 300 --task-us 1000 --log {tmp}/$@.log{flag} > {tmp}/$@.out\n")
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    r = subprocess.run(["make", "-j2", "-f", mk], capture_output=True, text=True, env=env, timeout=300)
    spans = []
    for p in ("p1", "p2", "p3", "p4"):
        with open(f"{tmp}/{p}.log") as f:
            spans += [tuple(map(int, line.split())) for line in f if line.strip()]
    outs = [open(f"{tmp}/{p}.out").read() for p in ("p1", "p2", "p3", "p4")]
    return r, spans, outs


with tempfile.TemporaryDirectory() as tmp:
    r, spans, outs = make_run(tmp, off=False)
    check(r.returncode == 0, f"make -j2 with four probes finishes (rc {r.returncode}: {r.stderr.strip()})")
    check("INTERNAL" not in r.stderr and "INTERNAL" not in r.stdout, "make reports no leaked token")
    check(len(spans) == 1200, f"all 1200 tasks recorded ({len(spans)})")
    peak = max_concurrency(spans)
    check(peak <= 2, f"at most 2 tasks at once across the four processes under make -j2 (peak {peak})")
    check(all('"in_use": true, "kind": "pipe"' in o for o in outs), "each probe used make's pipe jobserver")
    r, spans, outs = make_run(tmp, off=True)
    peak_off = max_concurrency(spans)
    check(r.returncode == 0 and peak_off > 2, f"with jobserver off the same run exceeds 2 (peak {peak_off})")

# 2. The exit paths, on a pipe jobserver made here with 3 tokens.
def tokens_in(rfd):
    os.set_blocking(rfd, False)
    n = 0
    try:
        while os.read(rfd, 1):
            n += 1
    except BlockingIOError:
        pass
    return n


# forkexit: a child's exit() must not give back the parent's tokens (6 would be back).
for how, back in (("none", 3), ("exit", 3), ("term", 3), ("abort", 3), ("forkexit", 3), ("kill", 0)):
    rfd, wfd = os.pipe()
    os.write(wfd, b"+++")
    env = dict(os.environ, MAKEFLAGS=f" -j4 --jobserver-auth={rfd},{wfd}")
    p = subprocess.Popen([PROBE, "--workers", "4", "--hold", how], env=env, pass_fds=(rfd, wfd),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    want_rc = {"none": 0, "exit": 3, "term": -15, "abort": -6, "forkexit": 0, "kill": -9}[how]
    check("holding 4" in out and p.returncode == want_rc,
          f"--hold {how}: held all 4 tokens, ended with {p.returncode} (want {want_rc}) {err.strip()}")
    n = tokens_in(rfd)
    check(n == back, f"--hold {how}: {n} of 3 tokens back in the pipe (want {back})")
    os.close(rfd)
    os.close(wfd)

# 3. Unusable jobservers: a warning naming it, and the plan's workers run.
for flags, named in ((" -j2 --jobserver-auth=97,98", "file descriptors 97,98 were not open"),
                     (" -j2 --jobserver-auth=fifo:/nonexistent/vitte-fifo", "/nonexistent/vitte-fifo")):
    env = dict(os.environ, MAKEFLAGS=flags)
    r = subprocess.run([PROBE, "--workers", "2", "--tasks", "50", "--task-us", "100"], env=env,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and named in r.stderr and "without it" in r.stderr and '"in_use": false' in r.stdout,
          f"MAKEFLAGS='{flags.strip()}': warns naming {named} and runs without it (rc {r.returncode}: {r.stderr.strip()})")

# 4. make 4.3 closes its pipe for a recipe without +, yet leaves --jobserver-auth in
# MAKEFLAGS; a program that opens a pipe first gets those very numbers. They must not be
# taken for the jobserver.
with tempfile.TemporaryDirectory() as tmp:
    r = make_one(tmp, f"{PROBE} --workers 2 --tasks 20 --task-us 100 --own-pipe", 3)
    check(r.returncode == 0 and "were not open when the program started" in r.stderr
          and '"in_use": false' in r.stdout,
          f"a recipe without +: the program's own pipe is not taken for the jobserver ({r.stderr.strip()})")

# 5. The main job under make: its metrics say the jobserver is in use, and it never held
#    more than make's 2 slots.
with tempfile.TemporaryDirectory() as tmp:
    r = make_one(tmp, f"+{SCHED} run --dir {TREE} --no-baseline --workers 2 --json > {tmp}/run.json", 2)
    js = {}
    if r.returncode == 0:
        with open(f"{tmp}/run.json") as f:
            js = json.load(f)["metrics"]["jobserver"]
    check(r.returncode == 0 and js.get("in_use") is True and js.get("kind") == "pipe" and 1 <= js.get("max_held", 0) <= 2,
          f"vitte-sched run under make -j2 takes part in the jobserver ({js}; {r.stderr.strip()})")

print(f"make_test: {len(failures)} failed")
sys.exit(1 if failures else 0)

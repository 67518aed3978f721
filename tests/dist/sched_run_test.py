#!/usr/bin/env python3
"""vitte-sched run across MPI ranks (tests/meson.build: suites unit and dist).

Usage: sched_run_test.py MPIRUN VITTE_SCHED

On a fixed tree this script writes (300 headers in 6 directories, quoted and angle
includes, include cycles, unresolved system includes), it checks that
  - `mpirun -np 2 vitte-sched run --json` succeeds (its own 1-worker baseline agrees),
    gives the answers of `mpirun -np 1` (the local job), and has a per-rank section of 2
    entries whose files add up to the tree;
  - ranks that list different trees (an MPMD launch with two --dir) fail, rank 0 reporting
    which rank differs in one JSON document;
  - --passes, a local-only option, is refused across ranks with status 2.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

# The answers: what must not depend on where the passes ran.
ANSWER_KEYS = ["files", "bytes", "tokens", "include_directives", "includes_resolved", "transitive_includes_sum",
               "transitive_includes_max", "skipped"]
PIPELINE_KEYS = ["analyse_edges", "include_cycle_edges_dropped"]


def write_tree(root):
    rng = random.Random(7)
    dirs = ["core", "core/detail", "io", "net", "util", "util/ext"]
    names = [f"{d}/h{i:03d}.h" for i in range(300) for d in [dirs[i % len(dirs)]]]
    for i, name in enumerate(names):
        lines = [f"// {name}"]
        for _ in range(rng.randrange(0, 5)):
            other = names[rng.randrange(len(names))]
            if os.path.dirname(other) == os.path.dirname(name) and rng.random() < 0.5:
                lines.append(f'#include "{os.path.basename(other)}"')  # beside it
            else:
                lines.append(f"#include <{other}>")
        if i % 7 == 0:
            lines.append("#include <vector>  // not in the tree")
        if i % 50 == 0:  # a cycle back to the first header
            lines.append(f"#include <{names[0]}>")
        lines += [f"int f{i}_{k}(int x) {{ return x * {k} + {rng.randrange(1000)}; }}" for k in range(rng.randrange(1, 30))]
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return len(names)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)
    return p.returncode, p.stdout, p.stderr


def run_json(cmd):
    rc, out, err = run(cmd)
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        sys.exit(f"FAIL: {' '.join(cmd)}: stdout is not one JSON document ({e}); rc {rc}\n{out}\n{err}")
    return rc, doc, err


def main():
    mpirun, sched = sys.argv[1], sys.argv[2]
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="vitte-sched-run-ranks-") as root:
        other = os.path.join(root, "other")
        tree = os.path.join(root, "tree")
        listed = write_tree(tree)
        os.makedirs(other)
        with open(os.path.join(other, "lone.h"), "w") as f:
            f.write("int lone;\n")

        rc1, one, err1 = run_json([mpirun, "-np", "1", sched, "run", "--dir", tree, "--json", "--no-baseline"])
        check(rc1 == 0, f"-np 1: status {rc1}: {one.get('error')} {err1}")
        check("per_rank" not in one, "-np 1 runs the local job, without a per-rank section")
        rc2, two, err2 = run_json([mpirun, "-np", "2", sched, "run", "--dir", tree, "--json"])
        check(rc2 == 0, f"-np 2: status {rc2}: {two.get('error')} {err2}")
        if rc1 == 0 and rc2 == 0:
            check(one["files"] == listed, f"-np 1 read {one['files']} files of {listed}")
            check(one["pipeline"]["include_cycle_edges_dropped"] > 0, "the tree has include cycles to break")
            for k in ANSWER_KEYS:
                check(one[k] == two[k], f"answer {k}: -np 1 {one[k]}, -np 2 {two[k]}")
            for k in PIPELINE_KEYS:
                check(one["pipeline"][k] == two["pipeline"][k],
                      f"pipeline.{k}: -np 1 {one['pipeline'][k]}, -np 2 {two['pipeline'][k]}")
            check(two.get("ranks") == 2, f"ranks: {two.get('ranks')}")
            ranks = two.get("per_rank", [])
            check(len(ranks) == 2, f"per_rank has {len(ranks)} entries, not 2")
            check([r.get("rank") for r in ranks] == [0, 1], f"per_rank in rank order: {[r.get('rank') for r in ranks]}")
            check(sum(r.get("files", 0) for r in ranks) == listed,
                  f"the ranks scanned {[r.get('files') for r in ranks]} files, not {listed} in all")
            for r in ranks:
                for k in ["bytes", "files_per_second", "bytes_sent", "remote_steals", "remote_steal_requests"]:
                    check(k in r, f"per_rank[{r.get('rank')}] lacks {k}")
            check(sum(r.get("bytes_sent", 0) for r in ranks) > 0, "the ranks sent no bytes")
            check("speedup_vs_1_worker" in two, "-np 2 ran its 1-worker baseline")

        # Ranks that see different trees: every rank stops, rank 0 says which rank differs.
        rc, doc, err = run_json([mpirun, "-np", "1", sched, "run", "--json", "--dir", tree, ":",
                                 "-np", "1", sched, "run", "--json", "--dir", other])
        message = doc.get("error", {}).get("message", "")
        check(rc == 3 and "rank 1" in message and other in message,
              f"different trees: status {rc}, message {message!r} (want status 3 naming rank 1 and {other})")

        rc, out, err = run([mpirun, "-np", "2", sched, "run", "--dir", tree, "--passes"])
        check(rc == 2 and "--passes" in err and "ranks" in err, f"--passes across ranks: status {rc}: {err!r}")

    if failures:
        sys.exit("FAIL:\n  " + "\n  ".join(failures))
    print(f"ok: {listed} files; -np 1 and -np 2 agree; per_rank {[r['files'] for r in two['per_rank']]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""scripts/plot_bench.py on tests/data/plot_bench_run.json: every figure, the numbers behind
them, and bad input.

The fixture is a trimmed real run (docs/bench/2026-11-25-vm-2core-after-9.json) with hand-made
steal and event counters, a µs benchmark without per_task, an error, and aggregates; its
context's fixture_note lists them. Run by meson (suite unit) or directly:
    python3 tests/plot_bench_test.py
"""
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

try:
    import matplotlib  # noqa: F401
except ImportError:
    # A failure, not a skip: the plots are part of the project's checked output.
    print(f"plot_bench_test: matplotlib is not importable by {sys.executable}: run "
          f"scripts/setup.sh (it installs Debian's python3-matplotlib, for /usr/bin/python3)", file=sys.stderr)
    sys.exit(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "plot_bench.py")
FIXTURE = os.path.join(ROOT, "tests", "data", "plot_bench_run.json")
FIGURES = ["time_per_task", "speedup", "steal_distance", "counters_CONTEXT_SWITCHES",
           "counters_PAPI_L1_DCM"]

spec = importlib.util.spec_from_file_location("plot_bench", SCRIPT)
plot_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_bench)


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300)


def load_fixture():
    with open(FIXTURE) as f:
        return json.load(f)


class Figures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "plots")
        cls.result = run_script(FIXTURE, "--out", cls.out, "--formats", "png,svg")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exit_status_and_files_printed(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        want = {os.path.join(self.out, f"{name}.{fmt}") for name in FIGURES for fmt in ("png", "svg")}
        self.assertEqual(set(self.result.stdout.split()), want)
        self.assertEqual(set(os.listdir(self.out)), {os.path.basename(p) for p in want})

    def test_png_files(self):
        for name in FIGURES:
            with open(os.path.join(self.out, name + ".png"), "rb") as f:
                data = f.read()
            self.assertGreater(len(data), 1000, name)
            self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", name)

    def test_svg_files_parse_and_carry_provenance(self):
        for name in FIGURES:
            root = ET.parse(os.path.join(self.out, name + ".svg")).getroot()
            self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg", name)
            text = " ".join(t for t in root.itertext())
            # The caption: the run's file, date and machine (context of the JSON).
            self.assertIn("plot_bench_run.json: 2026-11-25T05:32:39+00:00, host vm, 2 CPUs at "
                          "2300 MHz", text, name)

    def test_stderr_names_what_was_left_out(self):
        err = self.result.stderr
        self.assertIn("left out: nqueens12, wakeup", err)
        self.assertIn("uts/omp/threads:2/real_time reported an error", err)


class Data(unittest.TestCase):
    """The numbers the figures draw."""

    @classmethod
    def setUpClass(cls):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            cls.benches, cls.provenance = plot_bench.load_all([FIXTURE])
        cls.notes = err.getvalue()

    def test_notes_and_provenance(self):
        self.assertIn("uts/omp/threads:2/real_time reported an error", self.notes)
        self.assertEqual(self.provenance, ["plot_bench_run.json: 2026-11-25T05:32:39+00:00, "
                                           "host vm, 2 CPUs at 2300 MHz"])

    def bench(self, label):
        return next(b for b in self.benches if b.label == label)

    def test_per_task_counter_and_time_unit(self):
        # per_task is seconds per task, as written.
        self.assertAlmostEqual(self.bench("fib30/vitte/threads:1").seconds_per_task() * 1e9,
                               39.96, places=1)
        # No per_task: real_time in µs over tasks gives the same figure as the real run's
        # per_task (38.73 ns).
        self.assertAlmostEqual(self.bench("uts/vitte/threads:1").seconds_per_task() * 1e9,
                               38.73, places=1)
        self.assertIsNone(self.bench("nqueens12/vitte/threads:1").seconds_per_task())

    def test_median_aggregate_stands_for_repetitions(self):
        b = self.bench("linear_chain/tbb/threads:2")
        self.assertEqual(b.entry["aggregate_name"], "median")

    def test_error_left_out(self):
        self.assertNotIn("uts/omp/threads:2", [b.label for b in self.benches])

    def test_time_per_task_at_two_workers(self):
        data = plot_bench.time_per_task_data(self.benches, 2)
        self.assertEqual(sorted(data), ["fib30", "linear_chain", "skynet", "uts"])
        self.assertEqual(sorted(data["fib30"]), ["omp", "tbb", "vitte"])
        self.assertEqual(sorted(data["uts"]), ["tbb", "vitte"])  # omp's errored

    def test_speedup(self):
        data = plot_bench.speedup_data(self.benches)
        (n1, s1), (n2, s2) = data["fib30"]["vitte"]
        self.assertEqual((n1, s1, n2), (1, 1.0, 2))
        self.assertAlmostEqual(s2, 53.786 / 25.828, places=2)  # the run's fib30 times
        self.assertNotIn("omp", data["uts"])  # only its 1-worker run is left
        self.assertNotIn("wakeup", data)

    def test_steals_vitte_only_nearest_first_missing_bin_absent(self):
        rows = dict(plot_bench.steal_data(self.benches))
        self.assertEqual(list(rows), ["fib30/threads:1", "fib30/threads:2", "skynet/threads:2"])
        self.assertEqual(list(rows["fib30/threads:2"].items()),
                         [("steals_l3", 1200), ("steals_node", 300), ("steals_remote_d20", 40),
                          ("steals_remote_d32", 8)])
        # skynet reports no steals_node: absent, not zero. fib30/tbb's steals_l3 is not plotted.
        self.assertEqual(rows["skynet/threads:2"], {"steals_l3": 500, "steals_remote_d20": 10})

    def test_counters_never_zero_for_missing(self):
        data = plot_bench.counter_data(self.benches)
        self.assertEqual(sorted(data), ["CONTEXT_SWITCHES", "PAPI_L1_DCM"])
        dcm = [(b.label, v, k) for b, v, k in data["PAPI_L1_DCM"]]
        # ctr_ wins over papi_ in one benchmark; benchmarks without the event are absent.
        self.assertEqual(dcm, [("fib30/vitte/threads:2", 0.8, "ctr_PAPI_L1_DCM"),
                               ("fib30/tbb/threads:2", 2.5, "papi_PAPI_L1_DCM")])
        cs = [(b.label, k) for b, _, k in data["CONTEXT_SWITCHES"]]
        self.assertEqual(cs, [("fib30/omp/threads:2", "ctr_CONTEXT_SWITCHES"),
                              ("skynet/vitte/threads:2", "perf_CONTEXT-SWITCHES")])


class Input(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.tmp.name, "plots")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_bad(self, path, why, before=()):
        """The run stops with status 2 and one line naming `path`; `before`: good inputs
        given first (their notes may precede that line)."""
        r = run_script(*before, path, "--out", self.out)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        if not before:
            self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(path, lines[-1])
        self.assertIn(why, lines[-1])
        self.assertFalse(os.path.exists(self.out), "nothing is written on bad input")

    def test_missing_file(self):
        self.assert_bad(os.path.join(self.tmp.name, "absent.json"), "cannot read")

    def test_not_json(self):
        self.assert_bad(self.write("text.json", "fib30 25.8 ms\n"), "not JSON")

    def test_not_benchmark_json(self):
        self.assert_bad(self.write("other.json", '{"benchmarks": 3}'), "not Google Benchmark JSON")

    def test_unknown_time_unit(self):
        run = load_fixture()
        run["benchmarks"][0]["time_unit"] = "fortnights"  # read before the errored entry
        self.assert_bad(self.write("unit.json", json.dumps(run)), run["benchmarks"][0]["name"])

    def test_same_benchmark_in_two_files(self):
        copy = self.write("copy.json", json.dumps(load_fixture()))
        self.assert_bad(copy, "also in " + FIXTURE, before=[FIXTURE])

    def test_unknown_format(self):
        r = run_script(FIXTURE, "--out", self.out, "--formats", "png,gif")
        self.assertEqual(r.returncode, 2)
        self.assertIn("gif", r.stderr)

    def test_no_steals_or_counters_draws_no_empty_figure(self):
        run = load_fixture()
        for b in run["benchmarks"]:
            for k in [k for k in b if k.startswith(("steals_", "ctr_", "papi_", "perf_"))]:
                del b[k]
        r = run_script(self.write("plain.json", json.dumps(run)), "--out", self.out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(self.out)), ["speedup.png", "speedup.svg",
                                                        "time_per_task.png", "time_per_task.svg"])
        self.assertIn("steal distance: not drawn", r.stderr)
        self.assertIn("event counters: not drawn", r.stderr)

    def test_per_worker_count(self):
        r = run_script(FIXTURE, "--out", self.out, "--formats", "svg", "--per-worker-count")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("time_per_task", "time_per_task_threads1", "time_per_task_threads2"):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name + ".svg")) > 1000, name)
        self.assertFalse(any(n.endswith(".png") for n in os.listdir(self.out)))


if __name__ == "__main__":
    unittest.main(verbosity=2)

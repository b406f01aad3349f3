#!/usr/bin/python3
"""bench/python.py - what the Python API adds to libatex.

1. Per-test cost of the fmf executor: N trivial tests (`true`) run one
   after another by atex.executor.fmf.FMFExecutor over a LocalConnection,
   against bench/executor (the same tree, the same calls in C). Median
   wall time per test, median over --runs runs.
2. Wall time of a 100-system run: AdHocOrchestrator.serve_forever() with
   LocalProvisioner, FMFExecutor and JSONLinesAggregator, against the CLI
   `atex run --local 100` on the same tree (the CLI also writes SQLite and
   HTML reports: a little more work on its side).
3. Python ATEX's FMFExecutor on the same tests, when it can run here
   (it needs Python >= 3.12; its fmf, yaml and urllib3 imports are stubbed:
   its executor does not use them once FMFTests is built by hand).

The target is the Python figure within 10% of C's. Wall times depend on
the machine's load (2 cores shared): the CPU per test is the steadier
figure for the executor.

usage: bench/python.py [BUILD_DIR] [--tests N] [--runs K] [--systems N]
                       [--sleep S]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PA_SRC = "/work/helpers/i12/src"
PA_PYTHONS = ("/root/.pyenv/versions/3.12.1/bin/python3.12", "/usr/bin/python3.12")


def make_tree(path, n, command):
    os.makedirs(os.path.join(path, ".fmf"))
    with open(os.path.join(path, ".fmf", "version"), "w") as f:
        f.write("1\n")
    with open(os.path.join(path, "main.fmf"), "w") as f:
        for i in range(n):
            f.write(f'/t{i:04d}:\n  test: "{command}"\n')


def cpu_ms():
    """CPU time of this process and its waited-for children, in ms."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime) * 1e3, \
        (kids.ru_utime + kids.ru_stime) * 1e3


def c_executor(build, n):
    """(wall median, CPU per test) of bench/executor."""
    out = subprocess.run(
        [os.path.join(build, "bench", "executor"), "--tests", str(n),
         "--only", "local"],
        check=True, capture_output=True, text=True).stdout
    # "local  N tests: wall median X ms, p90 Y ms; CPU per test: atex A
    # ms, children C ms"
    wall = float(out.split("wall median ")[1].split()[0])
    cpu = float(out.split("atex ")[1].split()[0]) + \
        float(out.split("children ")[1].split()[0])
    return wall, cpu


def py_executor(tree, n, work):
    from atex.connection.local import LocalConnection
    from atex.executor.fmf import FMFExecutor, discover

    tests = discover(tree)
    names = list(tests.data)[:n]
    times = []
    with LocalConnection() as conn, FMFExecutor(conn, tests) as ex:
        self0, kids0 = cpu_ms()
        for i, name in enumerate(names):
            art = os.path.join(work, f"art-{i}")
            os.mkdir(art)
            t0 = time.monotonic()
            ex.run_test(name, art)
            times.append((time.monotonic() - t0) * 1000)
        self1, kids1 = cpu_ms()
    cpu = (self1 - self0 + kids1 - kids0) / len(names)
    return statistics.median(times), cpu


PA_SCRIPT = r"""
import os, sys, time, statistics, types, pathlib
class Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (Exception,), {"__init__": lambda s, *a, **k: None})
for name in ("fmf", "fmf.utils", "yaml", "urllib3", "urllib3.util"):
    sys.modules[name] = Stub(name)
sys.modules["fmf"].utils = sys.modules["fmf.utils"]
import json
sys.modules["yaml"].dump = lambda data, **kw: json.dumps(data)  # JSON is YAML
sys.modules["fmf.utils"].FetchError = type("FetchError", (Exception,), {})
sys.path.insert(0, sys.argv[1])
from atex.connection.local import LocalConnection
from atex.executor.fmf import FMFExecutor, FMFTests
tree, n, work = sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = {f"/t{i:04d}": {"test": "true"} for i in range(n)}
tests = FMFTests(plan={}, data=data, sources={k: "." for k in data},
                 root=pathlib.Path(tree))
times = []
with LocalConnection() as conn, FMFExecutor(conn, tests) as ex:
    for i, name in enumerate(data):
        art = os.path.join(work, f"art-{i}")
        os.mkdir(art)
        t0 = time.monotonic()
        ex.run_test(name, art)
        times.append((time.monotonic() - t0) * 1000)
print(statistics.median(times))
"""


def pa_executor(tree, n, work):
    """Python ATEX's figure, or why there is none."""
    python = next((p for p in PA_PYTHONS if os.access(p, os.X_OK)), None)
    if not os.path.isdir(os.path.join(PA_SRC, "atex")):
        return None, f"no Python ATEX source in {PA_SRC}"
    if not python:
        return None, "no Python >= 3.12 here (Python ATEX needs it)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([python, "-c", PA_SCRIPT, PA_SRC, tree, str(n), work],
                       capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"Python ATEX failed here: {last}"
    return float(r.stdout.split()[-1]), None


def c_run(build, tree, systems, results):
    t0 = time.monotonic()
    r = subprocess.run(
        [os.path.join(build, "cli", "atex"), "run", "--local", str(systems),
         "--results", results, tree],
        capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    if r.returncode not in (0, 1):
        raise RuntimeError(f"atex run: {r.returncode}: {r.stderr[-500:]}")
    return took


def py_run(tree, systems, results):
    from atex.aggregator.jsonl import JSONLinesAggregator
    from atex.executor.fmf import FMFExecutor, discover
    from atex.orchestrator.adhoc import AdHocOrchestrator
    from atex.provisioner.local import LocalProvisioner

    t0 = time.monotonic()
    tests = discover(tree)
    os.makedirs(results)
    with LocalProvisioner() as prov, JSONLinesAggregator(
            os.path.join(results, "results.jsonl"),
            os.path.join(results, "files")) as agg:
        with AdHocOrchestrator(
                "bench", tests.data.keys(), (prov,),
                lambda remote: FMFExecutor(remote, tests), agg) as orch:
            orch.serve_forever()
    took = time.monotonic() - t0
    with open(os.path.join(results, "results.jsonl")) as f:
        lines = sum(1 for _ in f)
    if lines < systems:
        raise RuntimeError(f"only {lines} results of {systems}")
    return took


def ratio(py, c):
    return f"{py / c:.2f}x" if c else "n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(TOP, "build"))
    ap.add_argument("--tests", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", type=int, default=100)
    ap.add_argument("--sleep", type=float, default=1.0)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))

    work = tempfile.mkdtemp(prefix="atex-bench-py-")
    try:
        tree = os.path.join(work, "tree")
        make_tree(tree, args.tests, "true")
        c_all, py_all = [], []
        for k in range(args.runs):
            c_all.append(c_executor(build, args.tests))
            run_dir = os.path.join(work, f"py-{k}")
            os.mkdir(run_dir)
            py_all.append(py_executor(tree, args.tests, run_dir))
        c_ms = statistics.median(w for w, _ in c_all)
        c_cpu = statistics.median(c for _, c in c_all)
        py_ms = statistics.median(w for w, _ in py_all)
        py_cpu = statistics.median(c for _, c in py_all)
        print(f"executor, {args.tests} trivial tests, median of "
              f"{args.runs} runs (per test: wall; CPU of the process and "
              "its children, steadier on a loaded machine):")
        print(f"  C  (bench/executor)     {c_ms:7.1f} ms  CPU {c_cpu:6.2f} ms")
        print(f"  Python (FMFExecutor)    {py_ms:7.1f} ms  CPU {py_cpu:6.2f} ms"
              f"  wall {ratio(py_ms, c_ms)}, CPU {ratio(py_cpu, c_cpu)} of C")
        pa_dir = os.path.join(work, "pa")
        os.mkdir(pa_dir)
        pa_ms, why = pa_executor(tree, args.tests, pa_dir)
        if pa_ms is None:
            print(f"  Python ATEX             not run: {why}")
        else:
            print(f"  Python ATEX             {pa_ms:7.1f} ms  "
                  f"{ratio(pa_ms, py_ms)} of the atex Python API, "
                  f"{ratio(pa_ms, c_ms)} of C")

        run_tree = os.path.join(work, "run-tree")
        make_tree(run_tree, args.systems, f"sleep {args.sleep}")
        c_s, py_s = [], []
        for k in range(args.runs):
            c_s.append(c_run(build, run_tree, args.systems,
                             os.path.join(work, f"c-run-{k}")))
            py_s.append(py_run(run_tree, args.systems,
                               os.path.join(work, f"py-run-{k}")))
        c_t, py_t = statistics.median(c_s), statistics.median(py_s)
        print(f"orchestrator, {args.systems} tests of sleep {args.sleep} on "
              f"{args.systems} local systems, median of {args.runs} runs:")
        print(f"  C  (atex run --local)   {c_t:7.2f} s")
        print(f"  Python (serve_forever)  {py_t:7.2f} s  "
              f"{ratio(py_t, c_t)} of C")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

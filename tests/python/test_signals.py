"""SIGTERM and a Python runner (docs/PYTHON.md, "What holds for every
block"): Python's default action kills the process at once, as with Python
ATEX; a handler that raises (sys.exit) unwinds the `with` blocks like
Ctrl-C does: results readable, work directories removed."""

import glob
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# The runner: an fmf plan on one local system, gzip JSON Lines results.
# The quick tests run first (order); /slow then runs until the signal.
RUNNER = """
import signal, sys
from atex.aggregator.jsonl import GzipJSONLinesAggregator
from atex.executor.fmf import FMFExecutor, discover
from atex.orchestrator.adhoc import AdHocOrchestrator
from atex.provisioner.local import LocalProvisioner

tree, results, handler = sys.argv[1:4]
if handler == "exit":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
tests = discover(tree, "/plan")
with LocalProvisioner(max_remotes=1) as prov, GzipJSONLinesAggregator(
        results + "/results.jsonl.gz", results + "/files") as agg:
    with AdHocOrchestrator("p", tests.data.keys(), (prov,),
                           lambda r: FMFExecutor(r, tests), agg) as orch:
        orch.serve_forever()
"""

TREE = """
/plan:
  discover: {how: fmf}
  execute: {how: tmt}
/tests:
  /quick1:
    test: echo one
  /quick2:
    test: echo two
  /slow:
    order: 90
    test: echo $$ > "$MARK"; exec sleep 120
"""


def owner_of(pid):
    """BOOT-PID-START, the names of a process's work directories
    (src/executor/README.md)."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text()
    start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    return f"{boot.replace('-', '')[:8]}-{pid}-{start}"


def run_until_slow(tmp_path, handler):
    tree = tmp_path / "tree"
    (tree / ".fmf").mkdir(parents=True)
    (tree / ".fmf" / "version").write_text("1\n")
    (tree / "main.fmf").write_text(textwrap.dedent(TREE))
    results = tmp_path / "results"
    results.mkdir()
    mark = tmp_path / "slow.pid"
    private = tmp_path / "tmp"
    private.mkdir()
    env = dict(os.environ, MARK=str(mark), TMPDIR=str(private))
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tree), str(results), handler],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    owner = owner_of(proc.pid)
    deadline = time.monotonic() + 120
    while not (mark.exists() and mark.read_text().strip()):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the slow test never started"
        time.sleep(0.05)
    slow_pid = int(mark.read_text())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    left = glob.glob(f"/var/tmp/atex-{owner}-*") + \
        glob.glob(f"{private}/atex-stage-{owner}-*")
    return proc.returncode, out, results, left, slow_pid


def read_results(results):
    """Every line of results.jsonl.gz, which must decompress to its end."""
    with gzip.open(results / "results.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def gone(pid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "zombie" in status:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_handler_that_exits_cleans_up(tmp_path):
    rc, out, results, left, slow_pid = run_until_slow(tmp_path, "exit")
    assert rc == 143, out
    got = {r[2]: r[1] for r in read_results(results)}
    assert got["/tests/quick1"] == "pass", got
    assert got["/tests/quick2"] == "pass", got
    assert left == [], out
    # the test's own process went with its system
    assert gone(slow_pid)


def test_sigterm_default_kills_at_once(tmp_path):
    rc, out, results, left, slow_pid = run_until_slow(tmp_path, "default")
    try:
        assert rc == -signal.SIGTERM, out
        # nothing was cleaned: the work directory of the system is left
        assert any(p.startswith("/var/tmp/") for p in left), left
    finally:
        for path in left:
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.kill(slow_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # a gzip stream never closed: what reached the disk is all there is
    if (results / "results.jsonl.gz").exists():
        with pytest.raises((EOFError, OSError)):
            read_results(results)

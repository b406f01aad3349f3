"""The orchestrator under load (issue 12 black-box findings): test data
edited while tests run, many local systems, Ctrl-C with Python executors,
the open-files limit."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from atex.executor.fmf import discover

PY = "/usr/bin/python3"


def make_tree(root, n_tests, n_extra=400):
    """An fmf tree of `n_tests` quick tests with an `extra` map of
    `n_extra` keys each, and the plan /plans/p."""
    (root / ".fmf").mkdir(parents=True)
    (root / ".fmf" / "version").write_text("1\n")
    (root / "plans.fmf").write_text(
        "/p:\n  discover:\n    how: fmf\n  execute:\n    how: tmt\n"
    )
    lines = ["extra:"] + [f"  k{i}: value-{i}" for i in range(n_extra)]
    lines.append("test: test -n \"$TMT_TEST_NAME\"")
    lines += [f"/t{i}:\n  summary: test {i}" for i in range(n_tests)]
    (root / "tests").mkdir()
    (root / "tests" / "main.fmf").write_text("\n".join(lines) + "\n")
    return root


def script_env():
    """The environment with PYTHONPATH naming this atex package
    (absolute: scripts run in other directories)."""
    import atex

    env = os.environ.copy()
    env["PYTHONPATH"] = str(Path(atex.__file__).resolve().parent.parent)
    return env


def run_script(tmp_path, body, *, timeout=240, preexec=None):
    """Run `body` in a fresh interpreter (a crash is then a failed
    assertion, not a dead pytest); returns the CompletedProcess."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return subprocess.run(
        [PY, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        cwd=tmp_path,
        preexec_fn=preexec,
    )


class CountingDiscovery:
    """Wraps an FMFDiscovery to count what FMFTests._sync pushes."""

    def __init__(self, d, names):
        self.d = d
        self.names = names
        self.pushed = []
        self.removed = []

    def same(self, i, data):
        return self.d.same(i, data)

    def set_data(self, i, data):
        self.pushed.append(self.names[i])
        return self.d.set_data(i, data)

    def remove(self, i):
        self.removed.append(self.names[i])
        return self.d.remove(i)


def test_sync_pushes_only_changed_tests(tmp_path):
    ft = discover(make_tree(tmp_path / "tree", 5, n_extra=3), "/plans/p")
    real = ft._discovery
    counting = CountingDiscovery(real, ft._names)
    ft._discovery = counting
    ft._sync()
    assert counting.pushed == []
    ft.data["/tests/t3"]["extra"]["k1"] = "changed"
    ft._sync()
    assert counting.pushed == ["/tests/t3"]
    ft._sync()
    assert counting.pushed == ["/tests/t3"]
    # Types count: 1, 1.0 and True are different JSON values.
    ft.data["/tests/t1"]["n"] = 1
    ft._sync(only="/tests/t1")
    ft.data["/tests/t1"]["n"] = True
    ft._sync(only="/tests/t1")
    ft.data["/tests/t1"]["n"] = 1.0
    ft._sync(only="/tests/t1")
    ft._sync(only="/tests/t1")
    assert counting.pushed == ["/tests/t3", "/tests/t1", "/tests/t1", "/tests/t1"]
    del ft.data["/tests/t0"]
    ft._sync()
    assert counting.removed == ["/tests/t0"]
    assert counting.pushed == ["/tests/t3", "/tests/t1", "/tests/t1", "/tests/t1"]
    names = [t[0] for t in real.tests()]
    assert sorted(names) == ["/tests/t1", "/tests/t2", "/tests/t3", "/tests/t4"]
    by_name = {t[0]: t[1] for t in real.tests()}
    assert by_name["/tests/t3"]["extra"]["k1"] == "changed"
    assert by_name["/tests/t1"]["n"] == 1.0 and isinstance(by_name["/tests/t1"]["n"], float)
    ft.data["/new"] = {}
    with pytest.raises(ValueError, match="/new"):
        ft._sync()
    with pytest.raises(ValueError, match="/new"):
        ft._sync(only="/new")


def test_edits_while_tests_run(tmp_path):
    """Every new FMFExecutor syncs the data of all tests while other
    systems run tests (whose setup dumps that data): a script editing data
    between runs must never crash libatex (it did: data cleared and
    refilled in place under the workers' feet)."""
    make_tree(tmp_path / "tree", 150)
    r = run_script(
        tmp_path,
        f"""
        import itertools, json, sys
        from pathlib import Path
        from atex.provisioner.local import LocalProvisioner
        from atex.executor.fmf import FMFExecutor, discover
        from atex.aggregator.jsonl import JSONLinesAggregator
        from atex.orchestrator.adhoc import AdHocOrchestrator
        ft = discover("{tmp_path}/tree", "/plans/p")
        counter = itertools.count()
        class O(AdHocOrchestrator):
            def destructive(self, info, /):
                return True
        def make(remote):
            n = next(counter)
            for data in ft.data.values():   # edit every test's data
                data["extra"]["k7"] = f"edit-{{n}}"
                data["extra"]["n"] = n
            return FMFExecutor(remote, ft)
        out = Path("{tmp_path}")
        with JSONLinesAggregator(out / "r.jsonl", out / "f") as agg, \\
                LocalProvisioner(max_remotes=10) as prov:
            with O("p", ft.data.keys(), [prov], make, agg) as o:
                o.serve_forever()
        """,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(results) == 150
    assert {x[1] for x in results} == {"pass"}, results[:3]


def ctrl_c_run(tmp_path, provisioner, n_tests, *, after_orch=None, settle=0.0):
    """Runs `n_tests` tests of `sleep 60` with CommandExecutor, Ctrl-C
    once all of them started (+ `settle` s); returns (seconds from SIGINT
    to KeyboardInterrupt, the aggregator's results, the remotes used).
    `after_orch(remotes)` is called after the orchestrator's `with`, still
    in the provisioner's."""
    import signal
    import threading
    import time

    from test_orchestrator import ListAggregator, script

    from atex.executor.command import CommandExecutor
    from atex.orchestrator.adhoc import AdHocOrchestrator

    marks = tmp_path / "marks"
    marks.mkdir()
    tests = {f"/slow{i}": ("sleep", "60") for i in range(n_tests)}
    remotes = []

    class Marking(CommandExecutor):
        # marks on this machine (the command may run in a container)
        def run_test(self, test_name, artifacts):
            (marks / test_name.strip("/")).touch()
            return super().run_test(test_name, artifacts)

    def make(remote):
        remotes.append(remote)
        return Marking(remote, tests)
    agg = ListAggregator()
    sent = []

    def interrupt():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(os.listdir(marks)) < n_tests:
            time.sleep(0.05)
        time.sleep(settle + 0.3)  # the commands spawned
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    with provisioner:
        with AdHocOrchestrator("p", tests, (provisioner,), make, agg) as orch:
            timer = threading.Thread(target=interrupt)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                orch.serve_forever()
            took = time.monotonic() - sent[0]
            timer.join()
        if after_orch:
            after_orch(remotes)
    return took, sorted(agg.got), remotes


class SlowReleasePool:
    """PoolProvisioner whose systems take 2 s each to release."""

    @staticmethod
    def make(size):
        import time

        from test_orchestrator import PoolProvisioner, PoolRemote

        class SlowRemote(PoolRemote):
            def release(self):
                time.sleep(2)
                super().release()

        class Pool(PoolProvisioner):
            def get_remote(self, block=True):
                r = super().get_remote(block)
                if r is not None:
                    r.__class__ = SlowRemote
                return r

        return Pool(size)


def test_ctrl_c_fast_with_slow_releases(tmp_path):
    """Ctrl-C raises KeyboardInterrupt within 1 s although releasing the
    10 systems takes 2 s each; leaving the `with` waited for all."""
    pool = SlowReleasePool.make(10)
    took, got, _ = ctrl_c_run(tmp_path, pool, 10)
    assert took < 1.0, took
    # every system went back by the end of the `with` block
    assert sorted(pool.released) == list(range(1, 11))
    assert pool.out == 0
    assert got == [("p", f"/slow{i}", ["infra"]) for i in range(10)]


def test_open_files_limit_raised(tmp_path):
    """A low open-files soft limit: the orchestrator raises it to the hard
    limit, so 60 local systems at once (a few files each) run fine."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"hard open-files limit {hard}: nothing to raise")

    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))

    r = run_script(
        tmp_path,
        """
        import json, resource
        from pathlib import Path
        from atex.provisioner.local import LocalProvisioner
        from atex.executor.command import CommandExecutor
        from atex.aggregator.jsonl import JSONLinesAggregator
        from atex.orchestrator.adhoc import AdHocOrchestrator
        before = resource.getrlimit(resource.RLIMIT_NOFILE)
        tests = {f"/t{i}": ("sleep", "2") for i in range(60)}
        out = Path.cwd()
        with JSONLinesAggregator(out / "r.jsonl", out / "f") as agg, \\
                LocalProvisioner(max_remotes=60) as prov:
            with AdHocOrchestrator("p", tests, [prov],
                                   lambda r: CommandExecutor(r, tests), agg) as o:
                during = resource.getrlimit(resource.RLIMIT_NOFILE)
                o.serve_forever()
        print(json.dumps([before, during]))
        """,
        preexec=lower,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    before, during = json.loads(r.stdout.splitlines()[-1])
    assert before == [48, hard]
    assert during == [hard, hard]
    results = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert sorted(x[2] for x in results) == sorted(f"/t{i}" for i in range(60))
    assert {x[1] for x in results} == {"pass"}, results[:3]


def test_next_test_gets_a_live_view(tmp_path):
    """next_test() gets one live view of the tests left (no O(queued)
    rebuild per call); it stays right across picks and re-runs, and is
    rebuilt from libatex's queue when libatex changed it on its own."""
    from test_orchestrator import PoolProvisioner, run, script

    from atex.orchestrator.adhoc import AdHocOrchestrator, LimitedRerunsMixin

    bad = script(tmp_path, "bad.sh", "exit 1\n")
    ok = script(tmp_path, "ok.sh", "true\n")
    order, views, rebuilds = [], [], []

    class Runner(LimitedRerunsMixin(1), AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            order.append(list(to_run))
            views.append(to_run.mapping)
            return next(iter(to_run))

        def destructive(self, info, /):
            return False

        def _atex_next_test(self, queued, previous):
            if not isinstance(queued, int):
                rebuilds.append(queued)
            return super()._atex_next_test(queued, previous)

    tests = {"/a": (bad,), "/b": (ok,), "/c": (ok,), "/d": (bad,)}
    results, _ = run(tmp_path, tests, cls=Runner, provisioner=PoolProvisioner(1))
    assert order == [["/a", "/b", "/c", "/d"], ["/b", "/c", "/d", "/a"],
                     ["/c", "/d", "/a"], ["/d", "/a"], ["/a", "/d"], ["/d"]]
    assert rebuilds == []
    assert all(v == views[0] for v in views)  # one dict, seen live
    assert sorted(r[2] for r in results) == ["/a", "/b", "/c", "/d"]

    # A stale copy (as after libatex re-queued a lost system's test):
    # rebuilt from libatex's queue, in Python ATEX's order.
    order.clear()

    class Stale(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            order.append(list(to_run))
            if len(order) == 1:
                self._to_run["/zzz"] = None  # make the copy disagree
            return next(iter(to_run))

        def _atex_next_test(self, queued, previous):
            if not isinstance(queued, int):
                rebuilds.append(list(queued))
            return super()._atex_next_test(queued, previous)

    tests = {"/a": (ok,), "/b": (ok,), "/c": (ok,)}
    run(tmp_path / "2", tests, cls=Stale, provisioner=PoolProvisioner(1))
    assert rebuilds == [[1, 2]]
    assert order == [["/a", "/b", "/c"], ["/b", "/c"], ["/c"]]


def test_same_and_set_data_no_leak(tmp_path):
    """10,000 compares and pushes of a test's data keep memory flat."""
    import gc
    import resource
    import tracemalloc

    ft = discover(make_tree(tmp_path / "tree", 2, n_extra=20), "/plans/p")
    d = ft._discovery
    data = ft.data["/tests/t0"]

    def loop(n):
        for i in range(n):
            data["extra"]["n"] = i
            assert not d.same(0, data)
            d.set_data(0, data)
            assert d.same(0, data)
            ft._sync(only="/tests/t0")

    loop(1000)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loop(10000)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert grown < 100_000, grown
    assert rss1 - rss0 < 4096, (rss0, rss1)  # KiB

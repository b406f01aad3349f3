"""atex.orchestrator.adhoc: AdHocOrchestrator over libatex's orchestrator,
with local systems (LocalProvisioner, a pool written in Python), the
command executor and JSON Lines / Python-written aggregators."""

import gc
import json
import os
import resource
import signal
import subprocess
import threading
import time
import tracemalloc
import types
from pathlib import Path

import pytest

from atex.aggregator import Aggregator
from atex.aggregator.jsonl import JSONLinesAggregator
from atex.connection.local import LocalConnection
from atex.executor.command import CommandExecutor
from atex.orchestrator import Orchestrator, OrchestratorError
from atex.orchestrator.adhoc import (
    AdHocOrchestrator,
    FailedSetupError,
    FMFDestructiveMixin,
    FMFDurationMixin,
    FMFPriorityMixin,
    LimitedRerunsMixin,
)
from atex.provisioner import Provisioner, Remote
from atex.provisioner.local import LocalProvisioner


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class PoolRemote(Remote):
    """A local system of PoolProvisioner."""

    def __init__(self, pool, number):
        self.pool = pool
        self.number = number
        self.conn = LocalConnection()
        self.released = False

    def __str__(self):
        return f"pool-{self.number}"

    def connect(self):
        pass

    def disconnect(self):
        pass

    def cmd(self, command, *, func=subprocess.run, **kwargs):
        return self.conn.cmd(command, func=func, **kwargs)

    def rsync(self, *args, func=subprocess.run, **kwargs):
        return self.conn.rsync(*args, func=func, **kwargs)

    def release(self):
        with self.pool.lock:
            if self.released:
                return
            self.released = True
            self.pool.out -= 1
            self.pool.released.append(self.number)


class PoolProvisioner(Provisioner):
    """A provisioner written in Python: at most `size` local systems out
    at once, numbered in the order they are handed out."""

    def __init__(self, size):
        self.size = size
        self.lock = threading.Lock()
        self.wanted = 0
        self.out = 0
        self.made = 0
        self.released = []
        self.requests = []

    def start(self):
        pass

    def stop(self):
        pass

    def provision(self, count=1):
        with self.lock:
            self.wanted += count
            self.requests.append(count)

    def clear(self):
        with self.lock:
            self.wanted = 0

    def get_remote(self, block=True):
        while True:
            with self.lock:
                if self.wanted > 0 and self.out < self.size:
                    self.wanted -= 1
                    self.out += 1
                    self.made += 1
                    return PoolRemote(self, self.made)
            if not block:
                return None
            time.sleep(0.01)


class ListAggregator(Aggregator):
    """An aggregator written in Python: keeps (platform, test, statuses)."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True

    def ingest(self, platform, test_name, artifacts):
        path = Path(artifacts) / "results"
        lines = path.read_text().splitlines() if path.exists() else []
        statuses = [json.loads(line)["status"] for line in lines]
        with self.lock:
            self.got.append((platform, test_name, statuses))


def run(tmp_path, tests, *, cls=AdHocOrchestrator, provisioner=None,
        aggregator=None, old=False, **kwargs):
    """Runs `tests` ({name: argv}) and returns (final, earlier) JSON
    lines, or the Python aggregator's list."""
    target, files = tmp_path / "results.jsonl", tmp_path / "files"
    old_target = tmp_path / "old.jsonl"
    prov = provisioner or LocalProvisioner()
    agg = aggregator or JSONLinesAggregator(target, files)
    old_agg = None
    if old:
        old_agg = JSONLinesAggregator(
            old_target, tmp_path / "old-files", allow_duplicate=True)
    with prov, agg:
        if old_agg:
            old_agg.start()
        try:
            with cls("test-platform", tests.keys(), (prov,),
                     lambda remote: CommandExecutor(remote, tests), agg,
                     old_aggregator=old_agg, **kwargs) as orch:
                orch.serve_forever()
        finally:
            if old_agg:
                old_agg.stop()
    if aggregator:
        return aggregator.got, []
    return read_jsonl(target), read_jsonl(old_target)


# -- Python ATEX's scenarios -----------------------------------------------


def test_single(tmp_path):
    ok = script(tmp_path, "ok.sh", "echo hello\n")
    results, _ = run(tmp_path, {"/one": (ok,)})
    assert len(results) == 1
    assert results[0][:3] == ["test-platform", "pass", "/one"]
    assert results[0][4] == ["output.txt"]


def test_multiple(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    results, _ = run(tmp_path, {f"/t{i}": (ok,) for i in range(5)})
    assert sorted(r[2] for r in results) == [f"/t{i}" for i in range(5)]
    assert {r[1] for r in results} == {"pass"}


def test_pass_and_fail(tmp_path):
    ok = script(tmp_path, "ok.sh", "exit 0\n")
    bad = script(tmp_path, "bad.sh", "exit 3\n")
    results, old = run(tmp_path, {"/ok": (ok,), "/bad": (bad,)}, old=True)
    assert {r[2]: r[1] for r in results} == {"/ok": "pass", "/bad": "fail"}
    assert old == []  # never re-run by default


def test_rerun_goes_to_old_aggregator(tmp_path):
    flag = tmp_path / "flag"
    flaky = script(tmp_path, "flaky.sh",
                   f"[ -e {flag} ] && exit 0\ntouch {flag}\nexit 1\n")
    seen = []

    class Once(AdHocOrchestrator):
        def should_be_rerun(self, info, /):
            seen.append((info.test_name, info.exit_code, info.exception))
            return len(seen) == 1

    results, old = run(tmp_path, {"/flaky": (flaky,)}, cls=Once, old=True)
    assert [r[1:3] for r in results] == [["pass", "/flaky"]]
    assert [r[1:3] for r in old] == [["fail", "/flaky"]]
    # asked only about the failed attempt, not the passing one
    assert seen == [("/flaky", 1, None)]


def test_next_test_called_once_per_test(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    picked = []

    class Last(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            assert isinstance(to_run, type({}.keys()))
            picked.append(list(to_run)[-1])
            return picked[-1]

    pool = PoolProvisioner(1)
    tests = {"/aaa": (ok,), "/bbb": (ok,), "/ccc": (ok,)}
    results, _ = run(tmp_path, tests, cls=Last, provisioner=pool)
    assert picked == ["/ccc", "/bbb", "/aaa"]
    assert [r[2] for r in results] == ["/ccc", "/bbb", "/aaa"]


def test_empty_tests(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        AdHocOrchestrator("p", [], (LocalProvisioner(),), CommandExecutor,
                          ListAggregator())


def test_any_str_able_names(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")

    class Name:
        def __init__(self, n):
            self.n = n

        def __str__(self):
            return f"/obj/{self.n}"

    names = [Name(1), Name(2)]
    tests = {str(n): (ok,) for n in names}
    seen = []

    class Check(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            seen.extend(to_run)
            return next(iter(to_run))

    agg = ListAggregator()
    with LocalProvisioner() as prov:
        with Check("p", names, (prov,),
                   lambda r: CommandExecutor(r, tests), agg) as orch:
            orch.serve_forever()
    assert all(isinstance(n, Name) for n in seen)
    assert sorted(t for _, t, _ in agg.got) == ["/obj/1", "/obj/2"]


# -- hooks -------------------------------------------------------------------


def test_previous_fresh_then_reused(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    bad = script(tmp_path, "bad.sh", "exit 1\n")
    calls = []

    class Watch(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            calls.append((type(previous).__name__, str(previous.remote),
                          previous.get("test_name"),
                          previous.get("exit_code")))
            assert previous.provisioner is pool
            assert isinstance(previous.executor, CommandExecutor)
            return next(iter(to_run))

    pool = PoolProvisioner(1)
    tests = {"/a": (ok,), "/b": (bad,), "/c": (ok,)}
    run(tmp_path, tests, cls=Watch, provisioner=pool)
    assert calls == [
        ("SetupInfo", "pool-1", None, None),
        ("FinishedInfo", "pool-1", "/a", 0),
        # /b exited 1: destructive by default, a fresh system for /c
        ("SetupInfo", "pool-2", None, None),
    ]
    # (a surplus system may come and go at the very end)
    assert pool.released[:2] == [1, 2]
    assert pool.out == 0


def test_finished_info_and_destructive(tmp_path):
    ok = script(tmp_path, "ok.sh", "echo out\n")
    infos = []

    class Keep(AdHocOrchestrator):
        def destructive(self, info, /):
            art = Path(info.artifacts.name)
            infos.append((info.test_name, info.exit_code, info.exception,
                          (art / "results").exists(), str(info.remote),
                          sorted(info)))
            return True  # every test gets a fresh system

    pool = PoolProvisioner(1)
    run(tmp_path, {"/x": (ok,), "/y": (ok,)}, cls=Keep, provisioner=pool)
    assert [i[:5] for i in infos] == [
        ("/x", 0, None, True, "pool-1"), ("/y", 0, None, True, "pool-2")]
    assert infos[0][5] == sorted(["provisioner", "remote", "executor",
                                  "test_name", "artifacts", "exit_code",
                                  "exception"])


def test_reruns_after_the_other_tests(tmp_path):
    bad = script(tmp_path, "bad.sh", "exit 1\n")
    ok = script(tmp_path, "ok.sh", "true\n")
    order = []

    class Runner(LimitedRerunsMixin(1), AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            order.append(list(to_run))
            return next(iter(to_run))

        def destructive(self, info, /):
            return False

    pool = PoolProvisioner(1)
    results, old = run(tmp_path, {"/a": (bad,), "/b": (ok,), "/c": (ok,)},
                       cls=Runner, provisioner=pool, old=True)
    # Python ATEX appends a re-run; it stays on its (non-destroyed) system
    assert order == [["/a", "/b", "/c"], ["/b", "/c", "/a"], ["/c", "/a"],
                     ["/a"]]
    assert pool.made == 1
    assert sorted(r[2] for r in results) == ["/a", "/b", "/c"]
    assert [r[1:3] for r in old] == [["fail", "/a"]]


def test_limited_reruns_mixin(tmp_path):
    bad = script(tmp_path, "bad.sh", "exit 2\n")
    odd = script(tmp_path, "odd.sh", "exit 7\n")

    class Runner(LimitedRerunsMixin(2, cond=lambda code: code == 2),
                 AdHocOrchestrator):
        pass

    results, old = run(tmp_path, {"/bad": (bad,), "/odd": (odd,)},
                       cls=Runner, old=True)
    assert sorted(r[2] for r in results) == ["/bad", "/odd"]
    # the earlier attempts, renamed by allow_duplicate as in Python ATEX
    assert [r[2] for r in old] == ["/bad", "/bad (1)"]


def test_fmf_mixins(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    fmf_tests = types.SimpleNamespace(data={
        "/plain": {},
        "/short": {"duration": "1m"},
        "/long": {"duration": "1h"},
        "/urgent": {"extra-priority": 5},
        "/late": {"extra-priority": -1, "tag": ["destructive"]},
    })
    order, destroyed = [], []

    class Runner(FMFPriorityMixin(fmf_tests), FMFDurationMixin(fmf_tests),
                 FMFDestructiveMixin(fmf_tests), AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            order.append(super().next_test(to_run, previous))
            return order[-1]

        def destructive(self, info, /):
            verdict = super().destructive(info)
            if verdict:
                destroyed.append(info.test_name)
            return verdict

    pool = PoolProvisioner(1)
    run(tmp_path, {n: (ok,) for n in fmf_tests.data}, cls=Runner,
        provisioner=pool)
    # priority first, then duration, then fmf order, negative priority last
    assert order == ["/urgent", "/long", "/short", "/plain", "/late"]
    # /late is tagged destructive: its system went although it passed
    assert destroyed == ["/late"]
    assert pool.made >= 1 and pool.out == 0


def test_bad_next_test_choice(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")

    class Wrong(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            return "/nope"

    with pytest.raises(ValueError, match="'/nope'.*not one of the tests"):
        run(tmp_path, {"/a": (ok,)}, cls=Wrong)


def test_hook_exception_keeps_traceback(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")

    class Broken(AdHocOrchestrator):
        def destructive(self, info, /):
            raise RuntimeError(f"boom in {info.test_name}")

    with pytest.raises(RuntimeError, match="boom in /a") as err:
        run(tmp_path, {"/a": (ok,)}, cls=Broken)
    names = [frame.name for frame in err.traceback]
    assert "destructive" in names


def test_factory_exception_ends_run(tmp_path):
    agg = ListAggregator()

    def factory(remote):
        raise KeyError("no executor for you")

    with LocalProvisioner() as prov:
        with AdHocOrchestrator("p", ["/a"], (prov,), factory, agg) as orch:
            with pytest.raises(KeyError, match="no executor"):
                orch.serve_forever()
    assert agg.got == []


def test_failed_setup_error(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    tries = []

    class NoSetup(AdHocOrchestrator):
        def run_setup(self, info, /):
            tries.append(str(info.remote))
            raise OSError("cannot set up")

    pool = PoolProvisioner(1)
    with pytest.raises(FailedSetupError, match="setup retries limit"):
        run(tmp_path, {"/a": (ok,)}, cls=NoSetup, provisioner=pool,
            max_failed_setups=2)
    # 2 tolerated, the third ends the run; each on a fresh system
    assert tries[:3] == ["pool-1", "pool-2", "pool-3"]
    assert len(tries) <= 4  # one more may have arrived before the abort
    assert pool.out == 0
    assert issubclass(FailedSetupError, OrchestratorError)


def test_run_setup_override_runs_instead_of_start(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    setups = []

    class Setup(AdHocOrchestrator):
        def run_setup(self, info, /):
            setups.append(type(info).__name__)
            super().run_setup(info)

    results, _ = run(tmp_path, {"/a": (ok,), "/b": (ok,)}, cls=Setup,
                     provisioner=PoolProvisioner(1))
    assert setups == ["SetupInfo"]
    assert len(results) == 2


def test_python_provisioner_and_aggregator(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    bad = script(tmp_path, "bad.sh", "exit 1\n")
    pool = PoolProvisioner(2)
    agg = ListAggregator()
    got, _ = run(tmp_path, {"/a": (ok,), "/b": (bad,), "/c": (ok,)},
                 provisioner=pool, aggregator=agg)
    assert sorted(got) == [("test-platform", "/a", ["pass"]),
                           ("test-platform", "/b", ["fail"]),
                           ("test-platform", "/c", ["pass"])]
    assert pool.out == 0 and pool.made >= 2
    assert agg.started and agg.stopped


def test_serve_once_loop(tmp_path):
    ok = script(tmp_path, "ok.sh", "sleep 0.2\n")
    tests = {"/a": (ok,), "/b": (ok,)}
    aggs = [ListAggregator(), ListAggregator()]
    with LocalProvisioner() as prov:
        orchs = [AdHocOrchestrator(f"p{i}", tests, (prov,),
                                   lambda r: CommandExecutor(r, tests), a)
                 for i, a in enumerate(aggs)]
        with orchs[0] as o1, orchs[1] as o2:
            alive = [o1, o2]
            t0 = time.monotonic()
            while alive:
                alive = [o for o in alive if o.serve_once()]
                time.sleep(0.01)
            assert time.monotonic() - t0 < 10
            assert o1.serve_once() is False
    assert sorted(p for p, _, _ in aggs[0].got + aggs[1].got) == [
        "p0", "p0", "p1", "p1"]


def test_ctrl_c(tmp_path):
    pids = tmp_path / "pids"
    slow = script(tmp_path, "slow.sh", f"echo $$ >> {pids}\nexec sleep 60\n")
    agg = ListAggregator()
    tests = {f"/slow{i}": (slow,) for i in range(3)}
    sent = []

    def interrupt():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if pids.exists() and len(pids.read_text().split()) == 3:
                break
            time.sleep(0.05)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    with LocalProvisioner() as prov:
        with AdHocOrchestrator("p", tests, (prov,),
                               lambda r: CommandExecutor(r, tests),
                               agg) as orch:
            timer = threading.Thread(target=interrupt)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                orch.serve_forever()
            took = time.monotonic() - sent[0]
            timer.join()
        # leaving the orchestrator's `with` waited for every release
        assert str(prov) == "LocalProvisioner(0 remotes)"
    assert took < 1.0, took
    # the killed tests are canceled ("infra"), not failed by the kill
    assert sorted(agg.got) == [("p", f"/slow{i}", ["infra"]) for i in range(3)]
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text(), pid


def test_abort_from_thread(tmp_path):
    slow = script(tmp_path, "slow.sh", "exec sleep 60\n")
    tests = {"/slow": (slow,)}
    with LocalProvisioner() as prov:
        with AdHocOrchestrator("p", tests, (prov,),
                               lambda r: CommandExecutor(r, tests),
                               ListAggregator()) as orch:
            threading.Timer(0.5, orch.abort).start()
            t0 = time.monotonic()
            with pytest.raises(OrchestratorError, match="abort"):
                orch.serve_forever()
            assert time.monotonic() - t0 < 5


def test_hundred_systems(tmp_path):
    ok = script(tmp_path, "ok.sh", "sleep 0.5\n")
    tests = {f"/t{i:03d}": (ok,) for i in range(100)}
    t0 = time.monotonic()
    results, _ = run(tmp_path, tests)
    took = time.monotonic() - t0
    assert len(results) == 100
    assert {r[1] for r in results} == {"pass"}
    # 100 systems at once: far below 100 * 0.5 s one after another
    assert took < 25, took


def test_orchestrator_abc():
    with pytest.raises(TypeError):
        Orchestrator()

    class Counting(Orchestrator):
        def __init__(self):
            self.n = 0
            self.log = []

        def serve_once(self):
            self.n += 1
            return self.n < 3

        def start(self):
            self.log.append("start")

        def stop(self):
            self.log.append("stop")

    with Counting() as c:
        c.serve_forever()
    assert c.n == 3 and c.log == ["start", "stop"]


def test_no_leak(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    tests = {"/a": (ok,)}
    agg = ListAggregator()

    class Hooks(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            return next(iter(to_run))

        def destructive(self, info, /):
            return False

    with PoolProvisioner(1) as prov:
        def cycle():
            orch = Hooks("p", tests, (prov,),
                         lambda r: CommandExecutor(r, tests), agg)
            orch.start()
            orch.stop()

        for _ in range(200):
            cycle()
        gc.collect()
        tracemalloc.start()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        snap0 = tracemalloc.take_snapshot()
        for _ in range(10000):
            cycle()
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert grown < 200_000, grown
    assert rss1 - rss0 < 20_000, (rss0, rss1)  # KiB


def test_no_leak_running(tmp_path):
    """The hook path (Python next_test/destructive/finished info) over
    many tests on one reused system."""
    ok = script(tmp_path, "ok.sh", "true\n")
    tests = {f"/t{i}": (ok,) for i in range(400)}

    class Hooks(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            return next(iter(to_run))

        def destructive(self, info, /):
            return False

    def once():
        agg = ListAggregator()
        run(tmp_path, tests, cls=Hooks, provisioner=PoolProvisioner(1),
            aggregator=agg)
        assert len(agg.got) == 400

    once()
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start(10)
    snap0 = tracemalloc.take_snapshot()
    once()
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # pathlib interns every path part: the interned dict's growth is
    # Python's, not ours
    skip = [tracemalloc.Filter(False, "*pathlib.py"),
            tracemalloc.Filter(False, "<unknown>")]
    diff = snap1.filter_traces(skip).compare_to(
        snap0.filter_traces(skip), "traceback")
    grown = sum(s.size_diff for s in diff)
    assert grown < 200_000, "\n".join(
        f"{s}\n" + "\n".join(s.traceback.format()) for s in diff[:3])
    assert rss1 - rss0 < 20_000, (rss0, rss1)


def test_executor_exception_reaches_hooks(tmp_path):
    """What a Python executor raised is FinishedInfo.exception (exit_code
    None), its system replaced without asking destructive()."""
    ok = script(tmp_path, "ok.sh", "true\n")
    seen, asked = [], []

    class Flaky(CommandExecutor):
        def run_test(self, test_name, artifacts):
            if test_name == "/boom":
                raise RuntimeError("bad luck in run_test")
            return super().run_test(test_name, artifacts)

    class Watch(AdHocOrchestrator):
        def should_be_rerun(self, info, /):
            seen.append((info.test_name, info.exception, info.exit_code))
            return False

        def destructive(self, info, /):
            asked.append(info.test_name)
            return False

    tests = {"/boom": (ok,), "/fine": (ok,)}
    pool = PoolProvisioner(1)
    agg = ListAggregator()
    with pool, agg:
        with Watch("p", tests, (pool,), lambda r: Flaky(r, tests),
                   agg) as orch:
            orch.serve_forever()
    assert len(seen) == 1
    name, exc, code = seen[0]
    assert name == "/boom" and code is None
    assert isinstance(exc, RuntimeError) and "bad luck" in str(exc)
    assert asked == ["/fine"]
    assert pool.made >= 2  # /boom's system was replaced
    # ingested all the same (no results: the executor wrote none)
    assert sorted(t for _, t, _ in agg.got) == ["/boom", "/fine"]


def test_several_provisioners(tmp_path):
    """Each system's infos name the provisioner that gave it."""
    ok = script(tmp_path, "ok.sh", "sleep 0.1\n")
    seen = []

    class Watch(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            seen.append((previous.provisioner, previous.remote))
            return next(iter(to_run))

    pools = (PoolProvisioner(2), PoolProvisioner(2))
    tests = {f"/t{i}": (ok,) for i in range(8)}
    agg = ListAggregator()
    with pools[0], pools[1], agg:
        with Watch("p", tests, pools, lambda r: CommandExecutor(r, tests),
                   agg) as orch:
            orch.serve_forever()
    assert len(agg.got) == 8
    assert all(remote.pool is prov for prov, remote in seen)
    assert {id(prov) for prov, _ in seen} == {id(p) for p in pools}
    assert all(p.out == 0 for p in pools)

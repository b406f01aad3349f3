"""atex.executor: FMFExecutor over a LocalConnection (results and files,
environment, Python ATEX's exceptions, cancel, Ctrl-C, leaks),
CommandExecutor, and the bridge that lets C run any Executor."""

import json
import os
import resource
import signal
import subprocess
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from atex import _atex
from atex.connection.local import LocalConnection
from atex.executor import Executor, ExecutorError
from atex.executor.command import CommandExecutor
from atex.executor.fmf import FMFExecutor, TestAbortedError, discover
from atex.executor.fmf.testcontrol import BadControlError, BadReportJSONError

TREES = Path(__file__).resolve().parent.parent / "conformance" / "fmf" / "trees"

ENV_TREE = """
/plan:
  discover: {how: fmf}
  execute: {how: tmt}
  environment:
    LEVEL_PLAN: plan
    LEVEL_TEST: plan
    LEVEL_EXEC: plan
    LEVEL_CALL: plan
  prepare:
    how: shell
    script: echo "prepare $LEVEL_EXEC $(basename "$PWD")" > "$OUT_DIR/prepare"
  finish:
    how: shell
    script: echo finish > "$OUT_DIR/finish"
/env:
  environment:
    LEVEL_TEST: test
    LEVEL_EXEC: test
    LEVEL_CALL: test
  test: |
    echo "$LEVEL_PLAN $LEVEL_TEST $LEVEL_EXEC $LEVEL_CALL $TMT_TEST_NAME $TMT_REBOOT_COUNT"
    basename "$PWD"
/sleep:
  duration: 2
  test: |
    echo started
    sleep 60
/code:
  test: exit 3
"""


def results(artifacts):
    return [json.loads(line) for line in (Path(artifacts) / "results").read_text().splitlines()]


@pytest.fixture
def results_tests():
    return discover(TREES / "atex-results", "/plan")


@pytest.fixture
def env_tree(tmp_path):
    root = tmp_path / "envtree"
    (root / ".fmf").mkdir(parents=True)
    (root / ".fmf" / "version").write_text("1\n")
    (root / "main.fmf").write_text(textwrap.dedent(ENV_TREE))
    (root / "sub").mkdir()
    (root / "sub" / "main.fmf").write_text("/cwd:\n  test: pwd\n")
    return root


@pytest.fixture
def executor(results_tests):
    with FMFExecutor(LocalConnection(), results_tests) as e:
        yield e


def test_results_and_files(executor, tmp_path):
    a = tmp_path / "pass"
    assert executor.run_test("/test_noresult_pass", a) == 0
    assert results(a) == [{"status": "pass", "files": ["output.txt"]}]
    assert (a / "files" / "output.txt").read_text() == "passing the script\n"
    a = tmp_path / "fail"
    assert executor.run_test("/test_noresult_fail", str(a)) == 1
    assert results(a) == [{"status": "fail", "files": ["output.txt"]}]
    a = tmp_path / "subtest"
    executor.run_test("/test_subtest", a)
    assert results(a) == [{"status": "fail", "name": "subtest"}, {"status": "pass"}]
    a = tmp_path / "files"
    executor.run_test("/test_files", a)
    assert results(a) == [{"status": "pass", "files": ["some_file"]}]
    assert (a / "files" / "some_file").read_bytes() == b"\x00\x10\x20\x30\x40"
    a = tmp_path / "trivial"
    executor.run_test("/test_trivial", a)
    assert results(a) == [{"status": "pass"}]
    assert list((a / "files").iterdir()) == []


def test_timeout(executor, results_tests, tmp_path):
    # .data edits reach the executor: 60 s becomes 2 s.
    results_tests.data["/test_noresult_abort"]["duration"] = "2"
    results_tests.data["/test_trivial_abort"]["duration"] = "2"
    start = time.monotonic()
    with pytest.raises(TestAbortedError, match=r"^test duration timeout reached$"):
        executor.run_test("/test_noresult_abort", tmp_path / "a")
    assert time.monotonic() - start < 10
    assert results(tmp_path / "a") == [{
        "status": "infra",
        "note": "TestAbortedError(test duration timeout reached)",
        "files": ["output.txt"],
    }]
    # What the test closed for itself stays; nothing is added.
    with pytest.raises(TestAbortedError, match=r"^test duration timeout reached$"):
        executor.run_test("/test_trivial_abort", tmp_path / "b")
    assert results(tmp_path / "b") == [{"status": "pass"}]


def test_protocol_faults(executor, tmp_path, monkeypatch):
    with pytest.raises(BadReportJSONError, match="invalid JSON in result"):
        executor.run_test("/test_bad_json", tmp_path / "a")
    assert results(tmp_path / "a")[0]["status"] == "infra"
    with pytest.raises(BadReportJSONError, match=r"^'testout' specified, but empty$"):
        executor.run_test("/test_empty_testout", tmp_path / "b")
    monkeypatch.setenv("ATEX_DEBUG_NO_EXITCODE", "1")
    with pytest.raises(BadControlError, match=r"^EOF when reading data$") as info:
        executor.run_test("/test_no_file_data", tmp_path / "c")
    assert not isinstance(info.value, BadReportJSONError)
    with pytest.raises(TestAbortedError, match=r"exitcode not reported"):
        executor.run_test("/test_noresult_pass", tmp_path / "d")
    monkeypatch.delenv("ATEX_DEBUG_NO_EXITCODE")
    assert executor.run_test("/test_noresult_pass", tmp_path / "e") == 0


def test_debug_output_fd(executor, tmp_path, monkeypatch):
    r, w = os.pipe()
    monkeypatch.setenv("ATEX_DEBUG_TEST_OUTPUT_FD", str(w))
    executor.run_test("/test_noresult_pass", tmp_path / "a")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"passing the script\n"
    assert (tmp_path / "a" / "files" / "output.txt").read_bytes() == b""


def test_bad_calls(results_tests, tmp_path):
    e = FMFExecutor(LocalConnection(), results_tests)
    with pytest.raises(ExecutorError, match="before start"):
        e.run_test("/test_noresult_pass", tmp_path)
    e.stop()  # not started: nothing to do
    with e:
        with pytest.raises(ValueError, match="'/nope' doesn't exist in the given FMFTests"):
            e.run_test("/nope", tmp_path)
        del results_tests.data["/test_noresult_fail"]
        with pytest.raises(ValueError, match="doesn't exist"):
            e.run_test("/test_noresult_fail", tmp_path)
        results_tests.data["/test_noresult_pass"]["duration"] = "forever"
        with pytest.raises(ValueError, match="duration"):
            e.run_test("/test_noresult_pass", tmp_path / "x")
    assert str(e) == f"FMFExecutor(local, {TREES / 'atex-results'})"
    with pytest.raises(TypeError, match="not an atex.connection.Connection"):
        FMFExecutor(object(), results_tests).start()


def test_env_precedence_prepare_finish(env_tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    t = discover(env_tree, "/plan")
    conn = LocalConnection()
    with FMFExecutor(conn, t, env={"LEVEL_EXEC": "exec", "LEVEL_CALL": "exec",
                                   "OUT_DIR": str(out)}) as e:
        # Prepare ran in the uploaded tree, with the executor's env.
        assert (out / "prepare").read_text().startswith("prepare exec ")
        e.run_test("/env", tmp_path / "a", env={"LEVEL_CALL": "call"})
        got = (tmp_path / "a" / "files" / "output.txt").read_text().splitlines()
        assert got[0] == "plan test exec call /env 0"
        e.run_test("/sub/cwd", tmp_path / "b")
        assert (tmp_path / "b" / "files" / "output.txt").read_text().rstrip().endswith("/sub")
        assert e.run_test("/code", tmp_path / "c") == 3
    assert (out / "finish").read_text() == "finish\n"


def test_cancel_from_thread(env_tree, tmp_path):
    t = discover(env_tree, "/plan")
    t.data["/sleep"]["duration"] = "5m"
    with FMFExecutor(LocalConnection(), t, env={"OUT_DIR": str(tmp_path)}) as e:
        timer = threading.Timer(1.0, e.cancel)
        start = time.monotonic()
        timer.start()
        with pytest.raises(TestAbortedError, match=r"^cancel requested$"):
            e.run_test("/sleep", tmp_path / "a")
        assert time.monotonic() - start < 5
        assert results(tmp_path / "a") == [{
            "status": "infra",
            "note": "TestAbortedError(cancel requested)",
            "files": ["output.txt"],
        }]
        # As in Python ATEX, a cancel ends the running test only.
        assert e.run_test("/code", tmp_path / "b") == 3


def test_ctrl_c_during_run_test(env_tree, tmp_path):
    t = discover(env_tree, "/plan")
    t.data["/sleep"]["duration"] = "5m"
    with FMFExecutor(LocalConnection(), t, env={"OUT_DIR": str(tmp_path)}) as e:
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            e.run_test("/sleep", tmp_path / "a")
        assert time.monotonic() - start < 3
        assert results(tmp_path / "a")[0]["note"] == "TestAbortedError(cancel requested)"
        assert e.run_test("/code", tmp_path / "b") == 3


def test_eval_exit_code_override(results_tests, tmp_path):
    class Lenient(FMFExecutor):
        def eval_exit_code(self, test_name, reporter, exit_code):
            assert reporter is None
            return 0 if test_name == "/test_noresult_fail" else exit_code

    with Lenient(LocalConnection(), results_tests) as e:
        assert e.run_test("/test_noresult_fail", tmp_path) == 0
        # An override means C must call the Python methods.
        assert e._atex_handle() is None


def test_fmf_executor_leak_loop(results_tests, tmp_path):
    # 10,000 executors made and freed, and 10,000 refused run_test calls;
    # then 200 real runs: memory stays flat.
    conn = LocalConnection()

    def make():
        FMFExecutor(conn, results_tests, env={"A": "1"})._get_handle()

    with FMFExecutor(conn, results_tests) as e:
        def refused():
            try:
                e.run_test("/nope", tmp_path)
            except ValueError:
                pass

        for fn, count in ((make, 10000), (refused, 10000)):
            for _ in range(100):
                fn()
            tracemalloc.start()
            before_py = tracemalloc.get_traced_memory()[0]
            before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for _ in range(count):
                fn()
            after_py = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            after_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            assert after_py - before_py < 256 * 1024, fn.__name__
            assert after_rss - before_rss < 16 * 1024, fn.__name__
        art = tmp_path / "runs"
        for _ in range(20):
            e.run_test("/test_noresult_pass", art)
        before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(200):
            e.run_test("/test_noresult_pass", art)
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss < 8 * 1024


# -- CommandExecutor ---------------------------------------------------------


def test_command_executor(tmp_path):
    tests = {"ok": ("sh", "-c", "echo out; echo err >&2"), "bad": ("false",)}
    with CommandExecutor(LocalConnection(), tests) as e:
        assert str(e) == "CommandExecutor(local, 2 tests)"
        (tmp_path / "a").mkdir()
        assert e.run_test("ok", tmp_path / "a") == 0
        assert results(tmp_path / "a") == [{"status": "pass", "files": ["output.txt"]}]
        assert (tmp_path / "a" / "files" / "output.txt").read_text() == "out\nerr\n"
        (tmp_path / "b").mkdir()
        assert e.run_test("bad", str(tmp_path / "b"), output="../log/x") == 1
        assert results(tmp_path / "b") == [{"status": "fail", "files": ["../log/x"]}]
        assert (tmp_path / "b" / "files" / "log" / "x").exists()
        with pytest.raises(ValueError, match="'nope' doesn't exist"):
            e.run_test("nope", tmp_path)


def test_command_executor_evaluate_and_cancel(tmp_path):
    class Grep(CommandExecutor):
        def evaluate(self, exit_code, output):
            return "warn" if b"careful" in output.read_bytes() else super().evaluate(exit_code, output)

    e = Grep(LocalConnection(), {"w": ("echo", "careful"), "long": ("sleep", "60")})
    (tmp_path / "a").mkdir()
    e.run_test("w", tmp_path / "a")
    assert results(tmp_path / "a")[0]["status"] == "warn"
    (tmp_path / "b").mkdir()
    threading.Timer(0.5, e.cancel).start()
    start = time.monotonic()
    assert e.run_test("long", tmp_path / "b") == -signal.SIGKILL
    assert time.monotonic() - start < 5
    assert results(tmp_path / "b")[0]["status"] == "fail"


# -- the bridge: C calling a Python Executor ------------------------------------


class Recorder(Executor):
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail
        self.thread = None

    def start(self):
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")

    def cancel(self):
        self.calls.append("cancel")

    def run_test(self, test_name, artifacts, *, env=None):
        self.calls.append(("run_test", test_name, type(artifacts).__name__, env))
        self.thread = threading.get_ident()
        if self.fail:
            raise self.fail
        (artifacts / "results").write_text('{"status": "pass"}\n')
        return 7


def test_bridge_calls_python(tmp_path):
    r = Recorder()
    art = tmp_path / "deep" / "art"
    start_rc, rc, code, stop_rc, msg = _atex._executor_bridge_selftest(r, "/t", str(art), {"K": "v"})
    assert (start_rc, rc, code, stop_rc) == (0, 0, 7, 0)
    assert r.calls == ["start", ("run_test", "/t", "PosixPath", {"K": "v"}), "stop"]
    assert r.thread != threading.get_ident()  # called from a C thread
    assert results(art) == [{"status": "pass"}]
    # No env: called as Executor.run_test(test_name, artifacts).
    r.calls.clear()
    _atex._executor_bridge_selftest(r, "/t", str(art))
    assert r.calls[1] == ("run_test", "/t", "PosixPath", None)
    assert r._atex_bridge.take_exception() is None


@pytest.mark.parametrize(
    "exc, code",
    [
        (TestAbortedError("gone"), _atex.E_ERROR),
        (ConnectionError("lost"), _atex.E_INFRA),
        (TimeoutError("slow"), _atex.E_TIMEDOUT),
        (ValueError("no test"), _atex.E_NOTFOUND),
    ],
)
def test_bridge_keeps_exceptions(tmp_path, exc, code):
    r = Recorder(fail=exc)
    start_rc, rc, exit_code, stop_rc, msg = _atex._executor_bridge_selftest(r, "/t", str(tmp_path))
    assert (start_rc, rc, exit_code, stop_rc) == (0, code, -1, 0)
    assert msg == f"run_test: {exc!r}"
    kept = r._atex_bridge.take_exception()
    assert kept is exc and kept.__traceback__ is not None
    assert r._atex_bridge.take_exception() is None


def test_bridge_for_command_executor(tmp_path):
    e = CommandExecutor(LocalConnection(), {"t": ("sh", "-c", "echo hi; exit 2")})
    art = tmp_path / "a"
    _, rc, code, _, _ = _atex._executor_bridge_selftest(e, "t", str(art))
    assert (rc, code) == (0, 2)
    assert (art / "files" / "output.txt").read_text() == "hi\n"


def test_builtin_fmf_executor_is_native(results_tests, tmp_path):
    e = FMFExecutor(LocalConnection(), results_tests)
    assert isinstance(e._atex_handle(), _atex.FMFExecutorHandle)
    start_rc, rc, code, stop_rc, _ = _atex._executor_bridge_selftest(
        e, "/test_noresult_fail", str(tmp_path / "a"))
    assert (start_rc, rc, code, stop_rc) == (0, 0, 1, 0)
    assert not hasattr(e, "_atex_bridge")
    with pytest.raises(TypeError, match="is not an atex.executor.Executor"):
        _atex._executor_bridge_selftest(object(), "/t", str(tmp_path))


def test_bridge_leak_loop(tmp_path):
    r = Recorder()
    art = str(tmp_path / "a")
    for _ in range(100):
        _atex._executor_bridge_selftest(r, "/t", art, {"A": "1"})
        r.calls.clear()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(3000):
        _atex._executor_bridge_selftest(r, "/t", art, {"A": "1"})
        r.calls.clear()
    assert tracemalloc.get_traced_memory()[0] - before < 256 * 1024
    tracemalloc.stop()

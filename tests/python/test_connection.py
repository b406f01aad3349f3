"""atex.connection: the ABC, LocalConnection, command lines of podman and
ssh (no server needed), and the bridge that lets C use a Python-written
connection."""

import os
import resource
import subprocess
import sys
import tracemalloc

import pytest

import atex
from atex import _atex
from atex.connection import Connection, NotConnectedError
from atex.connection.local import LocalConnection
from atex.connection.podman import PodmanConnection, SystemdPodmanConnection
from atex.connection.ssh import (
    ConnectError,
    GoneAwayError,
    ManagedSSHConnection,
    SSHError,
    StatelessSSHConnection,
)


def capture(calls):
    def func(args, **kwargs):
        calls.append((list(args), kwargs))
        return "func-result"

    return func


# ---- the ABC ----


def test_exceptions():
    assert issubclass(NotConnectedError, ConnectionError)
    assert issubclass(SSHError, ConnectionError)
    assert issubclass(GoneAwayError, SSHError)
    assert issubclass(ConnectError, SSHError)
    assert set(atex.connection.__all__) >= {"Connection", "local", "podman", "ssh"}
    with pytest.raises(TypeError):
        Connection()


class Recorder(Connection):
    def __init__(self, fail=False):
        self.log = []
        self.fail = fail

    def connect(self):
        self.log.append("connect")
        if self.fail:
            raise RuntimeError("connect failed")

    def disconnect(self):
        self.log.append("disconnect")

    def cmd(self, command, *, func=subprocess.run, **func_args):
        return func(command, **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        return func(("rsync", *args), **func_args)


def test_context_manager():
    r = Recorder()
    with r as entered:
        assert entered is r
        assert r.log == ["connect"]
    assert r.log == ["connect", "disconnect"]
    # connect() failing: disconnect() runs and the error goes on.
    r = Recorder(fail=True)
    with pytest.raises(RuntimeError, match="connect failed"):
        with r:
            pass
    assert r.log == ["connect", "disconnect"]
    # an exception in the body: disconnect, then the exception.
    r = Recorder()
    with pytest.raises(KeyError):
        with r:
            raise KeyError("x")
    assert r.log == ["connect", "disconnect"]


# ---- LocalConnection ----


def test_local_cmd_returns_what_func_returns(tmp_path):
    with LocalConnection(cwd=tmp_path) as c:
        proc = c.cmd(("echo", "foo bar"), stdout=subprocess.PIPE, text=True, check=True)
        assert isinstance(proc, subprocess.CompletedProcess)
        assert proc.stdout == "foo bar\n"
        out = c.cmd(("pwd",), func=subprocess.check_output)
        assert out == f"{tmp_path}\n".encode()
        p = c.cmd(("cat",), func=subprocess.Popen, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert isinstance(p, subprocess.Popen)
        assert p.communicate(b"\x00\x01\n\x02")[0] == b"\x00\x01\n\x02"
        assert p.returncode == 0


def test_local_cmd_kwargs(tmp_path):
    c = LocalConnection(cwd=tmp_path)
    proc = c.cmd(("cat",), input="foo\n", stdout=subprocess.PIPE, text=True)
    assert proc.stdout == "foo\n"
    proc = c.cmd(("cat",), input=b"\x00\xff", capture_output=True)
    assert proc.stdout == b"\x00\xff" and proc.stderr == b""
    proc = c.cmd(("sh", "-c", "echo out; echo err >&2"), stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT, text=True)
    assert proc.stdout == "out\nerr\n"
    with pytest.raises(subprocess.CalledProcessError):
        c.cmd(("false",), check=True)
    assert c.cmd(("false",)).returncode == 1
    with pytest.raises(subprocess.TimeoutExpired):
        c.cmd(("sleep", "5"), timeout=0.2)
    proc = c.cmd(("pwd",), cwd="/", stdout=subprocess.PIPE, text=True)
    assert proc.stdout == "/\n"  # cwd= given wins over the connection's
    proc = c.cmd(("sh", "-c", "echo $FOO"), env={"FOO": "bar", "PATH": os.environ["PATH"]},
                 stdout=subprocess.PIPE, text=True)
    assert proc.stdout == "bar\n"
    with open(tmp_path / "out", "w") as f:
        c.cmd(("echo", "to file"), stdout=f)
    assert (tmp_path / "out").read_text() == "to file\n"
    r, w = os.pipe()
    c.cmd(("echo", "to fd"), stdout=w)
    os.close(w)
    assert os.read(r, 100) == b"to fd\n"
    os.close(r)


def test_local_rsync(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"\x00\x01\n")
    (tmp_path / "dst").mkdir()
    c = LocalConnection(cwd=tmp_path / "dst")
    proc = c.rsync("-r", str(tmp_path / "src") + "/", "remote:up")
    assert proc.returncode == 0
    assert (tmp_path / "dst" / "up" / "f").read_bytes() == b"\x00\x01\n"
    c.rsync("anyname:up/f", str(tmp_path / "down"))
    assert (tmp_path / "down").read_bytes() == b"\x00\x01\n"
    with pytest.raises(subprocess.CalledProcessError):
        c.rsync("remote:does-not-exist", str(tmp_path / "x"), stderr=subprocess.DEVNULL)
    assert c.rsync("remote:does-not-exist", str(tmp_path / "x"), check=False,
                   stderr=subprocess.DEVNULL).returncode != 0


def test_local_is_native_unless_overridden(tmp_path):
    c = LocalConnection(cwd=tmp_path)
    assert isinstance(c._atex_handle(), _atex.ConnectionHandle)
    assert _atex._connection_selftest_run(c, ["pwd"], b"") == (0, f"{tmp_path}\n".encode(), b"")

    class Loud(LocalConnection):
        def cmd(self, command, *, func=subprocess.run, **kw):
            return super().cmd(["echo", "loud", *command], func=func, **kw)

    assert Loud()._atex_handle() is None
    status, out, _ = _atex._connection_selftest_run(Loud(cwd=tmp_path), ["pwd"], b"")
    assert (status, out) == (0, b"loud pwd\n")


# ---- podman and ssh command lines (no container, no server) ----


def test_podman_command_line(monkeypatch):
    monkeypatch.setenv("ATEX_PODMAN_ARGS", "--runtime runc --root '/x y'")
    c = PodmanConnection("box")
    assert c.podman_args == ("--runtime", "runc", "--root", "/x y")
    calls = []
    with pytest.raises(NotConnectedError):
        c.cmd(("true",), func=capture(calls))
    with pytest.raises(NotConnectedError):
        c.rsync("a", "remote:b", func=capture(calls))
    c._connected = True  # skip connect(): no container here
    assert c.cmd(("ls", "-l", "a b"), func=capture(calls), stdout=1) == "func-result"
    assert calls[-1] == (
        ["podman", "--runtime", "runc", "--root", "/x y", "exec", "-i", "box", "ls", "-l", "a b"],
        {"stdout": 1},
    )
    c.rsync("-r", "src/", "remote:dst", func=capture(calls))
    argv, kw = calls[-1]
    assert argv[:2] == ["rsync", "-e"] and argv[3:] == ["-r", "src/", "remote:dst"]
    assert "'exec'" in argv[2] and "'box'" in argv[2] and "'/x y'" in argv[2]
    assert kw == {"check": True, "stdin": subprocess.DEVNULL}
    c2 = PodmanConnection("box", podman_args=())
    c2._connected = True
    c2.cmd(("true",), func=capture(calls))
    assert calls[-1][0] == ["podman", "exec", "-i", "box", "true"]
    assert str(c2) == "podman:box"
    assert SystemdPodmanConnection("b")._handle.can_reboot() is True
    assert c2._handle.can_reboot() is False


def test_ssh_options():
    with pytest.raises(ValueError, match="Hostname"):
        ManagedSSHConnection({"User": "root"})
    with pytest.raises(ValueError, match="password"):
        ManagedSSHConnection({"Hostname": "h"}, password="x")
    with pytest.raises(ValueError, match='"-bad"'):
        ManagedSSHConnection({"Hostname": "-bad"})
    c = ManagedSSHConnection({"Hostname": "h.example", "Port": "2222", "User": "joe",
                              "IdentityFile": "/k", "StrictHostKeyChecking": "no"})
    assert "joe@h.example:2222" in str(c)
    calls = []
    with pytest.raises(NotConnectedError):
        c.cmd(("true",), func=capture(calls))
    with pytest.raises(NotImplementedError):
        c.forward("L", "1:h:2")
    s = StatelessSSHConnection({"Hostname": "h.example", "User": "joe"}, sudo="bob")
    s.cmd(("echo", "a b"), func=capture(calls), options={"ConnectTimeout": "3"})
    argv = calls[-1][0]
    assert argv[0] == "ssh" and argv[-2:] == ["h.example", "sudo --non-interactive --user "
                                             "bob -- echo 'a b'"]
    assert "User=joe" in argv and "ConnectTimeout=3" in argv and "BatchMode=yes" in argv


# ---- the bridge: a Python connection used by C ----


class Wrapped(Connection):
    """A connection of a user's own, running commands locally through a
    shell prefix (like an ssh would)."""

    def __init__(self):
        self.log = []
        self.inner = LocalConnection()

    def __str__(self):
        return "wrapped-test"

    def connect(self):
        self.log.append("connect")

    def disconnect(self):
        self.log.append("disconnect")

    def cmd(self, command, *, func=subprocess.run, **func_args):
        self.log.append(("cmd", tuple(command)))
        return func(("sh", "-c", 'exec "$@"', "sh", *command), **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        self.log.append(("rsync", args))
        return self.inner.rsync(*args, func=func, **func_args)


def test_bridge_spawn_cwd_env_input(tmp_path):
    w = Wrapped()
    assert _atex._connection_selftest_connect(w) == "wrapped-test"
    assert w.log == ["connect"]
    status, out, err = _atex._connection_selftest_run(w, ["cat"], b"\x00in\n")
    assert (status, out, err) == (0, b"\x00in\n", b"")
    # libatex's spawn options (cwd, env) reach the system through cmd().
    from atex.connection import _bridge_command

    argv, cwd, env = _bridge_command(w, ["pwd"], str(tmp_path), ["A=1"])
    assert cwd is None and env is None
    assert argv[:4] == ["sh", "-c", 'exec "$@"', "sh"]
    status, out, _ = _atex._connection_selftest_run(w, ["sh", "-c", "exit 3"], b"")
    assert os.waitstatus_to_exitcode(status) == 3


def test_bridge_copy(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("hello")
    w = Wrapped()
    _atex._connection_selftest_copy(w, str(src), str(tmp_path / "dst" / "deep"), False)
    assert (tmp_path / "dst" / "deep" / "d" / "f").read_text() == "hello"
    assert any(e[0] == "rsync" for e in w.log if isinstance(e, tuple))
    _atex._connection_selftest_copy(w, str(tmp_path / "dst" / "deep" / "d" / "f"),
                                    str(tmp_path / "back"), True)
    assert (tmp_path / "back").read_text() == "hello"


def test_bridge_errors_name_the_connection():
    class Broken(Wrapped):
        def cmd(self, command, *, func=subprocess.run, **func_args):
            raise KeyError("no such thing")

    with pytest.raises(OSError, match="wrapped-test: cmd: KeyError"):
        _atex._connection_selftest_run(Broken(), ["true"], b"")

    class NoFunc(Wrapped):
        def cmd(self, command, *, func=subprocess.run, **func_args):
            return None

    with pytest.raises(OSError, match="did not call func"):
        _atex._connection_selftest_run(NoFunc(), ["true"], b"")
    with pytest.raises(TypeError, match="not an atex.connection.Connection"):
        _atex._connection_selftest_run(object(), ["true"], b"")


# ---- leaks ----


def _rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_no_leak_command_lines():
    c = PodmanConnection("box", podman_args=("--runtime", "runc"))
    c._connected = True
    calls = []
    func = capture(calls)
    for _ in range(200):  # warm up
        c.cmd(("echo", "x"), func=func)
    calls.clear()
    tracemalloc.start()
    before_py = tracemalloc.get_traced_memory()[0]
    before_rss = _rss_kib()
    for _ in range(10_000):
        c.cmd(("echo", "x", "y"), func=func)
        calls.clear()
    grown_py = tracemalloc.get_traced_memory()[0] - before_py
    tracemalloc.stop()
    assert grown_py < 64 * 1024, grown_py
    # 0 KiB here over 50,000 calls; 100 leaked bytes a call would be ~1 MiB.
    assert _rss_kib() - before_rss < 512


def _grown(snap_before, snap_after):
    # CPython's subprocess keeps ~136 bytes per Popen in a cache of its
    # own (subprocess.py:1829 in 3.11): not ours, not counted.
    stats = snap_after.compare_to(snap_before, "filename")
    return sum(
        st.size_diff for st in stats
        if not st.traceback[0].filename.endswith(("subprocess.py", "tracemalloc.py"))
    )


def test_no_leak_local_cmd_and_bridge():
    # 10,000 real local commands take a while: 2,000 through cmd() and
    # 2,000 through the bridge (each a fork + exec).
    c = LocalConnection()

    class Quiet(Wrapped):
        def cmd(self, command, *, func=subprocess.run, **func_args):
            return func(("sh", "-c", 'exec "$@"', "sh", *command), **func_args)

    q = Quiet()
    for _ in range(100):
        c.cmd(("true",))
        _atex._connection_selftest_run(q, ["true"], b"")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    before_rss = _rss_kib()
    for _ in range(2_000):
        c.cmd(("true",))
    for _ in range(2_000):
        _atex._connection_selftest_run(q, ["true"], b"x")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = _grown(before, after)
    # ~10-35 KiB of interpreter caches and free lists settle here; one
    # object kept per call would be >= 4,000 * 48 bytes.
    assert grown < 128 * 1024, grown
    assert _rss_kib() - before_rss < 1024


def test_lazy_submodules():
    import atex.connection as ac

    assert ac.local.LocalConnection is LocalConnection
    assert "ssh" in dir(ac)
    with pytest.raises(AttributeError):
        ac.nonexistent
    assert sys.modules["atex.connection.podman"]


def test_python_connection_runs_the_fmf_executor(tmp_path):
    # The C fmf executor on a connection written in Python: spawns,
    # uploads and connect all go through its methods (the bridge).
    fmf = pytest.importorskip("atex.executor.fmf")
    tree = tmp_path / "tree"
    (tree / ".fmf").mkdir(parents=True)
    (tree / ".fmf" / "version").write_text("1\n")
    (tree / "main.fmf").write_text(
        "/plan:\n  discover:\n    how: fmf\n  execute:\n    how: tmt\n"
        "/hello:\n  test: echo \"hello $FOO\" > \"$TMT_TEST_DATA/out\"\n"
        "  environment:\n    FOO: world\n"
    )
    tests = fmf.discover(str(tree), "/plan")
    w = Wrapped()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with fmf.FMFExecutor(w, tests) as ex:
        assert ex.run_test("/hello", artifacts) == 0
    assert "connect" in w.log
    assert any(e[0] == "cmd" for e in w.log if isinstance(e, tuple))
    assert any(e[0] == "rsync" for e in w.log if isinstance(e, tuple))
    found = list(artifacts.rglob("out"))
    assert found and found[0].read_text() == "hello world\n"

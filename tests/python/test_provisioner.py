"""atex.provisioner: the ABCs, LocalProvisioner over libatex, remotes that
never dangle, Ctrl-C in get_remote, the Python-provisioner bridge, and the
extras' argument checks."""

import os
import resource
import signal
import subprocess
import threading
import time
import tracemalloc

import pytest

import atex
from atex import _atex
from atex.connection import Connection, NotConnectedError
from atex.provisioner import Provisioner, ProvisionerError, Remote
from atex.provisioner.local import LocalProvisioner, LocalRemote


def test_abcs():
    assert issubclass(Remote, Connection)
    with pytest.raises(TypeError):
        Provisioner()
    with pytest.raises(TypeError):
        Remote()
    assert set(atex.provisioner.__all__) >= {"Provisioner", "Remote", "local", "podman"}


def test_one_and_two_remotes():
    with LocalProvisioner() as p:
        p.provision(1)
        r = p.get_remote()
        assert isinstance(r, LocalRemote) and isinstance(r, Remote)
        p.provision(2)
        assert p.get_remote() and p.get_remote()
        assert str(p) == "LocalProvisioner(3 remotes)"


def test_cmd_kwargs(tmp_path):
    with LocalProvisioner(cwd=tmp_path) as p:
        p.provision(1)
        r = p.get_remote()
        proc = r.cmd(("echo", "foo bar"), stdout=subprocess.PIPE, check=True, text=True)
        assert proc.stdout == "foo bar\n"
        assert r.cmd(("cat",), input="x\n", stdout=subprocess.PIPE, text=True).stdout == "x\n"
        data = b"\x00\x01\n\x02\x03"
        assert r.cmd(("cat",), input=data, stdout=subprocess.PIPE).stdout == data
        r.cmd(("touch", "testfile"), check=True)
        assert (tmp_path / "testfile").exists()
        (tmp_path / "up").write_bytes(data)
        r.rsync(str(tmp_path / "up"), "remote:foobar")
        assert r.cmd(("cat", "foobar"), stdout=subprocess.PIPE).stdout == data
        with r:  # a Remote as context manager never releases
            pass
        assert not r.released


def test_nonblocking_and_slots():
    with LocalProvisioner(max_remotes=1) as p:
        assert p.get_remote(block=False) is None  # nothing provisioned
        p.provision(2)
        first = p.get_remote()
        assert p.get_remote(block=False) is None  # the one slot is out
        first.release()
        second = None
        deadline = time.monotonic() + 5
        while second is None and time.monotonic() < deadline:
            second = p.get_remote(block=False)
        assert second is not None
        assert p.get_remote(block=False) is None  # only two were asked for
        second.release()
        p.provision(5)
        p.clear()
        # the free slot may have taken one request before clear()
        got = [p.get_remote(block=False) for _ in range(3)]
        assert sum(r is not None for r in got) <= 1


def test_release_is_idempotent_and_final():
    with LocalProvisioner() as p:
        p.provision(1)
        r = p.get_remote()
        r.release()
        r.release()
        assert r.released
        with pytest.raises(NotConnectedError):
            r.cmd(("true",))
        with pytest.raises(NotConnectedError):
            r.rsync("a", "remote:b")
        with pytest.raises(NotConnectedError):
            r.connect()


def test_stop_marks_remotes_released():
    p = LocalProvisioner()
    with p:
        p.provision(2)
        a, b = p.get_remote(), p.get_remote()
        a.release()
    # libatex's stop released b behind Python's back: b knows.
    assert a.released and b.released
    with pytest.raises(NotConnectedError):
        b.cmd(("true",))
    b.release()  # still harmless
    with pytest.raises(ProvisionerError, match="stopped"):
        p.get_remote()
    with pytest.raises(ProvisionerError):
        p.provision(1)


def test_not_started():
    p = LocalProvisioner()
    with pytest.raises(ProvisionerError, match="not started"):
        p.provision(1)
    with pytest.raises(ProvisionerError, match="not started"):
        p.get_remote(block=False)
    p.stop()  # harmless
    with pytest.raises(TypeError):
        LocalProvisioner(nonsense=1)


def test_ctrl_c_during_get_remote():
    with LocalProvisioner() as p:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            p.get_remote()  # nothing provisioned: waits forever
        assert time.monotonic() - start < 1.3
        timer.join()
        p.provision(1)
        assert p.get_remote()  # still usable


def test_alarm_during_get_remote():
    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with LocalProvisioner() as p:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            start = time.monotonic()
            with pytest.raises(Alarm):
                p.get_remote()
            assert time.monotonic() - start < 1.2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_native_to_c_and_wrap():
    p = LocalProvisioner()
    assert isinstance(p._atex_handle(), _atex.ProvisionerHandle)
    name, out, wrapped, pollable = _atex._provisioner_selftest(p, 5000)
    assert name == "local:1" and out == b"hello from C\n" and pollable
    assert isinstance(wrapped, LocalRemote)
    assert wrapped.released  # the orchestrator released it: no dangling


class ListRemote(Remote):
    def __init__(self, n, log):
        self.n = n
        self.log = log

    def __str__(self):
        return f"list-remote-{self.n}"

    def connect(self):
        pass

    def disconnect(self):
        pass

    def release(self):
        self.log.append(("release", self.n))

    def cmd(self, command, *, func=subprocess.run, **func_args):
        return func(("sh", "-c", 'echo "remote $0:"; exec "$@"', str(self.n), *command),
                    **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        raise NotImplementedError


class ListProvisioner(Provisioner):
    """A provisioner written in Python: remotes are made on demand."""

    def __init__(self, fail=False):
        self.log = []
        self.wanted = 0
        self.made = 0
        self.fail = fail
        self.lock = threading.Lock()

    def __str__(self):
        return "list-provisioner"

    def start(self):
        self.log.append("start")

    def stop(self):
        self.log.append("stop")

    def provision(self, count=1):
        with self.lock:
            self.wanted += count

    def clear(self):
        self.wanted = 0

    def get_remote(self, block=True):
        if self.fail:
            raise RuntimeError("the cloud is down")
        with self.lock:
            if not self.wanted:
                return None
            self.wanted -= 1
            self.made += 1
            return ListRemote(self.made, self.log)


def test_bridge_python_provisioner():
    p = ListProvisioner()
    name, out, wrapped, pollable = _atex._provisioner_selftest(p, 5000)
    assert name == "list-remote-1"
    assert out == b"remote 1:\nhello from C\n"
    assert isinstance(wrapped, ListRemote) and wrapped.n == 1  # the very object
    assert pollable
    assert p.log == ["start", ("release", 1), "stop"]


def test_bridge_python_provisioner_error_kept():
    p = ListProvisioner(fail=True)
    with pytest.raises(OSError, match="list-provisioner: get_remote: RuntimeError: the cloud"):
        _atex._provisioner_selftest(p, 5000)
    assert isinstance(p._atex_error, RuntimeError)
    assert p._atex_error.__traceback__ is not None


def test_bridge_for_overriding_subclass():
    class Counting(LocalProvisioner):
        calls = 0

        def get_remote(self, block=True):
            Counting.calls += 1
            return super().get_remote(block)

    p = Counting()
    assert p._atex_handle() is None  # an override: C goes through Python
    name, out, wrapped, _ = _atex._provisioner_selftest(p, 5000)
    assert out == b"hello from C\n" and Counting.calls >= 1
    assert isinstance(wrapped, LocalRemote)


def test_no_leak_get_release():
    with LocalProvisioner(max_remotes=1) as p:
        for _ in range(200):
            p.provision(1)
            p.get_remote().release()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(10_000):
            p.provision(1)
            r = p.get_remote()
            r.cmd(("true",), func=lambda *a, **k: None)
            r.release()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert grown < 64 * 1024, grown
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 512


# ---- the extras: arguments checked before anything starts ----


def test_extras_arguments():
    from atex.provisioner.qemu import QemuProvisioner
    from atex.provisioner.static import StaticProvisioner
    from atex.provisioner.testingfarm import TestingFarmProvisioner

    s = StaticProvisioner(["root@h1", "h2:2222"], options={"IdentityFile": "/k"})
    assert isinstance(s._atex_handle(), _atex.ProvisionerHandle)
    with pytest.raises(TypeError):
        StaticProvisioner("h1")
    with pytest.raises(ValueError, match="accel"):
        QemuProvisioner("/img.qcow2", accel="fast")
    assert str(QemuProvisioner("/img.qcow2")._atex_handle().name()).startswith("qemu:")
    with pytest.raises(TypeError, match="bogus"):
        TestingFarmProvisioner("Fedora-41", bogus=1)
    tf = TestingFarmProvisioner("Fedora-41", hardware={"memory": ">= 4 GB"}, url="http://127.0.0.1:9")
    assert tf._atex_handle().name() == "testingfarm:Fedora-41/x86_64"
    assert tf.stats()["submitted"] == 0
    with pytest.raises(ValueError, match="hardware"):
        TestingFarmProvisioner("Fedora-41", hardware="{not json")._atex_handle()

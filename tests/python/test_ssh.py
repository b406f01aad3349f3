"""atex.connection.ssh and atex.provisioner.static against a local sshd
(with-server.sh ssh: ATEX_TEST_SSH_HOST, _PORT, _USER, _KEY)."""

import os
import subprocess
import time

import pytest

from atex import _atex
from atex.connection import NotConnectedError
from atex.connection.ssh import (
    ConnectError,
    GoneAwayError,
    ManagedSSHConnection,
    StatelessSSHConnection,
)
from atex.provisioner.static import StaticProvisioner, StaticRemote

if "ATEX_TEST_SSH_HOST" not in os.environ:
    pytest.fail("run through with-server.sh ssh (ATEX_TEST_SSH_HOST unset)",
                pytrace=False)

HOST = os.environ["ATEX_TEST_SSH_HOST"]
PORT = os.environ["ATEX_TEST_SSH_PORT"]
USER = os.environ["ATEX_TEST_SSH_USER"]
KEY = os.environ["ATEX_TEST_SSH_KEY"]
OPTIONS = {"Hostname": HOST, "Port": PORT, "User": USER, "IdentityFile": KEY}
NO_KNOWN_HOSTS = {"StrictHostKeyChecking": "no", "UserKnownHostsFile": "/dev/null"}


def test_managed(tmp_path):
    c = ManagedSSHConnection(OPTIONS)
    with pytest.raises(NotConnectedError):
        c.cmd(("true",))
    with c:
        c.assert_master()
        proc = c.cmd(("echo", "foo bar", "it's"), stdout=subprocess.PIPE, text=True, check=True)
        assert proc.stdout == "foo bar it's\n"
        data = b"\x00\x01\n\x02\x03"
        assert c.cmd(("cat",), input=data, stdout=subprocess.PIPE).stdout == data
        assert c.cmd(("sh", "-c", "exit 7")).returncode == 7
        p = c.cmd(("cat",), func=subprocess.Popen, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
        assert p.communicate(b"popen")[0] == b"popen"
        # extra ssh options for one command
        proc = c.cmd(("true",), options={"ConnectTimeout": "5"})
        assert proc.returncode == 0
        (tmp_path / "f").write_bytes(data)
        remote_dir = f"/tmp/atex-pytest-{os.getpid()}"
        c.rsync("-r", str(tmp_path) + "/", f"remote:{remote_dir}")
        assert c.cmd(("cat", f"{remote_dir}/f"), stdout=subprocess.PIPE).stdout == data
        c.rsync(f"remote:{remote_dir}/f", str(tmp_path / "back"))
        assert (tmp_path / "back").read_bytes() == data
        c.cmd(("rm", "-rf", remote_dir))
        # the libatex side is the same connection (the C executor's)
        assert _atex._connection_selftest_run(c, ["echo", "C"], b"")[1] == b"C\n"
        c.connect(block=False)  # already up: nothing to do
    with pytest.raises(NotConnectedError):
        c.cmd(("true",))


def test_gone_away():
    c = ManagedSSHConnection(OPTIONS)
    with c:
        # the master dies (a reboot, a dropped network): GoneAwayError,
        # and connect() brings it back
        c.cmd(("true",), check=True)
        # stop the master behind the Python object's back: from here,
        # that is what a master that died looks like
        c._handle.disconnect()
        with pytest.raises(GoneAwayError):
            c.cmd(("true",))
        c.connect()
        assert c.cmd(("true",)).returncode == 0


def test_connect_fails():
    c = ManagedSSHConnection({**OPTIONS, "Port": "1"})
    with pytest.raises(ConnectError):
        c.connect()


def test_stateless():
    c = StatelessSSHConnection({**OPTIONS, **NO_KNOWN_HOSTS})
    with c:
        proc = c.cmd(("echo", "a b"), stdout=subprocess.PIPE, text=True, check=True)
        assert proc.stdout == "a b\n"


def test_static_provisioner():
    with StaticProvisioner([f"{USER}@{HOST}:{PORT}"], options={"IdentityFile": KEY}) as p:
        p.provision(1)
        r = p.get_remote()
        assert isinstance(r, StaticRemote)
        assert r.cmd(("echo", "hi"), stdout=subprocess.PIPE).stdout == b"hi\n"
        assert p.get_remote(block=False) is None  # one host, out
        r.release()
        p.provision(1)
        r2 = p.get_remote()
        assert r2.cmd(("true",)).returncode == 0
    assert r2.released


def wait_nonblocking(c):
    tries = 0
    deadline = time.monotonic() + 30
    while True:
        try:
            c.connect(block=False)
            return tries
        except BlockingIOError:
            tries += 1
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_connect_nonblocking():
    c = ManagedSSHConnection(OPTIONS)
    assert wait_nonblocking(c) >= 1  # the first call never waits
    try:
        c.assert_master()
        assert c.cmd(("true",)).returncode == 0
    finally:
        c.disconnect()
    bad = ManagedSSHConnection({**OPTIONS, "Port": "1"})
    with pytest.raises(ConnectError):
        wait_nonblocking(bad)

"""atex.connection.podman and atex.provisioner.podman on real containers
(with-server.sh podman: the image localhost/atex-test-minbase)."""

import os
import subprocess
import time
import uuid

import pytest

from atex import _atex
from atex.connection import NotConnectedError
from atex.connection.podman import PodmanConnection, SystemdPodmanConnection
from atex.provisioner import ProvisionerError
from atex.provisioner.podman import (
    PodmanProvisioner,
    PodmanRemote,
    SystemdPodmanProvisioner,
    build_container_with_deps,
    pull_image,
)

IMAGE = os.environ.get("ATEX_TEST_PODMAN_IMAGE", "localhost/atex-test-minbase")
SYSTEMD_IMAGE = "localhost/atex-test-systemd"
# This host's podman needs these (docs/PYTHON.md: the env defaults).
os.environ.setdefault("ATEX_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs")
os.environ.setdefault("ATEX_PODMAN_RUN_ARGS",
                      "--ulimit=nofile=4096:4096 --ulimit=nproc=4096:4096")
PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs")


def containers(prefix="atex-"):
    out = subprocess.run((*PODMAN, "ps", "-a", "--format", "{{.Names}}"),
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return {n for n in out.split() if n.startswith(prefix)}


@pytest.fixture
def container():
    name = f"atex-pytest-{uuid.uuid4().hex[:8]}"
    subprocess.run((*PODMAN, "run", "-d", "--rm", "--name", name,
                    *os.environ["ATEX_PODMAN_RUN_ARGS"].split(), IMAGE, "sleep", "infinity"),
                   check=True, stdout=subprocess.DEVNULL)
    yield name
    subprocess.run((*PODMAN, "rm", "-f", "-t", "0", name), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def test_connection(container, tmp_path):
    c = PodmanConnection(container)
    with pytest.raises(NotConnectedError):
        c.cmd(("true",))
    with c:
        proc = c.cmd(("echo", "foo bar"), stdout=subprocess.PIPE, text=True, check=True)
        assert proc.stdout == "foo bar\n"
        data = b"\x00\x01\n\x02\x03"
        assert c.cmd(("cat",), input=data, stdout=subprocess.PIPE).stdout == data
        p = c.cmd(("cat",), func=subprocess.Popen, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE)
        assert p.communicate(b"popen")[0] == b"popen"
        with pytest.raises(subprocess.CalledProcessError):
            c.cmd(("false",), check=True)
        (tmp_path / "up").mkdir()
        (tmp_path / "up" / "f").write_bytes(data)
        c.rsync("-r", f"{tmp_path}/up/", "remote:/tmp/up")
        assert c.cmd(("cat", "/tmp/up/f"), stdout=subprocess.PIPE).stdout == data
        c.rsync("remote:/tmp/up/f", str(tmp_path / "down"))
        assert (tmp_path / "down").read_bytes() == data
        # the libatex side (what the C executor uses) is the same container
        assert _atex._connection_selftest_run(c, ["cat", "/tmp/up/f"], b"")[1] == data
    with pytest.raises(NotConnectedError):
        c.cmd(("true",))


def test_connection_override_goes_through_bridge(container):
    class Sudo(PodmanConnection):
        def cmd(self, command, *, func=subprocess.run, **kw):
            return super().cmd(("env", "VIA=bridge", *command), func=func, **kw)

    with Sudo(container) as c:
        assert c._atex_handle() is None
        status, out, _ = _atex._connection_selftest_run(c, ["sh", "-c", "echo $VIA"], b"")
        assert (status, out) == (0, b"bridge\n")


def test_provisioner_remotes_and_cleanup(tmp_path):
    with PodmanProvisioner(IMAGE) as p:
        p.provision(2)
        a, b = p.get_remote(), p.get_remote()
        assert isinstance(a, PodmanRemote) and a.container != b.container
        assert {a.container, b.container} <= containers()
        proc = a.cmd(("cat",), input="foo bar\n", stdout=subprocess.PIPE, text=True, check=True)
        assert proc.stdout == "foo bar\n"
        (tmp_path / "f").write_bytes(b"\x00x")
        b.rsync(str(tmp_path / "f"), "remote:/tmp/foobar")
        assert b.cmd(("cat", "/tmp/foobar"), stdout=subprocess.PIPE).stdout == b"\x00x"
        a.release()
        a.release()
        assert a.container not in containers()
    # leaving `with` removed every container, and b knows it is released
    assert b.released
    with pytest.raises(NotConnectedError):
        b.cmd(("true",))
    # (other programs may run containers named atex-* meanwhile: only
    # ours are checked)
    assert not {a.container, b.container} & containers()
    with pytest.raises(ProvisionerError):
        p.get_remote()


def test_provisioner_one_slot_nonblocking():
    with PodmanProvisioner(IMAGE, max_remotes=1) as p:
        p.provision(2)
        rem = p.get_remote()
        assert p.get_remote(block=False) is None
        rem.release()
        deadline = time.monotonic() + 60
        second = None
        while second is None and time.monotonic() < deadline:
            second = p.get_remote(block=False)
            time.sleep(0.1)
        assert second is not None
        for _ in range(3):
            assert p.get_remote(block=False) is None
            time.sleep(0.3)


def test_build_and_pull(tmp_path):
    assert pull_image(IMAGE) == subprocess.run(
        (*PODMAN, "image", "inspect", "--format", "{{.Id}}", IMAGE),
        stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    built = build_container_with_deps(IMAGE, extra_content="RUN echo extra >/extra")
    try:
        with PodmanProvisioner(built) as p:
            p.provision(1)
            r = p.get_remote()
            assert r.cmd(("cat", "/extra"), stdout=subprocess.PIPE).stdout == b"extra\n"
    finally:
        subprocess.run((*PODMAN, "image", "rm", "-f", built), stdout=subprocess.DEVNULL)


def test_systemd_provisioner():
    with SystemdPodmanProvisioner(SYSTEMD_IMAGE) as p:
        p.provision(1)
        r = p.get_remote()
        proc = r.cmd(("systemctl", "is-system-running"), stdout=subprocess.PIPE, text=True)
        assert proc.stdout.strip() in ("running", "degraded")
        assert r._conn.can_reboot()


def test_systemd_build_from_and_connection():
    # the base has /sbin/init: nothing installed (offline), image removed
    # after the block
    with SystemdPodmanProvisioner.build_from(SYSTEMD_IMAGE, extra_content="RUN touch /x") as p:
        image = p.image
        p.provision(1)
        r = p.get_remote()
        assert r.cmd(("test", "-e", "/x")).returncode == 0
        # a SystemdPodmanConnection to the same container waits for systemd
        with SystemdPodmanConnection(r.container) as c:
            proc = c.cmd(("systemctl", "is-system-running"), stdout=subprocess.PIPE, text=True)
            assert proc.stdout.strip() in ("running", "degraded")
    exists = subprocess.run((*PODMAN, "image", "exists", image))
    assert exists.returncode != 0


def test_provisioner_image_inf_and_disconnect():
    import math

    with PodmanProvisioner(IMAGE, max_remotes=1) as p:
        p.provision(math.inf)  # as many as max_remotes allows
        r = p.get_remote()
        assert r.image == IMAGE  # as Python ATEX's PodmanRemote
        r.disconnect()
        with pytest.raises(NotConnectedError):
            r.cmd(("true",))
        with pytest.raises(NotConnectedError):
            r.rsync("/etc/hostname", "remote:/tmp/x")
        r.connect()
        assert r.cmd(("true",)).returncode == 0


def test_missing_image_is_not_pulled():
    # `--pull=never`, as Python ATEX: no registry lookup, an error naming
    # the image (a pull would be tried for seconds against the network)
    missing = f"localhost/atex-missing-{uuid.uuid4().hex[:8]}"
    with PodmanProvisioner(missing) as p:
        p.provision(1)
        start = time.monotonic()
        with pytest.raises(ProvisionerError) as e:
            p.get_remote()
        assert missing in str(e.value) and "image not known" in str(e.value)
        # a pull's retries took 3 s and more
        assert time.monotonic() - start < 2.5


def test_provisioner_args_checked():
    with pytest.raises(TypeError, match="podman_args"):
        PodmanProvisioner(IMAGE, podman_args=5)
    with pytest.raises(TypeError, match="run_options"):
        PodmanProvisioner(IMAGE, run_options=[1])
    p = PodmanProvisioner(IMAGE, podman_args="--runtime runc --cgroup-manager cgroupfs",
                          run_options="--env A=1")
    assert p.podman_args == ("--runtime", "runc", "--cgroup-manager", "cgroupfs")
    assert p.run_options == ["--env", "A=1"]


def test_ulimit_error_names_python_settings(monkeypatch):
    # Without the run args this host needs, the error tells a Python user
    # what to set (not only the CLI's --podman-run-arg).
    monkeypatch.setenv("ATEX_PODMAN_RUN_ARGS", "")
    with PodmanProvisioner(IMAGE) as p:
        p.provision(1)
        try:
            r = p.get_remote()
        except ProvisionerError as e:
            if "rlimit" not in str(e):
                raise
            assert "ATEX_PODMAN_RUN_ARGS" in str(e) and "run_options" in str(e)
        else:
            r.release()
            pytest.skip("this host takes podman's default ulimits")


def test_orchestrator_ctrl_c_many_containers(tmp_path):
    """Ctrl-C with 8 containers running tests: KeyboardInterrupt within
    1 s; leaving the orchestrator's `with` removed every container."""
    from test_orchestrator_load import ctrl_c_run

    seen = {}

    def after(remotes):
        seen["names"] = {r.container for r in remotes}
        seen["left"] = seen["names"] & containers()

    took, got, _ = ctrl_c_run(tmp_path, PodmanProvisioner(IMAGE, max_remotes=8),
                              8, after_orch=after, settle=0.5)
    assert took < 1.0, took
    assert len(seen["names"]) == 8
    assert seen["left"] == set()
    assert got == [("p", f"/slow{i}", ["infra"]) for i in range(8)]

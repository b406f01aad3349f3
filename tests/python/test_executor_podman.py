"""FMFExecutor and CommandExecutor on a container (with-server.sh podman:
the image localhost/atex-test-minbase): the upload, prepare in the tree,
results and files, a timeout, the bridge over a podman remote."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from atex import _atex
from atex.executor.command import CommandExecutor
from atex.executor.fmf import FMFExecutor, TestAbortedError, discover
from atex.executor.fmf.testcontrol import BadReportJSONError
from atex.provisioner.podman import PodmanProvisioner

IMAGE = os.environ.get("ATEX_TEST_PODMAN_IMAGE", "localhost/atex-test-minbase")
# This host's podman needs these (docs/PYTHON.md: the env defaults).
os.environ.setdefault("ATEX_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs")
os.environ.setdefault("ATEX_PODMAN_RUN_ARGS",
                      "--ulimit=nofile=4096:4096 --ulimit=nproc=4096:4096")
TREES = Path(__file__).resolve().parent.parent / "conformance" / "fmf" / "trees"


def results(artifacts):
    return [json.loads(line) for line in (Path(artifacts) / "results").read_text().splitlines()]


@pytest.fixture
def remote():
    with PodmanProvisioner(IMAGE) as prov:
        prov.provision(1)
        r = prov.get_remote()
        yield r
        r.release()


def test_fmf_on_container(remote, tmp_path):
    t = discover(TREES / "atex-results", "/plan")
    t.data["/test_noresult_abort"]["duration"] = "2"
    with FMFExecutor(remote, t, env={"FROM_EXEC": "x"}) as e:
        assert e.run_test("/test_noresult_fail", tmp_path / "a") == 1
        assert results(tmp_path / "a") == [{"status": "fail", "files": ["output.txt"]}]
        assert (tmp_path / "a" / "files" / "output.txt").read_text() == "failing the script\n"
        e.run_test("/test_files_multiple", tmp_path / "b")
        assert sorted(p.name for p in (tmp_path / "b" / "files").iterdir())
        with pytest.raises(TestAbortedError, match="^test duration timeout reached$"):
            e.run_test("/test_noresult_abort", tmp_path / "c")
        assert results(tmp_path / "c")[0]["status"] == "infra"
        with pytest.raises(BadReportJSONError):
            e.run_test("/test_bad_json", tmp_path / "d")


def test_prepare_runs_in_tree(remote, tmp_path):
    t = discover(TREES / "atex-cwd", "/plan")
    with FMFExecutor(remote, t) as e:
        e.run_test("/test_cwd", tmp_path)
    assert (tmp_path / "files" / "output.txt").read_text() == "123\n"
    proc = remote.cmd(("cat", "/tmp/file_contents"), stdout=subprocess.PIPE, text=True,
                      check=True)
    assert proc.stdout == "123\n"


def test_command_executor_on_container(remote, tmp_path):
    e = CommandExecutor(remote, {"id": ("cat", "/etc/os-release")})
    (tmp_path / "a").mkdir()
    with e:
        assert e.run_test("id", tmp_path / "a") == 0
    assert "Debian" in (tmp_path / "a" / "files" / "output.txt").read_text()
    # The same through the bridge, from a C thread.
    _, rc, code, _, _ = _atex._executor_bridge_selftest(e, "id", str(tmp_path / "b"))
    assert (rc, code) == (0, 0)
    assert results(tmp_path / "b") == [{"status": "pass", "files": ["output.txt"]}]

"""atex.provisioner.qemu: real VMs of the test image (vm-image.sh, cached),
booted by QemuProvisioner through the Python API: a remote that runs
commands and an FMF test, release leaving no QEMU, and Ctrl-C while a VM
boots. Two boots in all (TCG: ~25 s each); run alone (meson suite 'vm')."""

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from atex.executor.fmf import FMFExecutor, discover
from atex.provisioner.qemu import QemuProvisioner, QemuRemote

HERE = Path(__file__).resolve().parent
TREE = """
/plan:
  discover: {how: fmf}
  execute: {how: tmt}
/hello:
  test: |
    . /etc/os-release
    echo "hello from $ID $(uname -n)"
"""


@pytest.fixture(scope="module")
def vm_image():
    """The test image (kernel, initrd, cmdline for a direct kernel boot):
    ATEX_TEST_VM_* when set, else what vm-image.sh prints (it builds the
    image once and caches it)."""
    names = ("ATEX_TEST_VM_IMAGE", "ATEX_TEST_VM_KERNEL", "ATEX_TEST_VM_INITRD",
             "ATEX_TEST_VM_CMDLINE")
    if os.environ.get(names[0]):
        return [os.environ.get(n, "") for n in names]
    script = os.environ.get("ATEX_VM_IMAGE_SH", str(HERE.parent / "integration" / "vm-image.sh"))
    out = subprocess.run(
        ["bash", "-c", 'eval "$("$0")" || exit 1; printf "%s\\n" ' +
         " ".join(f'"${n}"' for n in names), script],
        check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()
    assert len(out) == 4 and all(out), f"{script}: no test VM image: {out!r}"
    return out


def provisioner(vm_image, work):
    image, kernel, initrd, cmdline = vm_image
    return QemuProvisioner(image, kernel=kernel, initrd=initrd, cmdline=cmdline,
                           memory_mib=512, key="credential", boot_timeout=240,
                           workdir=str(work))


def qemus(work):
    """QEMU processes whose command line names `work` (ours only)."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu" in os.path.basename(argv[0]) and \
                any(str(work).encode() in a for a in argv):
            n += 1
    return n


def wait_no_qemu(work, timeout=30):
    end = time.monotonic() + timeout
    while qemus(work) and time.monotonic() < end:
        time.sleep(0.2)
    return qemus(work)


def test_vm_runs_commands_and_fmf_test(vm_image, tmp_path):
    """Boot one VM, run a command and an FMF test on it, release it."""
    work = tmp_path / "work"
    work.mkdir()
    root = tmp_path / "tree"
    (root / ".fmf").mkdir(parents=True)
    (root / ".fmf" / "version").write_text("1\n")
    (root / "main.fmf").write_text(textwrap.dedent(TREE))
    tests = discover(root, "/plan")

    with provisioner(vm_image, work) as p:
        assert "QemuProvisioner" in str(p)
        p.provision(1)
        remote = p.get_remote(block=True)
        assert isinstance(remote, QemuRemote)
        assert qemus(work) == 1

        out = remote.cmd(["cat", "/etc/os-release"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
        assert "ID=debian" in out
        res = remote.cmd(["sh", "-c", "exit 7"])
        assert res.returncode == 7

        with FMFExecutor(remote, tests) as e:
            assert e.run_test("/hello", tmp_path / "a") == 0
        results = [json.loads(x) for x in (tmp_path / "a" / "results").read_text().splitlines()]
        assert results == [{"status": "pass", "files": ["output.txt"]}]
        assert (tmp_path / "a" / "files" / "output.txt").read_text().startswith(
            "hello from debian ")

        remote.release()
        assert remote.released
        assert wait_no_qemu(work) == 0, "QEMU still runs after release()"
    assert wait_no_qemu(work, 5) == 0


def test_ctrl_c_while_booting(vm_image, tmp_path):
    """SIGINT while get_remote(block=True) waits for a booting VM: a
    KeyboardInterrupt within 1 s, no QEMU left after the with block."""
    work = tmp_path / "work"
    work.mkdir()
    sent = []
    stop = threading.Event()

    def interrupt_once_qemu_runs():
        end = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < end:
            if qemus(work):
                time.sleep(1)  # well into the boot, not its very start
                sent.append(time.monotonic())
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)

    t = threading.Thread(target=interrupt_once_qemu_runs)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            with provisioner(vm_image, work) as p:
                p.provision(1)
                try:
                    p.get_remote(block=True)
                finally:
                    caught = time.monotonic()
                pytest.fail("get_remote() returned a VM before the SIGINT")
    finally:
        stop.set()
        t.join()
    assert sent, "QEMU never started"
    assert caught - sent[0] < 1.0, f"KeyboardInterrupt {caught - sent[0]:.2f} s after SIGINT"
    assert wait_no_qemu(work, 10) == 0, "QEMU left after the with block"

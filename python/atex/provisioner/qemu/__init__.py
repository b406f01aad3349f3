"""Local (or ssh-hosted) QEMU virtual machines (libatex's qemu provisioner;
an atex extra, not in Python ATEX)."""

from ... import _atex
from ...connection.ssh import _to_atex
from .. import NativeProvisioner, NativeRemote

__all__ = ("QemuProvisioner", "QemuRemote")

_ACCEL = {"auto": 0, "kvm": 1, "tcg": 2}
_FIRMWARE = {"bios": 0, "uefi": 1}
_KEY = {"both": 0, "credential": 1, "seed": 2}


class QemuRemote(NativeRemote):
    """A VM reached over ssh; release() destroys it."""


class QemuProvisioner(NativeProvisioner):
    """VMs booted from ``image`` (qcow2 or raw, never written: each VM runs
    on an overlay).

    Keyword arguments: ``max_remotes`` (VMs at once, 1), ``memory_mib``,
    ``cpus``, ``accel`` ("auto", "kvm", "tcg"), ``firmware`` ("bios",
    "uefi"), ``key`` ("both", "credential", "seed"), ``kernel``,
    ``initrd``, ``cmdline``, ``qemu_args``, ``qemu_program``,
    ``boot_timeout`` (s), ``boot_attempts``, ``user``, ``identity``,
    ``host`` (ssh_config options of the machine running QEMU; None: here),
    ``workdir``. Zero / None: libatex's defaults.
    """

    _remote_class = QemuRemote

    def __init__(self, image, *, max_remotes=1, memory_mib=0, cpus=0, accel="auto",
                 firmware="bios", key="both", kernel=None, initrd=None, cmdline=None,
                 qemu_args=None, qemu_program=None, boot_timeout=0, boot_attempts=0,
                 user=None, identity=None, host=None, workdir=None):
        super().__init__()
        for name, value, table in (("accel", accel, _ACCEL), ("firmware", firmware, _FIRMWARE),
                                   ("key", key, _KEY)):
            if value not in table:
                raise ValueError(f"{name}: {value!r} is not one of {', '.join(table)}")
        self.image = image
        self._options = {
            "image": str(image), "count": max_remotes, "memory_mib": memory_mib, "cpus": cpus,
            "accel": _ACCEL[accel], "firmware": _FIRMWARE[firmware], "key": _KEY[key],
            "kernel": kernel, "initrd": initrd, "cmdline": cmdline,
            "qemu_args": list(qemu_args) if qemu_args else None, "qemu_program": qemu_program,
            "boot_timeout": boot_timeout, "boot_attempts": boot_attempts, "user": user,
            "identity": identity, "host": _to_atex(host) if host else None, "workdir": workdir,
        }

    def _make_handle(self):
        return _atex.QemuProvisioner(self._options)

    def __str__(self):
        return f"QemuProvisioner({self.image})"

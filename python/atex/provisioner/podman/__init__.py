"""Podman provisioners: containers from an image, and image helpers.

Global podman arguments (``--runtime runc --cgroup-manager cgroupfs``
where the host needs them) come from ``podman_args=`` or, by default,
from ``$ATEX_PODMAN_ARGS`` (split like a shell would): Python ATEX's
signatures take none. Likewise ``$ATEX_PODMAN_RUN_ARGS`` is put before
``run_options`` in every ``podman run`` (e.g. ``--ulimit=nofile=4096:4096``
on hosts that refuse podman's default ulimits). See docs/PYTHON.md.
"""

import contextlib
import os
import shlex
import subprocess
import tempfile
import uuid

from ... import _atex
from ...connection.podman import podman_args_default
from .. import NativeProvisioner, NativeRemote

__all__ = (
    "PodmanProvisioner",
    "PodmanRemote",
    "SystemdPodmanProvisioner",
    "SystemdPodmanRemote",
    "build_container_with_deps",
    "build_systemd_container_with_deps",
    "pull_image",
)


def _podman(*args, podman_args=None, **kwargs):
    pargs = podman_args_default() if podman_args is None else tuple(podman_args)
    return subprocess.run(("podman", *pargs, *args), **kwargs)


def _image_id(image, podman_args=None):
    proc = _podman(
        "image", "inspect", "--format", "{{.Id}}", image,
        podman_args=podman_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def pull_image(origin, *, podman_args=None):
    """The id of image ``origin``: pulled (``podman image pull``) unless
    it is already present locally (then no network is used)."""
    found = _image_id(origin, podman_args)
    if found:
        return found
    proc = _podman(
        "image", "pull", "-q", origin,
        podman_args=podman_args, stdout=subprocess.PIPE, text=True, check=True,
    )
    return proc.stdout.strip()


def _build(origin, tag, extra_pkgs, extra_content, systemd, podman_args):
    tag = tag or f"localhost/atex-{uuid.uuid4().hex[:12]}"
    pargs = podman_args_default() if podman_args is None else tuple(podman_args)
    _atex.podman_image_build(tag, str(origin), tuple(extra_pkgs or ()), systemd, pargs)
    if extra_content:
        # libatex builds the base layer; the caller's text goes on top.
        with tempfile.TemporaryDirectory(prefix="atex-build-") as tmp:
            with open(f"{tmp}/Containerfile", "w") as f:
                f.write(f"FROM {tag}\n{extra_content}\n")
            _podman(
                "image", "build", "-q", "-t", tag, "-f", f"{tmp}/Containerfile", tmp,
                podman_args=pargs, stdout=subprocess.DEVNULL, check=True,
            )
    return _image_id(tag, pargs) or tag


def build_container_with_deps(origin, tag=None, *, extra_pkgs=None, extra_content="",
                              podman_args=None):
    """Build an image from ``origin`` with what atex needs (bash,
    coreutils, util-linux, tar, rsync: only those missing are installed,
    so a base that has them needs no network) plus ``extra_pkgs``;
    ``extra_content`` is appended as Containerfile lines. ``tag``
    defaults to a random ``localhost/atex-...``. Returns the image id."""
    return _build(origin, tag, extra_pkgs, extra_content, False, podman_args)


def build_systemd_container_with_deps(origin, tag=None, *, extra_pkgs=None, extra_content="",
                                      podman_args=None):
    """As :func:`build_container_with_deps`, with systemd as the image's
    init (installed only when the base has no /sbin/init)."""
    return _build(origin, tag, extra_pkgs, extra_content, True, podman_args)


class PodmanRemote(NativeRemote):
    """A container; release() removes it."""

    def __init__(self, handle):
        super().__init__(handle)
        self.container = self._name.removeprefix("podman:")


class SystemdPodmanRemote(PodmanRemote):
    """A container running systemd (tests may reboot it)."""


class PodmanProvisioner(NativeProvisioner):
    """Containers from ``image`` (libatex's podman provisioner).

    - ``max_remotes``: containers at once.
    - ``run_options``: extra ``podman run`` arguments.
    - ``run_command``: the container's command (keeps it alive).
    - ``podman_args``: global podman arguments (default $ATEX_PODMAN_ARGS).
    - ``$ATEX_PODMAN_RUN_ARGS`` (split like a shell) goes before
      ``run_options``.
    """

    _remote_class = PodmanRemote
    _systemd = False

    def __init__(self, image, *, max_remotes=10, run_options=None, run_command=("sleep", "inf"),
                 podman_args=None, podman_program=None):
        super().__init__()
        self.image = image
        self.max_remotes = max_remotes
        self.run_options = list(run_options or ())
        self.run_command = tuple(run_command) if run_command else None
        self.podman_args = podman_args_default() if podman_args is None else tuple(podman_args)
        self.podman_program = podman_program

    def _make_handle(self):
        return _atex.PodmanProvisioner({
            "image": str(self.image),
            "count": self.max_remotes,
            "podman_args": self.podman_args,
            "run_args": [*shlex.split(os.environ.get("ATEX_PODMAN_RUN_ARGS", "")),
                         *self.run_options],
            "run_command": self.run_command,
            "podman_program": self.podman_program,
            "systemd": self._systemd,
        })

    def __str__(self):
        return f"{type(self).__name__}({self.image})"


class SystemdPodmanProvisioner(PodmanProvisioner):
    """Containers running systemd as init (``podman run --systemd=always
    --restart=always``); a remote is handed out once systemd settled."""

    _remote_class = SystemdPodmanRemote
    _systemd = True

    def __init__(self, image, *, run_options=None, run_command=("/sbin/init",), **kwargs):
        super().__init__(image, run_options=run_options, run_command=run_command, **kwargs)

    @classmethod
    @contextlib.contextmanager
    def build_from(cls, origin, *, extra_pkgs=None, extra_content="", **kwargs):
        """Build a systemd image from ``origin``, run a started provisioner
        on it (``kwargs`` to the constructor), remove the image after."""
        built = build_systemd_container_with_deps(
            origin, extra_pkgs=extra_pkgs, extra_content=extra_content,
            podman_args=kwargs.get("podman_args"),
        )
        try:
            with cls(built, **kwargs) as instance:
                yield instance
        finally:
            _podman("image", "rm", "-f", built, podman_args=kwargs.get("podman_args"),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

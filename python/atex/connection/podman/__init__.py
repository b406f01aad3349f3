"""Podman connections: commands run with ``podman exec -i`` in a container."""

import os
import shlex
import subprocess

from ... import _atex
from .. import Connection, NotConnectedError, _rsync_defaults, _rsync_rsh

__all__ = ("PodmanConnection", "SystemdPodmanConnection", "podman_args_default")


def podman_args_default():
    """Global podman arguments when none are given: ``$ATEX_PODMAN_ARGS``
    split like a shell would (e.g. ``--runtime runc --cgroup-manager
    cgroupfs``), else none."""
    return tuple(shlex.split(os.environ.get("ATEX_PODMAN_ARGS", "")))


class PodmanConnection(Connection):
    """A running podman container (name or id).

    - ``podman_args``: global podman arguments (default
      :func:`podman_args_default`).
    - ``podman_program``: the podman executable (default ``podman``).
    """

    _can_reboot = False

    def __init__(self, container, *, podman_args=None, podman_program=None):
        self.container = container
        self.podman_args = (
            podman_args_default() if podman_args is None else tuple(podman_args)
        )
        self.podman_program = podman_program
        self._connected = False
        self._handle = _atex.PodmanConnection(
            container,
            podman_args=self.podman_args,
            podman_program=podman_program,
            can_reboot=self._can_reboot,
        )

    def __str__(self):
        return f"podman:{self.container}"

    def connect(self):
        """Check that the container runs (systemd: wait until it settled)."""
        self._handle.connect()
        self._connected = True

    def disconnect(self):
        self._connected = False
        self._handle.disconnect()

    def _require(self):
        if not self._connected:
            raise NotConnectedError(f"{self}: connect() first")

    def cmd(self, command, *, func=subprocess.run, **func_args):
        self._require()
        return func(self._handle.command_argv(command), **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        self._require()
        prefix = self._handle.command_argv(("rsync",))[:-1]
        return func(("rsync", "-e", _rsync_rsh(prefix), *args), **_rsync_defaults(func_args))

    def _atex_handle(self):
        return self._handle if self._atex_native(PodmanConnection) else None


class SystemdPodmanConnection(PodmanConnection):
    """A container running systemd: connect() waits until
    ``systemctl is-system-running`` says running or degraded, and tests
    may reboot it."""

    _can_reboot = True

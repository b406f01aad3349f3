"""SSH connections (the OpenSSH client), options as ssh_config(5) keys.

``options`` is a dict like ``{"Hostname": "h", "Port": "22", "User": "u",
"IdentityFile": "/key"}``; any other key becomes ``-o Key=Value``.
"""

import shlex
import subprocess
import threading

from ... import _atex
from .. import Connection, NotConnectedError, _rsync_defaults, _rsync_rsh

__all__ = (
    "ConnectError",
    "GoneAwayError",
    "ManagedSSHConnection",
    "SSHError",
    "StatelessSSHConnection",
)


class SSHError(ConnectionError):
    """An ssh connection failed."""


class GoneAwayError(SSHError):
    """The master connection ended (the system went away)."""


class ConnectError(SSHError):
    """connect() could not log in."""


_DEFAULTS = {"BatchMode": "yes", "LogLevel": "ERROR"}


def _get(options, key):
    for k, v in options.items():
        if k.lower() == key.lower():
            return v
    return None


def _to_atex(options):
    """The dict _atex.SSHConnection takes: host, port, user, identity and
    the other keys as ``-o`` options."""
    host = _get(options, "Hostname")
    if host is None:
        raise ValueError(f"ssh options: no Hostname in {options!r}")
    port = _get(options, "Port")
    known = {"hostname", "port", "user", "identityfile"}
    return {
        "host": str(host),
        "port": int(port) if port is not None else 0,
        "user": _get(options, "User"),
        "identity": _get(options, "IdentityFile"),
        "options": [f"{k}={v}" for k, v in options.items() if k.lower() not in known],
    }


def _sudo(command, sudo):
    if not sudo:
        return list(command)
    return ["sudo", "--non-interactive", "--user", sudo, "--", *command]


def _check_password(password):
    if password is not None:
        raise ValueError("ssh: password= is not supported (use a key: IdentityFile)")


class StatelessSSHConnection(Connection):
    """One ``ssh`` client (a new login) per command; connect() and
    disconnect() do nothing. ``sudo``: run commands as that user through
    sudo(8) on the system. ``password`` is not supported (ValueError)."""

    def __init__(self, options, *, password=None, sudo=None):
        _check_password(password)
        self.options = dict(options)
        self.sudo = sudo
        self._atex_options = _to_atex(self.options)
        self._handle = None

    def __str__(self):
        user = _get(self.options, "User")
        host = _get(self.options, "Hostname")
        return f"ssh:{user}@{host}" if user else f"ssh:{host}"

    def connect(self):
        pass

    def disconnect(self):
        pass

    def _ssh_argv(self, options=None):
        merged = {**_DEFAULTS, **self.options, **(options or {})}
        argv = ["ssh", "-T"]
        for key, value in merged.items():
            argv += ["-o", f"{key}={value}"]
        return argv

    def cmd(self, command, *, options=None, func=subprocess.run, **func_args):
        argv = self._ssh_argv(options)
        line = shlex.join(str(a) for a in _sudo(command, self.sudo))
        return func((*argv, "--", str(_get(self.options, "Hostname")), line), **func_args)

    def rsync(self, *args, options=None, func=subprocess.run, **func_args):
        prefix = (*self._ssh_argv(options), "--", str(_get(self.options, "Hostname")))
        extra = ("--rsync-path", shlex.join(_sudo(("rsync",), self.sudo))) if self.sudo else ()
        return func(
            ("rsync", "-e", _rsync_rsh(prefix), *extra, *args), **_rsync_defaults(func_args)
        )

    def _atex_handle(self):
        # The C side keeps its own master: same system, same options.
        if self.sudo or not self._atex_native(StatelessSSHConnection):
            return None
        if self._handle is None:
            self._handle = _atex.SSHConnection(self._atex_options)
        return self._handle


class ManagedSSHConnection(Connection):
    """ssh through a private ControlMaster that connect() starts (libatex's
    ssh connection: keepalives, host key pinned at first connect).
    ``sudo``: run commands as that user through sudo(8). ``password`` is
    not supported (ValueError); ``forward()`` neither."""

    def __init__(self, options, *, password=None, sudo=None):
        _check_password(password)
        self.options = dict(options)
        self.sudo = sudo
        self._connected = False
        self._handle = _atex.SSHConnection(_to_atex(self.options))

    def __str__(self):
        return f"ssh:{self._handle.name()}"

    def assert_master(self):
        """Raise NotConnectedError when never connected (or disconnected),
        GoneAwayError when the master ended by itself (the system went
        away: connect() again)."""
        if self._handle.alive():
            return
        if self._connected:
            raise GoneAwayError(f"{self}: the ssh master ended")
        raise NotConnectedError(f"{self}: the ssh master is not running")

    def connect(self, *, block=True):
        """Start the master; ``block=False``: start it in the background
        and raise BlockingIOError until it is up (call again later)."""
        if self._handle.alive():
            return
        if block:
            self._pending = None
            try:
                self._handle.connect(-1)
            except (OSError, RuntimeError) as e:
                raise ConnectError(str(e)) from e
            self._connected = True
            return
        pending = getattr(self, "_pending", None)
        if pending is None:
            pending = self._pending = [None, None]

            def run():
                try:
                    self._handle.connect(-1)
                except Exception as e:  # noqa: BLE001 - handed to connect()
                    pending[1] = e
                pending[0] = True

            threading.Thread(target=run, name=f"connect {self}", daemon=True).start()
        if not pending[0]:
            raise BlockingIOError(f"{self}: the ssh master is not up yet")
        self._pending = None
        if pending[1] is not None:
            raise ConnectError(str(pending[1])) from pending[1]
        self._connected = True

    def disconnect(self):
        self._connected = False
        self._handle.disconnect()

    def forward(self, forward_type, *spec, cancel=False):
        raise NotImplementedError("ManagedSSHConnection.forward() is not supported by atex")

    def _extra(self, options):
        argv = []
        for key, value in (options or {}).items():
            argv += ["-o", f"{key}={value}"]
        return argv

    def _command_argv(self, command, options=None):
        self.assert_master()
        argv = self._handle.command_argv(_sudo(command, self.sudo))
        # argv = [ssh, <client options>, --, host, line]: extras before --
        cut = argv.index("--")
        return [*argv[:cut], *self._extra(options), *argv[cut:]]

    def cmd(self, command, *, options=None, func=subprocess.run, **func_args):
        return func(self._command_argv(command, options), **func_args)

    def rsync(self, *args, options=None, func=subprocess.run, **func_args):
        prefix = self._command_argv(("rsync",), options)[:-1]
        extra = ("--rsync-path", shlex.join(_sudo(("rsync",), self.sudo))) if self.sudo else ()
        return func(
            ("rsync", "-e", _rsync_rsh(prefix), *extra, *args), **_rsync_defaults(func_args)
        )

    def _atex_handle(self):
        if self.sudo or not self._atex_native(ManagedSSHConnection):
            return None
        return self._handle

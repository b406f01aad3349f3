"""Connections: run commands on one system and copy files to and from it.

Shaped like Python ATEX's ``atex.connection``: a :class:`Connection` is a
context manager (connect on enter, disconnect on exit) whose ``cmd()``
hands the *local* command line that runs a command on the system to a
subprocess function (``subprocess.run`` by default, ``subprocess.Popen``,
``subprocess.check_output``...) and returns what that function returns;
``rsync()`` runs rsync(1) with a remote shell that reaches the system
(any ``word:`` prefix names the remote side).

The built-in connections (``local``, ``podman``, ``ssh``) are libatex's:
their command lines come from libatex (atex_connection_command_argv), and
the C executor and orchestrator use the same libatex connection. Any other
subclass (or a built-in's subclass overriding connect, disconnect, cmd or
rsync) is usable from C too, through a bridge that runs what its cmd()
would hand to subprocess. See docs/PYTHON.md.
"""

import importlib
import subprocess
from abc import ABC, abstractmethod

from .. import _atex

_SUBMODULES = ("local", "podman", "ssh")
_OPERATIONS = ("connect", "disconnect", "cmd", "rsync")


class NotConnectedError(ConnectionError):
    """Raised by ``cmd()`` or ``rsync()`` of a connection not connected."""


class Connection(ABC):
    """A channel to one system (abstract).

    Use as a context manager: ``connect()`` on enter (``disconnect()`` if
    that fails), ``disconnect()`` on exit.
    """

    def __enter__(self):
        try:
            self.connect()
        except BaseException:
            self.disconnect()
            raise
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.disconnect()

    @abstractmethod
    def connect(self):
        """Establish the connection (idempotent)."""

    @abstractmethod
    def disconnect(self):
        """Close the connection (safe when not connected)."""

    @abstractmethod
    def cmd(self, command, *, func=subprocess.run, **func_args):
        """Run ``command`` (a sequence of arguments) on the system.

        ``func(local_argv, **func_args)`` is called with the local command
        line that runs ``command`` there, and its result is returned: a
        CompletedProcess for ``subprocess.run``, a Popen for
        ``subprocess.Popen``, and so on. ``func_args`` are that function's
        keyword arguments (stdout=, input=, text=, check=, timeout=...).
        """

    @abstractmethod
    def rsync(self, *args, func=subprocess.run, **func_args):
        """Run rsync(1) with ``args``; ``word:path`` is a path on the system.

        ``.rsync("-r", "local_dir/", "remote:dir")`` uploads,
        ``.rsync("remote:file", ".")`` downloads. ``check=True`` and
        ``stdin=DEVNULL`` are the defaults. The system needs rsync.
        """

    # The libatex connection behind a built-in: its handle, or None when
    # C must go through the bridge (a user's class or override).
    def _atex_handle(self):
        return None

    def _atex_native(self, base):
        """Whether none of the operations of ``base`` is overridden."""
        cls = type(self)
        return all(getattr(cls, name) is getattr(base, name) for name in _OPERATIONS)


def _rsync_word(word):
    # rsync splits -e on blanks; quotes group and a doubled quote is one.
    return "'" + str(word).replace("'", "''") + "'"


def _rsync_rsh(prefix):
    """An rsync ``-e`` value that runs the remote side through ``prefix``.

    rsync runs ``RSH HOST rsync --server ...``; HOST is whatever came
    before the colon, so it is dropped and the rest goes after prefix.
    """
    n = len(prefix)
    script = f'exec "${{@:1:{n}}}" "${{@:{n + 2}}}"'
    words = ("/bin/bash", "-c", script, "atex-rsh", *prefix)
    return " ".join(_rsync_word(w) for w in words)


def _rsync_defaults(func_args, **defaults):
    return {"check": True, "stdin": subprocess.DEVNULL, **defaults, **func_args}


# ---- the bridge's Python half (called from _connection.c with the GIL) ----


def _bridge_command(conn, argv, cwd, env):
    """What ``conn.cmd()`` would hand to its func to run argv in cwd with
    env added: (local argv, local cwd or None, env mapping or None)."""
    command = list(argv)
    if env:
        command = ["env", "--", *env, *command]
    if cwd:
        command = ["sh", "-c", 'cd -- "$1" || exit 1; shift; exec "$@"', "sh", cwd, *command]
    seen = []

    def capture(args, **kwargs):
        seen.append((args, kwargs))

    conn.cmd(command, func=capture)
    if not seen:
        raise TypeError(f"{conn!r}: cmd() did not call func")
    args, kwargs = seen[0]
    if isinstance(args, (str, bytes)):
        raise TypeError(f"{conn!r}: cmd() handed func a string, not an argv")
    return list(args), kwargs.get("cwd"), kwargs.get("env")


def _bridge_copy(conn, src, dst, from_system):
    """copy_to / copy_from of the bridge through ``conn.rsync()``."""
    if from_system:
        proc = conn.cmd(("test", "-d", src), stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            conn.rsync("-a", f"remote:{src}/", f"{dst}/")
        else:
            conn.rsync("-a", f"remote:{src}", dst)
        return
    conn.cmd(("mkdir", "-p", dst), check=True, stdin=subprocess.DEVNULL)
    conn.rsync("-a", f"{src}/", f"remote:{dst}/")


__all__ = ("Connection", "NotConnectedError", *_SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

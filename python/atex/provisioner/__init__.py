"""Provisioners: they reserve systems and hand them out as Remotes.

Shaped like Python ATEX's ``atex.provisioner``: ``provision(count)`` asks
for systems, ``get_remote(block=True)`` returns a connected
:class:`Remote`, ``clear()`` forgets pending requests, ``start()`` /
``stop()`` (or ``with``) bracket its life; ``stop()`` releases every
system. The built-ins (local, podman, static, qemu, testingfarm) are
libatex's; any other subclass (or a built-in's subclass overriding one of
the operations) reaches the C orchestrator through a bridge. See
docs/PYTHON.md.
"""

import importlib
import operator
import subprocess
import threading
from abc import ABC, abstractmethod

from ..util.context import StartStop
from ..connection import Connection, NotConnectedError, _rsync_defaults, _rsync_rsh

_SUBMODULES = ("local", "podman", "qemu", "static", "testingfarm")
_OPERATIONS = ("provision", "get_remote", "clear", "start", "stop")

# How long one wait of get_remote(block=True) lasts: signal handlers
# (Ctrl-C, alarms) run between two.
_SLICE_MS = 100
_UNLIMITED = -1  # ATEX_PROVISION_UNLIMITED
_INT_MAX = 2**31 - 1


def _count(count):
    """provision()'s count as libatex takes it: inf or a huge int is
    "unlimited"; anything else must be a whole number >= 0."""
    if isinstance(count, float) and count == float("inf"):
        return _UNLIMITED
    if isinstance(count, float) and count.is_integer() and count >= 0:
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int):
        try:
            count = operator.index(count)
        except TypeError:
            raise TypeError(
                f"provision(count): expected an int or math.inf, not {count!r}"
            ) from None
    if count < 0:
        raise ValueError(f"provision(count): {count} is negative")
    return _UNLIMITED if count >= _INT_MAX else count


class ProvisionerError(Exception):
    """A provisioner failed, or was used when not started / stopped."""


class Remote(Connection):
    """A system handed out by a provisioner: a Connection, plus
    ``release()`` (idempotent) to give it back. As a context manager it
    only connects and disconnects; it never releases."""

    @abstractmethod
    def release(self):
        """Give the system back (destroyed or returned to its pool)."""


class Provisioner(StartStop, ABC):
    """Reserves systems and hands them out (abstract).

    ``provision``, ``get_remote`` and ``clear`` are thread-safe. As a
    context manager: ``start()`` on enter (``stop()`` if that fails),
    ``stop()`` on exit.
    """

    @abstractmethod
    def provision(self, count=1):
        """Ask for ``count`` more systems (does not wait)."""

    @abstractmethod
    def get_remote(self, block=True):
        """A connected Remote of a provisioned system; ``block=False``:
        None when none is ready yet."""

    @abstractmethod
    def clear(self):
        """Forget pending provision() requests."""

    @abstractmethod
    def start(self):
        """Start the provisioner."""

    @abstractmethod
    def stop(self):
        """Stop it, releasing every Remote it handed out."""

    # The libatex provisioner behind a built-in, or None: the bridge.
    def _atex_handle(self):
        return None


class NativeRemote(Remote):
    """A remote of a libatex provisioner: commands run through the
    command line libatex's connection gives (podman exec, ssh through the
    remote's master)."""

    def __init__(self, handle):
        self._rhandle = handle
        self._conn = handle.connection()
        self._name = handle.name()
        self._disconnected = False

    def __str__(self):
        return self._name

    def __repr__(self):
        state = " released" if self._rhandle.released else ""
        return f"<{type(self).__name__} {self._name}{state}>"

    @property
    def released(self):
        """True once released (also by the provisioner's stop())."""
        return self._rhandle.released

    def _require(self, connected=True):
        if self._rhandle.released:
            raise NotConnectedError(f"{self}: the remote was released")
        if connected and self._disconnected:
            raise NotConnectedError(f"{self}: disconnected (connect() again)")

    def connect(self):
        """Reconnect if needed (a remote is handed out connected)."""
        self._require(connected=False)
        self._conn.connect()
        self._disconnected = False

    def disconnect(self):
        """Close the connection: cmd() and rsync() raise
        NotConnectedError until connect()."""
        self._disconnected = True
        self._conn.disconnect()

    def release(self):
        self._rhandle.release()

    def cmd(self, command, *, func=subprocess.run, **func_args):
        self._require()
        return func(self._conn.command_argv(command), **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        self._require()
        prefix = self._conn.command_argv(("rsync",))[:-1]
        return func(("rsync", "-e", _rsync_rsh(prefix), *args), **_rsync_defaults(func_args))

    def _atex_handle(self):
        if not self._atex_native(NativeRemote):
            return None
        self._require(connected=False)
        return self._conn


def _wrap_remote(handle):
    return NativeRemote(handle)


class NativeProvisioner(Provisioner):
    """The Provisioner API over a libatex provisioner (the built-ins)."""

    _remote_class = NativeRemote

    def __init__(self):
        self._handle = None
        self._lock = threading.RLock()
        self._started = False
        self._stopped = False

    def _make_handle(self):
        raise NotImplementedError

    def _remote_kwargs(self):
        return {}

    def __str__(self):
        return self._handle.name() if self._handle is not None else type(self).__name__

    def _atex_wrap_remote(self, handle):
        return self._remote_class(handle, **self._remote_kwargs())

    def start(self):
        with self._lock:
            if self._started:
                return
            if self._handle is None:
                self._handle = self._make_handle()
            self._handle.start()
            self._started = True
            self._stopped = False

    def stop(self):
        with self._lock:
            if self._handle is None:
                return
            self._started = False
            self._stopped = True
            self._handle.stop()

    def provision(self, count=1):
        """Ask for ``count`` more systems (does not wait); ``math.inf`` (or
        any count past what fits a C int): as many as the provisioner
        allows (its max_remotes, slots or hosts)."""
        handle = self._ready()
        handle.provision(_count(count))

    def _ready(self):
        handle = self._handle
        if handle is None or not self._started:
            what = "stopped" if self._stopped else "not started"
            raise ProvisionerError(f"{self}: {what}")
        return handle

    def get_remote(self, block=True):
        handle = self._ready()
        while True:
            rh = handle.get_remote(_SLICE_MS if block else 0)
            if rh is not None:
                return self._atex_wrap_remote(rh)
            if not block:
                return None
            if not self._started:
                raise ProvisionerError(f"{self}: stopped")

    def clear(self):
        if self._handle is not None:
            self._handle.clear()

    def _atex_handle(self):
        cls = type(self)
        base = next(c for c in cls.__mro__ if "_make_handle" in c.__dict__)
        if any(getattr(cls, name) is not getattr(base, name) for name in _OPERATIONS):
            return None
        with self._lock:
            if self._handle is None:
                self._handle = self._make_handle()
        return self._handle


__all__ = ("Provisioner", "ProvisionerError", "Remote", *_SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


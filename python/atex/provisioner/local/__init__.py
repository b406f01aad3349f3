"""The local provisioner: every remote is this machine."""

import subprocess

from ... import _atex
from ...connection.local import LocalConnection
from .. import NativeProvisioner, NativeRemote

__all__ = ("LocalProvisioner", "LocalRemote")


class LocalRemote(NativeRemote, LocalConnection):
    """This machine as a remote: ``cmd()``/``rsync()`` are
    LocalConnection's (``cwd`` applies); release() frees its slot."""

    def __init__(self, handle, **kwargs):
        NativeRemote.__init__(self, handle)
        LocalConnection.__init__(self, **kwargs)

    def cmd(self, command, *, func=subprocess.run, **func_args):
        self._require()
        return LocalConnection.cmd(self, command, func=func, **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        self._require()
        return LocalConnection.rsync(self, *args, func=func, **func_args)

    def connect(self):
        self._require()

    def disconnect(self):
        pass

    def _atex_handle(self):
        cls = type(self)
        if any(
            getattr(cls, n) is not getattr(LocalRemote, n)
            for n in ("connect", "disconnect", "cmd", "rsync")
        ):
            return None
        if self.cwd is not None:
            # libatex's local remotes have no working directory: the
            # bridge runs what cmd() runs, in cwd.
            return None
        self._require()
        return self._conn


class LocalProvisioner(NativeProvisioner):
    """Remotes that are this machine (libatex's local provisioner).

    ``kwargs`` go to each remote's LocalConnection (``cwd=``).
    ``max_remotes``: remotes out at once (Python ATEX: unlimited; libatex
    has fixed slots, 128 by default); more provision()ed wait for a
    release.
    """

    _remote_class = LocalRemote

    def __init__(self, *, max_remotes=128, **kwargs):
        super().__init__()
        self.max_remotes = max_remotes
        self.kwargs = kwargs
        LocalConnection(**kwargs)  # a bad keyword fails here, not later

    def _make_handle(self):
        return _atex.LocalProvisioner(self.max_remotes)

    def _remote_kwargs(self):
        return self.kwargs

    def __str__(self):
        n = self._handle.outstanding() if self._handle is not None else 0
        return f"LocalProvisioner({n} remotes)"

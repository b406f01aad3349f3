"""The local connection: commands run on this machine."""

import subprocess

from ... import _atex
from .. import Connection, _rsync_defaults, _rsync_rsh

__all__ = ("LocalConnection",)


class LocalConnection(Connection):
    """This machine.

    - ``cwd`` is the working directory of ``cmd()`` and ``rsync()`` (a
      ``cwd=`` given to ``cmd()`` wins) and of the libatex connection
      the C executor uses.
    """

    def __init__(self, *, cwd=None):
        self.cwd = cwd
        self._handle = None

    def __str__(self):
        return "local" if self.cwd is None else f"local:{self.cwd}"

    def connect(self):
        """Nothing to establish."""

    def disconnect(self):
        """Nothing to close."""

    def cmd(self, command, *, func=subprocess.run, **func_args):
        func_args.setdefault("cwd", self.cwd)
        return func(command, **func_args)

    def rsync(self, *args, func=subprocess.run, **func_args):
        rsh = _rsync_rsh(())
        return func(("rsync", "-e", rsh, *args), **_rsync_defaults(func_args, cwd=self.cwd))

    def _atex_handle(self):
        if not self._atex_native(LocalConnection):
            return None
        if self._handle is None:
            self._handle = _atex.LocalConnection(cwd=self.cwd)
        return self._handle

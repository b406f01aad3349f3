"""A fixed pool of ssh machines (libatex's static provisioner; an atex
extra, not in Python ATEX)."""

from ... import _atex
from ...connection.ssh import _to_atex
from .. import NativeProvisioner, NativeRemote

__all__ = ("StaticProvisioner", "StaticRemote")


class StaticRemote(NativeRemote):
    """One machine of the pool, reached over ssh; release() returns it."""


class StaticProvisioner(NativeProvisioner):
    """Hands out ``hosts`` (``"[user@]host[:port]"``), each to one user at
    a time. ``options``: ssh_config keys for all of them (IdentityFile,
    any other ``-o`` option; Hostname/Port/User come from the host)."""

    _remote_class = StaticRemote

    def __init__(self, hosts, *, options=None):
        super().__init__()
        if isinstance(hosts, str):
            raise TypeError("hosts: a sequence of host strings, not one string")
        self.hosts = list(hosts)
        self.options = dict(options or {})

    def _make_handle(self):
        base = _to_atex({"Hostname": "unused", **self.options})
        return _atex.StaticProvisioner(self.hosts, base)

    def __str__(self):
        return f"StaticProvisioner({len(self.hosts)} hosts)"

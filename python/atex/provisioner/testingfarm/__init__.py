"""Testing Farm reservations (libatex's testingfarm provisioner).

``TestingFarmProvisioner(compose, arch="x86_64", max_remotes=3, *,
max_retries=10, **reserve_kwargs)`` as in Python ATEX; the reserve keyword
arguments libatex knows are listed on the class. The API URL and token
default to $TESTING_FARM_API_URL / $TESTING_FARM_API_TOKEN.
"""

import json

from ... import _atex
from .. import NativeProvisioner, NativeRemote

__all__ = ("TestingFarmProvisioner", "TestingFarmRemote")


class TestingFarmRemote(NativeRemote):
    """A reserved machine reached over ssh; release() cancels its request."""

    def login(self):
        """How to log in: dict of request_id, user, host, identity."""
        self._require()
        return self._rhandle.testingfarm_login()


def _json(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


class TestingFarmProvisioner(NativeProvisioner):
    """Machines reserved from Testing Farm.

    Reserve keyword arguments: ``pool``, ``hardware``, ``kickstart``,
    ``variables``, ``secrets``, ``tags`` (dicts, or JSON text),
    ``timeout`` (pipeline minutes), ``source_cidr``, ``skip_guest_setup``,
    ``os_cleaning``, ``ssh_options`` (``-o`` values), ``identity``,
    ``poll_ms``, and for the API ``url``, ``token``, ``retry_total`` (s),
    ``max_connections``. Anything else is a TypeError.
    """

    _remote_class = TestingFarmRemote
    _KNOWN = {
        "pool", "hardware", "kickstart", "variables", "secrets", "tags", "timeout",
        "source_cidr", "skip_guest_setup", "os_cleaning", "ssh_options", "identity",
        "poll_ms", "url", "token", "retry_total", "max_connections",
    }

    def __init__(self, compose, arch="x86_64", max_remotes=3, *, max_retries=10,
                 **reserve_kwargs):
        super().__init__()
        unknown = set(reserve_kwargs) - self._KNOWN
        if unknown:
            raise TypeError(f"TestingFarmProvisioner: unknown arguments {sorted(unknown)}")
        self.compose = compose
        self.arch = arch
        self.max_remotes = max_remotes
        self.reserve_kwargs = reserve_kwargs
        opts = {k: v for k, v in reserve_kwargs.items() if v is not None}
        for key in ("hardware", "kickstart", "variables", "secrets", "tags"):
            if key in opts:
                opts[key] = _json(opts[key])
        if "ssh_options" in opts:
            opts["ssh_options"] = list(opts["ssh_options"])
        opts.update(compose=compose, arch=arch, count=max_remotes,
                    max_retries=-1 if max_retries == 0 else max_retries)
        self._options = opts

    def _make_handle(self):
        return _atex.TestingFarmProvisioner(self._options)

    def stats(self):
        """Request counters: submitted, failed, ready, canceled, alive."""
        if self._handle is None:
            return dict.fromkeys(("submitted", "failed", "ready", "canceled", "alive"), 0)
        return self._handle.testingfarm_stats()

    def __str__(self):
        return f"TestingFarmProvisioner({self.compose}, {self.arch})"

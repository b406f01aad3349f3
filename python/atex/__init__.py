"""atex: Ad-hoc Test EXecution, the Python API over libatex.

Shaped like Python ATEX: the blocks are subpackages imported on first use
(``import atex`` then ``atex.connection.local.LocalConnection``).
Differences from Python ATEX are listed in docs/PYTHON.md.
"""

import importlib as _importlib

from . import _atex

__version__ = _atex.version

_SUBPACKAGES = (
    "aggregator",
    "connection",
    "executor",
    "orchestrator",
    "provisioner",
    "report",
    "util",
)

__all__ = _SUBPACKAGES


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))

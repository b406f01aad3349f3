"""Orchestrators: run many tests on systems from provisioners, results to
an aggregator (Python ATEX's ``atex.orchestrator``).

``Orchestrator`` is the abstract API; ``atex.orchestrator.adhoc`` has the
ad-hoc orchestrator (libatex's, with Python hooks). Submodules are imported
on first use.
"""

import importlib
import time
from abc import ABC, abstractmethod

from ..util.context import StartStop

_SUBMODULES = ("adhoc",)


class Orchestrator(StartStop, ABC):
    """What every orchestrator offers: ``serve_once()`` (non-blocking, True
    while there is more to do), ``serve_forever()``, ``start()`` /
    ``stop()`` and use as a context manager (start on enter, stop on exit,
    stop also when start failed)."""

    @abstractmethod
    def serve_once(self):
        """Does what is due without blocking; returns True while work
        remains (call again), False once every test has its result."""

    def serve_forever(self):
        """Serves until every test has its result."""
        while self.serve_once():
            time.sleep(0.1)

    @abstractmethod
    def start(self):
        """Prepares the run (nothing is tested yet)."""

    @abstractmethod
    def stop(self):
        """Ends the run: running tests are canceled, systems released."""


class OrchestratorError(Exception):
    """An orchestrator could not go on (no systems, broken setup...)."""


__all__ = (Orchestrator.__name__, *_SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

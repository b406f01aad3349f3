"""Aggregators: collect the results and files of finished tests.

Shaped like Python ATEX's ``atex.aggregator``: an :class:`Aggregator`
ingests the artifacts directory of each finished test (its ``results``
file and ``files/`` tree) under a platform and a test name. Implementations
are submodules imported on first use: ``jsonl``, ``yamld``, ``multi``,
``reportportal`` and atex's ``sqlite``. Differences from Python ATEX: docs/PYTHON.md.
"""

import importlib as _importlib
from abc import ABC, abstractmethod

from ..util.context import StartStop


class Aggregator(StartStop, ABC):
    """A test result collector.

    ``ingest()`` must be thread-safe (the orchestrator calls it from its
    worker threads); ``start()`` and ``stop()`` are called by the thread
    that made the aggregator. Also a context manager: ``with agg: ...``
    starts it, and stops it on the way out (also when ``start()`` failed).

    An aggregator written in Python (a subclass) works with the C
    orchestrator too: libatex calls its methods through a bridge.
    """

    @abstractmethod
    def ingest(self, platform, test_name, artifacts):
        """Process ``artifacts`` (str/Path: a directory with ``results``
        and ``files/``) of one test run, aggregating it under ``platform``
        as ``test_name``. Destructive: the artifacts are consumed."""

    @abstractmethod
    def start(self):
        """Open the outputs / allocate resources."""

    @abstractmethod
    def stop(self):
        """Close the outputs / free resources."""

    def _atex_native(self):
        """The libatex aggregator (an _atex.AggregatorHandle) that does
        all this object's work, or None when libatex must call the Python
        methods (through a bridge). Internal."""
        return None


class AggregatorError(Exception):
    """An ingest the aggregator refuses (a duplicate test name...)."""


_SUBMODULES = ("jsonl", "multi", "reportportal", "sqlite", "yamld")

__all__ = (Aggregator.__name__, AggregatorError.__name__, *_SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def __getattr__(attr):
    if attr in _SUBMODULES:
        return _importlib.import_module(f".{attr}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

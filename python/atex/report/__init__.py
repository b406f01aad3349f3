"""Reports of aggregated results (atex's own; not in Python ATEX).

``load(path)`` reads a results file the aggregators wrote: JSON Lines
(``.jsonl``, ``.jsonl.gz``, ``.jsonl.xz``, with earlier attempts from
``old/results.jsonl*`` next to it) or the SQLite aggregator's ``.sqlite``.
The :class:`Results` it returns is a sequence of :class:`Result` and
renders an HTML page, JUnit XML or a terminal summary::

    results = atex.report.load("results.jsonl.gz")
    results.html("report.html", title="nightly")
    results.junit("junit.xml")
    results.summary()             # to sys.stdout
    sys.exit(0 if results.passed else 1)
"""

import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from .. import _atex

__all__ = ("Result", "Results", "load")


class Result(NamedTuple):
    """One result: ``files`` are names relative to ``files_dir`` (the
    result's own files directory); ``attempt`` counts runs of the test
    from 1; ``final`` is False for an earlier attempt of a re-run test."""

    platform: str
    status: str
    test: str
    subtest: str | None
    note: str | None
    files: tuple
    files_dir: str
    attempt: int
    final: bool


class Results(Sequence):
    """Results loaded by :func:`load` (read-only, thread-safe)."""

    def __init__(self, path, loaded):
        self.path = os.fspath(path)
        self._r = loaded

    def __len__(self):
        return len(self._r)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return Result(*self._r[index])

    @property
    def passed(self):
        """True when every final result is pass, info, warn or skip."""
        return self._r.passed

    @property
    def damaged(self):
        """How many lines of the file were not results (each became an
        ``error`` result of platform ``"(damaged)"``)."""
        return self._r.damaged

    def final(self):
        """The final results (no earlier attempts)."""
        return [r for r in self if r.final]

    def html(self, path, title=None):
        """Write a self-contained HTML report to ``path``."""
        self._r.html(path, title)

    def junit(self, path):
        """Write JUnit XML (one testsuite per platform) to ``path``."""
        self._r.junit(path)

    def summary(self, file=None):
        """Write the terminal summary to ``file`` (a file object with a
        descriptor, or a descriptor; default sys.stdout)."""
        if file is None:
            file = sys.stdout
        if hasattr(file, "flush"):
            file.flush()
        self._r.summary(file)

    def __repr__(self):
        return f"<atex.report.Results {self.path!r}: {len(self)} results>"


def load(path):
    """Load the results file ``path`` (see the module). FileNotFoundError
    when it does not exist, ValueError (naming file:line) when it is not a
    results file."""
    return Results(path, _atex.ReportLoad(path))

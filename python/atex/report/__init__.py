"""Reports of aggregated results (atex's own; not in Python ATEX).

``load(path)`` reads a results file the aggregators wrote: JSON Lines
(``.jsonl``, ``.jsonl.gz``, ``.jsonl.xz``, with earlier attempts from
``old/results.jsonl*`` next to it) or the SQLite aggregator's ``.sqlite``.
The :class:`Results` it returns is a sequence of :class:`Result` and
renders an HTML page, JUnit XML, a terminal summary or tmt's
results.yaml::

    results = atex.report.load("results.jsonl.gz")
    results.html("report.html", title="nightly")
    results.junit("junit.xml")
    results.tmt("results.yaml")
    results.summary()             # to sys.stdout
    sys.exit(0 if results.passed else 1)
"""

import io
import operator
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import NamedTuple

from .. import _atex

__all__ = ("Result", "Results", "load")


class Result(NamedTuple):
    """One result: ``files`` are names relative to ``files_dir`` (the
    result's own files directory); ``attempt`` counts runs of the test
    from 1; ``final`` is False for an earlier attempt of a re-run test.
    ``start``, ``end`` (ISO 8601 UTC strings), ``duration`` (seconds),
    ``system`` and ``exit_code`` are the attempt's (every result of one
    attempt has the same), None when unknown."""

    platform: str
    status: str
    test: str
    subtest: str | None
    note: str | None
    files: tuple
    files_dir: str
    attempt: int
    final: bool
    start: str | None = None
    end: str | None = None
    duration: float | None = None
    system: str | None = None
    exit_code: int | None = None


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
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"result index {index} out of range ({n} results)")
        return Result(*self._r[index % n if index < 0 else index])

    @property
    def passed(self):
        """True when every final result is pass, info, warn or skip."""
        return self._r.passed

    @property
    def damaged(self):
        """How many lines of the file were not results (each became an
        ``error`` result of platform ``"(damaged)"``)."""
        return self._r.damaged

    @property
    def run(self):
        """What the run recorded of itself (run.json, or the SQLite
        ``run`` table): a dict with started, ended, atex_version,
        platform, provisioner, tree, git_commit, context (a dict),
        systems and history (a list of paths), each None when unknown;
        None when there is none."""
        return self._r.run

    @property
    def wall_time(self):
        """The run's wall time in seconds (its start to its end, else the
        span of the results' starts and ends), or None."""
        return self._r.wall_time

    def final(self):
        """The final results (no earlier attempts)."""
        return [r for r in self if r.final]

    def html(self, path, title=None):
        """Write a self-contained HTML report to ``path``."""
        self._r.html(path, title)

    def junit(self, path):
        """Write JUnit XML (one testsuite per platform) to ``path``."""
        self._r.junit(path)

    def tmt(self, path):
        """Write tmt's results.yaml of the final results to ``path`` (log
        paths relative to its folder)."""
        self._r.tmt(path)

    def summary(self, file=None):
        """Write the terminal summary to ``file``: a descriptor (int), or
        any object with ``write(str)`` (default ``sys.stdout``, whatever
        it has been replaced with). A file object with a working
        ``fileno()`` is written through its descriptor (colors on a
        terminal); any other (io.StringIO, a capture) gets the text."""
        if file is None:
            file = sys.stdout
        if isinstance(file, int):
            self._r.summary(file)
            return
        try:
            fd = file.fileno()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            fd = None
        if fd is not None and fd >= 0:
            if hasattr(file, "flush"):
                file.flush()
            self._r.summary(fd)
            return
        if not hasattr(file, "write"):
            raise TypeError(f"summary(): file must be a descriptor or have "
                            f"write(), not {type(file).__name__}")
        with tempfile.TemporaryFile() as tmp:
            self._r.summary(tmp.fileno())
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
        file.write(text)

    def __repr__(self):
        return f"<atex.report.Results {self.path!r}: {len(self)} results>"


def load(path):
    """Load the results file ``path`` (see the module), or a results folder
    of ``atex run`` (its results.jsonl, else its results.sqlite), as
    ``atex report`` does. FileNotFoundError when it does not exist (or the
    folder has neither), ValueError (naming file:line) when it is not a
    results file."""
    return Results(path, _atex.ReportLoad(path))

"""The SQLite aggregator over libatex's (atex's own, not in Python ATEX)."""

import json
import logging
from pathlib import Path

from ... import _atex
from .. import Aggregator

_logger = logging.getLogger("atex.aggregator.sqlite")


class _Native(Aggregator):
    """An aggregator libatex implements whole: the C orchestrator uses
    its libatex aggregator directly unless a subclass overrides one of
    start/ingest/stop (then libatex calls the Python methods)."""

    _handle = None

    def _atex_native(self):
        cls = type(self)
        base = self._native_class
        for op in ("start", "ingest", "stop"):
            if getattr(cls, op) is not getattr(base, op):
                return None
        return self._handle

    def start(self):
        """Open the database."""
        self.logger.debug(f"starting: {self}")
        self._handle.start()

    def stop(self):
        """Close the database."""
        self.logger.debug(f"stopping: {self}")
        self._handle.stop()

    def ingest(self, platform, test_name, artifacts):
        """Record one test's results (libatex, the GIL released). The
        artifacts are left in place (libatex never consumes them)."""
        self._handle.ingest(str(platform), str(test_name), artifacts)


_RUN_STRINGS = ("platform", "provisioner", "tree", "git_commit")


def _check_run(run):
    """SQLiteAggregator's run=: TypeError when not a dict, ValueError
    naming the key for an unknown key (a misspelt one would be lost) or a
    value of the wrong type (json.dumps would not name it)."""
    if not isinstance(run, dict):
        raise TypeError(f"SQLiteAggregator: run must be a dict, not {type(run).__name__}")
    for key, value in run.items():
        if key == "context":
            _check_context(value)
        elif key not in _RUN_STRINGS:
            known = ", ".join((*_RUN_STRINGS, "context"))
            raise ValueError(f"SQLiteAggregator: run: unknown key {key!r} (known: {known})")
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"SQLiteAggregator: run: {key!r} must be a string or None, "
                             f"not {type(value).__name__}")


def _check_context(context):
    if context is None:
        return
    if not isinstance(context, dict):
        raise ValueError(f"SQLiteAggregator: run: 'context' must be a dict or None, "
                         f"not {type(context).__name__}")
    for dim, value in context.items():
        if not isinstance(dim, str):
            raise ValueError(f"SQLiteAggregator: run: context key {dim!r} is not a string")
        if not isinstance(value, str):
            raise ValueError(f"SQLiteAggregator: run: context {dim!r} must be a string "
                             f"(several values joined with ','), not {type(value).__name__}")


class SQLiteAggregator(_Native):
    """Every result as a row of table ``results`` in the SQLite database
    ``target`` (id, platform, status, test, subtest, note, files as JSON
    text, ingested, attempt, final, and from the artifacts' attempt.json
    started, ended, duration, system, exit_code); files under ``files``
    when given. Table ``run`` has one row about the run: started, ended,
    atex_version, first_test, systems, and what ``run`` says (a dict with
    the keys platform, provisioner, tree, git_commit (strings) and context
    (a dict of strings), each optional). ``start()`` replaces an existing
    database. ``earlier()`` gives the aggregator for earlier attempts of
    re-run tests (same database, ``final = 0``). Load the database with
    atex.report.load()."""

    def __init__(self, target, files=None, run=None):
        self.logger = _logger
        self.target = Path(target)
        self.files = Path(files) if files is not None else None
        if run is not None:
            _check_run(run)
        self.run = run
        run_json = json.dumps(run) if run is not None else None
        self._handle = _atex.AggregatorSQLite(self.target, self.files, run_json)

    def earlier(self):
        """A SQLiteEarlierAggregator writing into this database."""
        return SQLiteEarlierAggregator(self)

    def __str__(self):
        return f"{self.__class__.__name__}({self.target}, {self.files})"


SQLiteAggregator._native_class = SQLiteAggregator


class SQLiteEarlierAggregator(_Native):
    """Earlier attempts of re-run tests into ``sqlite``'s database
    (``final = 0``); its start() and stop() do nothing (the database is
    ``sqlite``'s). Pass it as an orchestrator's ``old_aggregator``."""

    def __init__(self, sqlite):
        if not isinstance(sqlite, SQLiteAggregator):
            raise TypeError("SQLiteEarlierAggregator needs a SQLiteAggregator")
        self.logger = _logger
        self.sqlite = sqlite
        self._handle = _atex.AggregatorSQLiteEarlier(sqlite._handle)

    def __str__(self):
        return f"{self.__class__.__name__}({self.sqlite.target})"


SQLiteEarlierAggregator._native_class = SQLiteEarlierAggregator

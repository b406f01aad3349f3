"""The base of the aggregators that libatex writes with Python ATEX's
semantics (internal): libatex's strict reading and exclusive start, plus
what is Python's business: duplicate names, the checks Python ATEX makes
before an ingest, and consuming the artifacts after it."""

from pathlib import Path

from . import Aggregator
from ._common import SeenTests, check_artifacts, check_names, lexists


class LibatexAggregator(Aggregator):
    """``target`` and ``files`` (str/Path; FileExistsError at start() when
    either exists), ``allow_duplicate`` (see SeenTests). Subclasses give
    ``logger`` and ``_new_handle()``."""

    logger = None

    def __init__(self, target, files, *, allow_duplicate=False):
        self.target = Path(target)
        self.files = Path(files)
        self.allow_duplicate = allow_duplicate
        self._seen = SeenTests(allow_duplicate)
        self._handle = None
        self._stopped = False

    def _new_handle(self):
        raise NotImplementedError

    def start(self):
        """Create ``target`` and the ``files`` directory (FileExistsError
        when either exists)."""
        self.logger.debug(f"starting: {self}")
        if self._handle is None:
            self._handle = self._new_handle()
            self._stopped = False
        self._handle.start()

    def stop(self):
        """Flush and close ``target``."""
        self.logger.debug(f"stopping: {self}")
        handle, self._handle = self._handle, None
        if handle is not None:
            self._stopped = True
            try:
                handle.stop()
            finally:
                handle.close()

    def ingest(self, platform, test_name, artifacts):
        """Aggregate one test's ``artifacts``, consuming them: thread-safe,
        the writing done by libatex with the GIL released.

        All or nothing: libatex writes the results and places the files,
        then (in the same call, the GIL still released) ``results`` is
        removed and ``files/`` taken. A Ctrl-C meanwhile is raised when
        that call ends (the ingest of one test is never left half done);
        an ingest that did not happen can be retried under the same name.
        """
        platform, test_name = check_names(platform, test_name)
        handle = self._handle
        if handle is None:
            when = "after stop()" if self._stopped else "before start()"
            raise RuntimeError(f"{self}: ingest() of {test_name!r} on "
                               f"{platform!r} {when}")
        name = self._seen.name(platform, test_name)
        self.logger.info(f"ingesting '{platform}' / '{name}' from '{artifacts}'")
        try:
            artifacts, _ = check_artifacts(artifacts, self.files, platform, name)
            handle.ingest(platform, name, artifacts, consume=True)
        except BaseException:
            # Not ingested (the results file is still there): the name
            # is free again for a retry.
            try:
                undone = lexists(Path(artifacts) / "results")
            except (TypeError, ValueError):
                undone = True
            if undone:
                self._seen.forget(platform, test_name, name)
            raise

    def __str__(self):
        return f"{self.__class__.__name__}({self.target}, {self.files})"

"""The base of the aggregators that libatex writes with Python ATEX's
semantics (internal): libatex's strict reading and exclusive start, plus
what is Python's business: duplicate names, the checks Python ATEX makes
before an ingest, and consuming the artifacts after it."""

import shutil
from pathlib import Path

from . import Aggregator
from ._common import SeenTests, check_artifacts, has_entries


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

    def _new_handle(self):
        raise NotImplementedError

    def start(self):
        """Create ``target`` and the ``files`` directory (FileExistsError
        when either exists)."""
        self.logger.debug(f"starting: {self}")
        if self._handle is None:
            self._handle = self._new_handle()
        self._handle.start()

    def stop(self):
        """Flush and close ``target``."""
        self.logger.debug(f"stopping: {self}")
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.stop()
            finally:
                handle.close()

    def ingest(self, platform, test_name, artifacts):
        """Aggregate one test's ``artifacts``, consuming them: thread-safe,
        the writing done by libatex with the GIL released."""
        test_name = self._seen.name(platform, test_name)
        self.logger.info(f"ingesting '{platform}' / '{test_name}' from '{artifacts}'")
        handle = self._handle
        if handle is None:
            raise RuntimeError(f"{self}: ingest before start()")
        artifacts, _ = check_artifacts(artifacts, self.files, platform, test_name)
        files = artifacts / "files"
        any_files = has_entries(files)
        handle.ingest(str(platform), str(test_name), artifacts)
        # Python ATEX moves the artifacts: libatex linked (or copied) them.
        (artifacts / "results").unlink()
        if any_files:
            shutil.rmtree(files, ignore_errors=True)

    def __str__(self):
        return f"{self.__class__.__name__}({self.target}, {self.files})"

"""MultiAggregator: fans every call out to several aggregators."""

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import Aggregator

_logger = logging.getLogger("atex.aggregator.multi")


class MultiAggregator(Aggregator):
    """Every test ingested into each of ``aggregators`` (a non-empty
    sequence of aggregators, not started yet), in order. Ingest is
    destructive, so every aggregator but the last gets a copy of the
    artifacts (``cp --reflink=auto -a`` into ``atex-multi-*`` next to
    them, removed afterwards, also on errors); the last consumes the
    original. stop() stops every one, logging (not raising) failures."""

    def __init__(self, aggregators):
        self.logger = _logger
        self.aggregators = list(aggregators)
        if not self.aggregators:
            raise ValueError("at least one Aggregator is required")

    def start(self):
        """Start every aggregator, in order."""
        self.logger.debug(f"starting: {self}")
        for aggregator in self.aggregators:
            aggregator.start()

    def stop(self):
        """Stop every aggregator, logging the failures."""
        self.logger.debug(f"stopping: {self}")
        for aggregator in self.aggregators:
            try:
                aggregator.stop()
            except BaseException:
                self.logger.exception(f"failed to stop {aggregator}")

    def ingest(self, platform, test_name, artifacts):
        """Ingest into every aggregator (see the class)."""
        artifacts = Path(artifacts)
        for aggregator in self.aggregators[:-1]:
            copy = tempfile.mkdtemp(dir=artifacts.parent, prefix="atex-multi-")
            try:
                subprocess.run(
                    ("cp", "--reflink=auto", "-a", f"{artifacts}/.", f"{copy}/."),
                    check=True,
                )
                aggregator.ingest(platform, test_name, copy)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        self.aggregators[-1].ingest(platform, test_name, artifacts)

    def __str__(self):
        names = ", ".join(str(a) for a in self.aggregators)
        return f"{self.__class__.__name__}([{names}])"

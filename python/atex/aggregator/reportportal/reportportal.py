"""The ReportPortal aggregator over libatex's (src/aggregator/README.md,
"ReportPortal", has the mapping; docs/PYTHON.md the differences from
Python ATEX)."""

import logging
import os
from pathlib import Path

from ... import _atex
from .. import Aggregator
from .._common import check_names

_logger = logging.getLogger("atex.aggregator.reportportal")


class ReportPortalAPI:
    """Where and as whom to report: ``url`` of the ReportPortal instance,
    ``project`` inside it, ``token`` (an API key; None: libatex reads
    ``$ATEX_REPORTPORTAL_TOKEN``, else ``$TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN``).
    The token is sent only in the Authorization header and is in no
    ``str()``/``repr()``. ``ssl_verify=False`` is not supported."""

    def __init__(self, url, project, token, *, ssl_verify=True):
        if not ssl_verify:
            raise NotImplementedError("ssl_verify=False: atex always "
                                      "verifies TLS certificates")
        self.url = str(url).strip("/")
        self.project = project
        self.token = token

    def __str__(self):
        return f"{self.url} ({self.project})"

    def __repr__(self):
        return f"ReportPortalAPI({self.url!r}, {self.project!r}, token=...)"


class ReportPortalAggregator(Aggregator):
    """Posts every ingested test to a launch of ``api``.

    - ``launch_name`` and ``launch_rerun`` (a launch UUID) are mutually
      exclusive: a new launch of that name, or a rerun of that launch.
    - ``join_subtest``: None, subtests are nested steps of their test; a
      separator ("/", "::"): items "TEST<sep>SUBTEST" beside the test.
    - ``description``, ``attributes`` ("key:value" strings): of the launch.
    - ``retry_total``, ``timeout``: seconds one request is retried through
      outages (0: 4 hours) and one try may take (0: 60).
    - ``launch_per_platform``: a launch "LAUNCH_NAME PLATFORM" per
      platform (``launch_uuid`` is then None) instead of one launch.

    ``ingest()`` is thread-safe and consumes the artifacts (``results``
    removed, ``files/`` too) once posted; a test ingested again for the
    same platform is posted as a retry of its earlier item. It raises
    OSError (naming the test, the request and the HTTP status) when an
    upload fails for good. ``start()`` starts the launch, ``stop()``
    finishes it.
    """

    status_mapping = {
        "pass": "passed", "fail": "failed", "error": "failed",
        "warn": "warn", "infra": "interrupted", "skip": "skipped",
        "info": "info",
    }
    status_mapping_default = "info"

    def __init__(self, api, *, launch_name=None, launch_rerun=None,
                 join_subtest=None, description=None, attributes=None,
                 retry_total=0, timeout=0, launch_per_platform=False):
        if not launch_name and not launch_rerun:
            raise ValueError("'launch_name' or 'launch_rerun' must be given")
        if launch_name and launch_rerun:
            raise ValueError("'launch_name' and 'launch_rerun' are mutually "
                             "exclusive")
        self.logger = _logger
        self._api = api
        self.launch_name = launch_name
        self.launch_rerun = launch_rerun
        self.join_subtest = join_subtest
        self._handle = _atex.AggregatorReportPortal(
            api.url, api.project, api.token, launch_name=launch_name,
            launch_rerun=launch_rerun, join_subtest=join_subtest,
            description=description,
            attributes=list(attributes) if attributes else None,
            retry_total=retry_total, timeout=timeout,
            launch_per_platform=launch_per_platform)

    @classmethod
    def map_status(cls, src):
        return cls.status_mapping.get(src, cls.status_mapping_default)

    @property
    def launch_uuid(self):
        """The launch's UUID once started, else None."""
        return _atex.ReportPortalLaunch(self._handle)

    def start(self):
        self.logger.debug(f"starting: {self}")
        self._handle.start()

    def stop(self):
        self.logger.debug(f"stopping: {self}")
        self._handle.stop()

    def ingest(self, platform, test_name, artifacts):
        platform, test_name = check_names(platform, test_name)
        artifacts = Path(artifacts)
        if not os.path.lexists(artifacts / "results"):
            raise FileNotFoundError(f"{artifacts / 'results'} does not exist")
        self.logger.info(f"ingesting '{platform}' / '{test_name}' from "
                         f"'{artifacts}'")
        self._handle.ingest(platform, test_name, artifacts, consume=True)

    def promise(self, platform, test_names):
        raise NotImplementedError("promise(): atex posts a test when it "
                                  "has run (docs/PYTHON.md)")

    def earlier(self):
        """A ReportPortalEarlierAggregator of this launch (re-runs shown as
        retries): an orchestrator's ``old_aggregator``."""
        return ReportPortalEarlierAggregator(self)

    def __str__(self):
        launch = (f"rerun:{self.launch_rerun}" if self.launch_rerun
                  else self.launch_name)
        return f"{self.__class__.__name__}({self._api}, {launch})"


class ReportPortalEarlierAggregator(Aggregator):
    """Earlier attempts of re-run tests into ``rp``'s launch; start() and
    stop() do nothing (the launch is ``rp``'s)."""

    def __init__(self, rp):
        if not isinstance(rp, ReportPortalAggregator):
            raise TypeError("ReportPortalEarlierAggregator needs a "
                            "ReportPortalAggregator")
        self.logger = _logger
        self.rp = rp
        self._handle = _atex.AggregatorReportPortalEarlier(rp._handle)

    def start(self):
        pass

    def stop(self):
        pass

    def ingest(self, platform, test_name, artifacts):
        ReportPortalAggregator.ingest(self, platform, test_name, artifacts)

    def __str__(self):
        return f"{self.__class__.__name__}({self.rp})"

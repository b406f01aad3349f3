"""ReportPortalAggregator: every ingested test posted to a ReportPortal
launch (libatex's aggregator, shaped like Python ATEX's)."""

from .reportportal import (
    ReportPortalAPI,
    ReportPortalAggregator,
    ReportPortalEarlierAggregator,
)

__all__ = ("ReportPortalAPI", "ReportPortalAggregator",
           "ReportPortalEarlierAggregator")

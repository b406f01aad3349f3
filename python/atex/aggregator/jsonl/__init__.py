"""JSON Lines aggregators: one ``[platform, status, test, subtest, files,
note]`` line per result, plain, gzip or xz (libatex's JSON Lines
aggregator)."""

from .jsonl import (
    GzipJSONLinesAggregator,
    JSONLinesAggregator,
    LZMAJSONLinesAggregator,
)

__all__ = (
    "JSONLinesAggregator",
    "GzipJSONLinesAggregator",
    "LZMAJSONLinesAggregator",
)

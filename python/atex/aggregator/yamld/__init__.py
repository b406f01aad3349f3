"""The YAML documents aggregator (Python ATEX's layout)."""

from .yamld import YAMLDocumentAggregator

__all__ = ("YAMLDocumentAggregator",)

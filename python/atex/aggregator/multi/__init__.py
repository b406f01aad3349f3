"""MultiAggregator: several aggregators fed the same tests."""

from .multi import MultiAggregator

__all__ = ("MultiAggregator",)

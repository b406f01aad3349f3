"""SQLiteAggregator: every result in a SQLite database (atex's own)."""

from .sqlite import SQLiteAggregator, SQLiteEarlierAggregator

__all__ = ("SQLiteAggregator", "SQLiteEarlierAggregator")

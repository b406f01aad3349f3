"""Plain commands as tests (atex.executor.command)."""

from .command import CommandExecutor

__all__ = ("CommandExecutor",)

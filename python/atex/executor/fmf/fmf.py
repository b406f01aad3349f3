"""FMFExecutor (placeholder until the executor lands)."""
from .. import ExecutorError


class TestSetupError(ExecutorError):
    pass


class TestAbortedError(ExecutorError):
    pass


class FMFExecutor:
    pass

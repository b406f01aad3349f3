"""The test control channel's faults (atex.executor.fmf.testcontrol).

libatex reads the channel (docs/PROTOCOL.md); FMFExecutor.run_test raises
these when a test breaks it.
"""


class BadControlError(Exception):
    """The test broke the control channel: bad syntax, an unknown control
    word, bad or missing data for one."""


class BadReportJSONError(BadControlError):
    """A `result` the test sent is not valid JSON or not a valid result."""

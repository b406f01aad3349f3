"""BeakerLib tests on a system, through libatex (atex.executor.beakerlib).

`BeakerlibExecutor` is an `FMFExecutor` that runs every test as tmt's
`framework: beakerlib` unless the test's metadata names another
framework: BeakerLib installed when missing, `BEAKERLIB_DIR` (kept across
the test's reboots), `TESTID`, rlReport and rlFileSubmit wired to the
control channel, each phase a result of its own with its log, the test's
result read from BeakerLib's journal (docs/PROTOCOL.md).
"""

from .beakerlib import BeakerlibExecutor  # noqa: F401

__all__ = ("BeakerlibExecutor",)

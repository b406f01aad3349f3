"""BeakerlibExecutor: libatex's fmf executor with BeakerLib as the default
framework (see the package docstring and docs/PYTHON.md)."""

import logging

from ..fmf import FMFExecutor


class BeakerlibExecutor(FMFExecutor):
    """Runs the tests of an FMFTests as BeakerLib tests on one system.

    - `connection`: an atex.connection.Connection (connected by start()
      when it is not);
    - `fmf_tests`: what atex.executor.fmf.discover() returned;
    - `env`: environment for the plan's prepare and finish steps and
      every test.

    A test whose metadata says `framework: shell` still runs as a shell
    test. fmf libraries in `require` (`library(repo/lib)` or
    `type: library`) are fetched and found by rlImport, as for any
    FMFExecutor.
    """

    _framework = "beakerlib"

    def __init__(self, connection, fmf_tests, *, env=None):
        super().__init__(connection, fmf_tests, env=env)
        self.logger = logging.getLogger("atex.executor.beakerlib")

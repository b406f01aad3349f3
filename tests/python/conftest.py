"""Shared set-up for the Python package's tests (tests/python).

Run by meson (suite `python`) as
`with-server.sh KIND /usr/bin/python3 -m pytest tests/python/test_X.py`
with PYTHONPATH naming build/python; see tests/meson.build.
"""

import os
import signal
import sys

import pytest


def pytest_configure(config):
    # Started in the background by a non-interactive shell (make check's
    # lanes, `cmd &`), the run inherits SIGINT ignored, and Python then
    # installs no handler of its own: the Ctrl-C tests need it.
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # A test run that picked up another atex (an installed one, Python
    # ATEX's) would prove nothing: fail loudly instead.
    import atex

    where = os.path.dirname(atex.__file__)
    expected = os.environ.get("ATEX_PYTHON_BUILD")
    if expected and os.path.realpath(where) != os.path.realpath(
        os.path.join(expected, "atex")
    ):
        raise pytest.UsageError(f"imported atex from {where}, not {expected}")
    if sys.version_info < (3, 9):
        raise pytest.UsageError("the atex package needs Python 3.9 or newer")


@pytest.fixture
def atex_log(caplog):
    """caplog at DEBUG for the `atex` loggers, libatex's level following."""
    import atex

    caplog.set_level("DEBUG", logger="atex")
    atex._atex.log_sync()
    yield caplog
    atex._atex.log_flush()

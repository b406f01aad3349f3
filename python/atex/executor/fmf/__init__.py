"""fmf tests on a system, through libatex (atex.executor.fmf).

`discover()` selects the tests of an fmf tree for a tmt plan and gives an
`FMFTests`; `FMFExecutor` runs them one at a time over a Connection.
Note that `atex.executor.fmf.discover` is the function, while
`atex.executor.fmf.discover` imported as a module (`from
atex.executor.fmf.discover import ...`) is the submodule, as in Python
ATEX.
"""

from .discover import FetchError, discover  # noqa: F401
from .fmf import FMFExecutor, TestAbortedError, TestSetupError  # noqa: F401
from .metadata import (  # noqa: F401
    FMFTests,
    all_pkg_requires,
    duration_to_seconds,
    test_pkg_requires,
)

__all__ = ("FMFExecutor", "FMFTests", "discover")

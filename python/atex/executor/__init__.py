"""Executors: run one test at a time on a system (atex.executor).

Shaped like Python ATEX's: `Executor` is the base class (a context
manager: start on enter, stop on exit); `atex.executor.fmf` runs fmf tests
through libatex, `atex.executor.command` runs plain commands. Submodules
are imported on first use. Differences: docs/PYTHON.md, section executor.
"""

import abc as _abc
import importlib as _importlib

from ..util.context import StartStop as _StartStop


class Executor(_StartStop, _abc.ABC):
    """Runs tests on one system, one at a time.

    A subclass implements run_test, start, stop and cancel. Used as a
    context manager it is started on enter and stopped on exit (also when
    start fails). Any Executor can be given to the orchestrator: libatex
    then calls these methods (a bridge, docs/PYTHON.md).
    """

    @_abc.abstractmethod
    def run_test(self, test_name, artifacts):
        """Run test `test_name`, writing into the directory `artifacts`
        (str or Path, existing and empty): its results as JSON Lines in
        `artifacts/results`, its files under `artifacts/files`. Returns
        the test's exit code."""

    @_abc.abstractmethod
    def start(self):
        """Prepare the system for running tests."""

    @_abc.abstractmethod
    def stop(self):
        """Clean the system up after running tests."""

    @_abc.abstractmethod
    def cancel(self):
        """Stop a running run_test() as soon as possible (any thread)."""

    def _atex_handle(self):
        # libatex's own executor behind a built-in (FMFExecutor not
        # overridden), or None: C then calls these methods (a bridge).
        return None


class ExecutorError(Exception):
    """An executor could not run a test as asked."""


def _mark_canceled(artifacts, note="the run was canceled"):
    # A bridged run_test() that ended after libatex canceled it (Ctrl-C,
    # abort): its results say "infra" with `note`, as libatex's own
    # executor writes, not what the killed test's exit code made of it.
    # Results naming a subtest (a "name" key) stay.
    import json
    from pathlib import Path

    path = Path(artifacts) / "results"
    lines = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        pass
    out, own = [], False
    for line in lines:
        try:
            result = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if isinstance(result, dict) and not result.get("name"):
            result["status"] = "infra"
            result["note"] = note
            own = True
            line = json.dumps(result)
        out.append(line)
    if not own:
        out.append(json.dumps({"status": "infra", "note": note}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


_SUBMODULES = ("command", "fmf")

__all__ = ("Executor", *_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))

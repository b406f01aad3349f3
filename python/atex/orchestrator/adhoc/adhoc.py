"""AdHocOrchestrator: libatex's ad-hoc orchestrator with Python ATEX's API.

Systems come from the provisioners, each gets an executor from the
``executor`` factory and runs tests one after another; results go to the
aggregator. Scheduling, test runs and ingests happen in libatex's threads
(the GIL is free while they work); the hook methods below are called from
those threads only when a subclass overrides them.
"""

import inspect
import logging
import os
import threading

from ... import _atex, util
from .. import Orchestrator, OrchestratorError

# One logger for every instance (Python ATEX names one per instance,
# "atex.orchestrator.adhoc.N": logging keeps each forever, so a program
# making orchestrators in a loop would grow).
_logger = logging.getLogger("atex.orchestrator.adhoc")


class FailedSetupError(OrchestratorError):
    """More system setups failed than ``max_failed_setups`` allows."""


class _Artifacts:
    """Where a finished test's artifacts are while the hooks run (Python
    ATEX's TemporaryDirectory: ``.name``); the orchestrator removes the
    directory after ingesting it."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def cleanup(self):
        """Nothing to do: libatex removes the directory after ingest."""

    def __repr__(self):
        return f"<artifacts {self.name!r}>"

    def __fspath__(self):
        return self.name


def _takes_env(executor):
    """Whether executor.run_test() takes env= (FMFExecutor does; Python
    ATEX's Executor API has no env)."""
    try:
        params = inspect.signature(executor.run_test).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "env" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _overrides(obj, name):
    return getattr(type(obj), name) is not getattr(AdHocOrchestrator, name)


class AdHocOrchestrator(Orchestrator):
    """Runs ``tests`` on systems from ``provisioners``, any free system
    taking the next test.

    - ``platform``: the name results are aggregated under.
    - ``tests``: test names (any ``str()``-able objects, duplicates
      dropped, order kept); ValueError when empty.
    - ``provisioners``: started Provisioner instances.
    - ``executor``: a factory ``f(remote) -> Executor`` (an Executor class,
      a lambda...), called once per system.
    - ``aggregator``: a started Aggregator for final results.
    - ``old_aggregator``: a started Aggregator for attempts that were run
      again (it must take duplicate names); None drops them.
    - ``max_spares``: set-up systems kept idle to replace destroyed ones.
    - ``max_failed_setups``: failed setups tolerated (in total) before
      FailedSetupError.

    Override ``run_setup``, ``next_test``, ``destructive`` and
    ``should_be_rerun`` to change the policy (the mixins in
    ``atex.orchestrator.adhoc`` do it for common cases).
    """

    class SetupInfo(
        util.NamedMapping,
        required=("provisioner", "remote", "executor"),
    ):
        """A system just set up: its provisioner, Remote and Executor."""

    class RunningInfo(SetupInfo, required=("test_name", "artifacts")):
        """A test started on a system; ``artifacts.name`` is its
        directory."""

    class FinishedInfo(RunningInfo, required=("exit_code", "exception")):
        """A test that ended: ``exit_code`` (None when it raised) and
        ``exception`` (None when it did not)."""

    def __init__(
        self, platform, tests, provisioners, executor, aggregator, *,
        old_aggregator=None, max_spares=0, max_failed_setups=10,
        history=None,
    ):
        self.logger = _logger
        self.platform = platform
        self._tests = tuple(dict.fromkeys(tests))
        if not self._tests:
            raise ValueError("no tests were passed to run, 'tests' is empty")
        self._index = {name: i for i, name in enumerate(self._tests)}
        self.provisioners = tuple(provisioners)
        self.executor = executor
        self.aggregator = aggregator
        self.old_aggregator = old_aggregator
        self.max_spares = max_spares
        self.max_failed_setups = max_failed_setups
        # An atex extension: earlier runs' results (a path or a list of
        # them) to order the tests by (docs/PYTHON.md).
        if isinstance(history, (str, bytes, os.PathLike)):
            history = [history]
        self.history = tuple(history) if history else None
        self._failed_setups_left = max_failed_setups
        self._lock = threading.Lock()
        self._handle = None
        self._to_run = None  # next_test()'s live view (_atex_next_test)

    def __str__(self):
        state = "started" if self._handle else "stopped"
        return (f"{type(self).__name__}({self.platform}, "
                f"{len(self._tests)} tests, {state})")

    # -- life cycle --------------------------------------------------------

    def _hooks(self):
        hooks = 0
        for name, bit in (
            ("run_setup", _atex.ORCH_HOOK_RUN_SETUP),
            ("next_test", _atex.ORCH_HOOK_NEXT_TEST),
            ("destructive", _atex.ORCH_HOOK_DESTRUCTIVE),
            ("should_be_rerun", _atex.ORCH_HOOK_SHOULD_RERUN),
        ):
            if _overrides(self, name):
                hooks |= bit
        return hooks

    def start(self):
        """Makes the libatex orchestrator; systems are requested by the
        first serve call (libatex asks each provisioner for what the run
        can use, one system per test at most)."""
        self.logger.debug(f"starting: {self}")
        if self._handle:
            return
        if not self.provisioners:
            raise ValueError("no provisioners were given")
        _atex.log_sync()
        self._to_run = dict.fromkeys(self._tests)
        self._handle = _atex.AdHocOrchestrator(
            owner=self,
            platform=str(self.platform),
            tests=[str(t) for t in self._tests],
            provisioners=self.provisioners,
            aggregator=self.aggregator,
            old_aggregator=self.old_aggregator,
            max_spares=self.max_spares,
            hooks=self._hooks(),
            error=OrchestratorError,
            history=self.history,
        )

    def stop(self):
        """Cancels running tests, waits for their ingest, releases every
        system and frees the orchestrator."""
        self.logger.debug(f"stopping: {self}")
        handle, self._handle = self._handle, None
        if handle:
            handle.close()

    def _started(self):
        if not self._handle:
            self.start()
        return self._handle

    def serve_once(self):
        """One non-blocking step: True while work remains. Raises what a
        hook, the executor factory or a setup limit raised (the run is then
        aborted)."""
        return self._started().serve_once()

    def serve_forever(self):
        """Serves until every test has its result, the GIL free meanwhile.
        Ctrl-C aborts the run (systems released, finished tests ingested)
        and raises KeyboardInterrupt."""
        self._started().serve_forever()

    def abort(self):
        """Stops the run from any thread; the serve call then returns."""
        if self._handle:
            self._handle.abort()

    # -- the hooks ---------------------------------------------------------

    def run_setup(self, info, /):
        """Sets a new system up: ``info`` is a SetupInfo; starts its
        executor by default. An exception counts as a failed setup."""
        info.executor.start()

    def next_test(self, to_run, previous, /):
        """Returns the test to run next, one of ``to_run`` (the names left,
        in order; re-runs last). ``previous`` is the SetupInfo of a fresh
        system or the FinishedInfo of the test it ran last. Must not modify
        its arguments."""
        return next(iter(to_run))

    def destructive(self, info, /):
        """True when the finished test (FinishedInfo) left its system
        unusable; by default when it exited non-zero. Not asked when the
        test raised (the system is then always replaced)."""
        return info.exit_code != 0

    def should_be_rerun(self, info, /):
        """True to run the failed test (FinishedInfo; asked only when it
        raised or exited non-zero) again; never by default."""
        return False

    # -- called by atex._atex ---------------------------------------------

    def _atex_new_system(self, index, remote):
        provisioner = self.provisioners[index]
        executor = self.executor(remote)
        self.logger.info(f"running setup on new {remote}")
        info = self.SetupInfo(
            provisioner=provisioner, remote=remote, executor=executor)
        return executor, info, _takes_env(executor)

    def _atex_setup_failed(self, info, exception):
        what = (f"{type(exception).__name__}({exception})"
                if exception is not None else "an error")
        msg = f"{info.remote}: setup failed with {what}"
        with self._lock:
            left = self._failed_setups_left
            if left > 0:
                self._failed_setups_left -= 1
        if left > 0:
            self.logger.warning(
                f"{msg}, re-trying ({left - 1} setup retries left)")
            return
        self.logger.error(f"{msg}, setup retries exceeded, giving up")
        raise FailedSetupError("setup retries limit exceeded, broken infra?")

    def _atex_next_test(self, queued, previous):
        # `queued`: libatex's queue as test indexes in Python ATEX's order,
        # or only its length when our live copy may still match it: the
        # copy loses the tests taken here and gains the re-runs decided
        # in _atex_finished, so next_test() costs O(1) instead of
        # O(queued). None asks for the indexes (libatex re-queued a test
        # of a lost system itself, or a call failed).
        if isinstance(queued, int):
            if self._to_run is None or len(self._to_run) != queued:
                return None
        else:
            self._to_run = dict.fromkeys(self._tests[i] for i in queued)
        to_run = self._to_run.keys()
        choice = self.next_test(to_run, previous)
        try:
            ok = choice in to_run
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{type(self).__name__}.next_test() returned {choice!r}, "
                "which is not one of the tests to run")
        self.logger.info(f"starting '{choice}' on {previous.remote}")
        index = self._index[choice]
        del self._to_run[self._tests[index]]
        return index

    def _atex_finished(self, previous, index, exit_code, artifacts, exc):
        name = self._tests[index]
        info = self.FinishedInfo._from(
            previous, test_name=name, artifacts=_Artifacts(artifacts),
            exit_code=exit_code, exception=exc)
        if exc is not None:
            self.logger.warning(
                f"'{name}' threw {type(exc).__name__}({exc}) during test "
                "runtime")
            destroyed = True
        else:
            self.logger.debug(f"'{name}' exited with: {exit_code}")
            destroyed = bool(self.destructive(info))
        rerun = False
        if exc is not None or exit_code != 0:
            rerun = bool(self.should_be_rerun(info))
        if rerun:
            self.logger.info(f"'{name}' failed, re-running")
            if self._to_run is not None:
                self._to_run[name] = None  # queued last, as libatex does
        elif self.logger.isEnabledFor(logging.INFO):
            self.logger.info(f"'{name}' completed, ingesting result")
        return destroyed, rerun, self.FinishedInfo._from(info, artifacts=None)

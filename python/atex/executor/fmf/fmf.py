"""FMFExecutor: fmf tests run by libatex's fmf executor (atex.executor.fmf)."""

import json
import logging
import re

from ... import _atex
from .. import Executor, ExecutorError
from .testcontrol import BadControlError, BadReportJSONError

_log = logging.getLogger("atex.executor")


class TestSetupError(ExecutorError):
    """The test could not be set up: its required packages could not be
    installed (the message says which and why)."""

    __test__ = False  # not a pytest test class


class TestAbortedError(ExecutorError):
    """The test did not end by itself: out of time, canceled, or the
    system was lost without the test announcing a reboot."""

    __test__ = False


_NOTE = re.compile(r"(TestAbortedError|BadControlError|BadReportJSONError)\((.*)\)\Z", re.S)
_CLASSES = {
    "TestAbortedError": TestAbortedError,
    "BadControlError": BadControlError,
    "BadReportJSONError": BadReportJSONError,
}
_OPS = ("start", "stop", "cancel", "run_test", "eval_exit_code")


def _last_note(artifacts):
    try:
        with open(f"{artifacts}/results", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        return json.loads(lines[-1]).get("note") if lines else None
    except (OSError, ValueError, AttributeError):
        return None


class FMFExecutor(Executor):
    """Runs the tests of an FMFTests (from discover()) on one system.

    - `connection`: an atex.connection.Connection (connected by start()
      when it is not);
    - `fmf_tests`: what discover() returned; a script's edits of its
      `.data` are used (a test's data as it is when the test starts);
    - `env`: environment for the plan's prepare and finish steps and
      every test (over the plan's and the test's own, under run_test's).

    start() uploads the tree to a private directory on the system and
    runs the plan's prepare steps; stop() runs its finish steps and
    removes the directory. Results follow Python ATEX's rules (see
    docs/PYTHON.md for the differences).
    """

    # The framework of tests without a `framework` key (None: tmt's
    # "shell"); BeakerlibExecutor makes it "beakerlib".
    _framework = None

    def __init__(self, connection, fmf_tests, *, env=None):
        self.conn = connection
        self.fmf_tests = fmf_tests
        self.env = dict(env or {})
        self._handle = None
        self._started = False
        self._canceled = False

    def __str__(self):
        return f"{type(self).__name__}({self.conn}, {self.fmf_tests.root})"

    def _native(self):
        cls = type(self)
        return all(getattr(cls, op) is getattr(FMFExecutor, op) for op in _OPS)

    def _get_handle(self):
        if self._handle is None:
            self._handle = _atex.FMFExecutorHandle(
                self.conn, self.fmf_tests, self.env, self._framework)
        return self._handle

    def _atex_handle(self):
        return self._get_handle() if self._native() else None

    def start(self):
        """Prepare the system: upload the tests, run the plan's prepare
        steps. Raises OSError/ConnectionError-like errors from libatex
        (a failed prepare step: atex._atex.Error with its output)."""
        handle = self._get_handle()
        try:
            handle.start()
        except BaseException:
            self._canceled = True  # a Ctrl-C cancels the libatex executor
            raise
        self._started = True
        self._canceled = False

    def stop(self):
        """Run the plan's finish steps and remove the work directory;
        safe when not started, tolerates a lost system."""
        if self._handle is not None and self._started:
            self._handle.stop()
        self._started = False

    def cancel(self):
        """Stop a running run_test() as soon as possible (any thread);
        it raises TestAbortedError("cancel requested"). A later
        run_test() runs normally (on a freshly prepared work directory)."""
        handle = self._handle
        if handle is not None:
            self._canceled = True
            handle.cancel()

    def _restart(self):
        # libatex's cancel is final: a new executor, prepared anew.
        old = self._handle
        self._handle = None
        self._started = False
        if old is not None:
            old.stop()
        self.start()

    def eval_exit_code(self, test_name, reporter, exit_code):  # noqa: ARG002
        """The exit code run_test() returns, from the test's own; called
        after the results are written (`reporter` is None here)."""
        return exit_code

    def run_test(self, test_name, artifacts, *, env=None):
        """Run `test_name` into `artifacts` (its `results` and `files/`).

        `env` wins over every other environment. Returns the test's exit
        code. Raises ValueError (no such test), TestSetupError (required
        packages), TestAbortedError (out of time, canceled, system lost),
        BadControlError / BadReportJSONError (the test broke the test
        control protocol); the results then hold an "infra" result whose
        note is that exception, unless the test had closed its own.
        """
        if test_name not in self.fmf_tests.data:
            raise ValueError(f"'{test_name}' doesn't exist in the given FMFTests")
        if not self._started:
            raise ExecutorError(f"{self}: run_test before start()")
        if self._canceled:
            self._restart()
        self.fmf_tests._sync(only=test_name)
        try:
            rc, exit_code, message = self._handle.run_test(test_name, str(artifacts), env)
        except BaseException:
            self._canceled = True
            raise
        if rc == 0 and exit_code == -1:
            note = _last_note(artifacts) or "required packages could not be installed"
            raise TestSetupError(note)
        if rc == 0:
            return self.eval_exit_code(test_name, None, exit_code)
        if rc == _atex.E_CANCELED:
            self._canceled = True
        raise _exception(rc, message)


def _exception(rc, message):
    match = _NOTE.search(message or "")
    if match:
        return _CLASSES[match.group(1)](match.group(2))
    if rc == _atex.E_NOTFOUND:
        return ValueError(message)
    if rc == _atex.E_FORMAT:
        return ValueError(message)
    if rc == _atex.E_IO:
        return OSError(message)
    if rc == _atex.E_INVAL:
        return ExecutorError(message)
    return TestAbortedError(message)

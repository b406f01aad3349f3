"""CommandExecutor: each test is a command run through a Connection."""

import json
import logging
import subprocess
from pathlib import Path, PurePath

from .. import Executor

_log = logging.getLogger("atex.executor.command")


def _safe_name(name):
    """`name` as a relative path that stays inside its directory: control
    characters become "_", ".", ".." and a leading "/" are dropped."""
    clean = "".join("_" if ord(ch) < 32 or ord(ch) == 127 else ch for ch in str(name))
    parts = [p for p in PurePath(clean).parts if p not in ("/", ".", "..")]
    if not parts:
        raise ValueError(f"output file name {name!r} names no file")
    return PurePath(*parts)


class CommandExecutor(Executor):
    """Runs commands as tests: `tests` maps a test name to its command
    (argv sequence), run by `connection.cmd(..., func=subprocess.Popen)`.
    Its output (stdout and stderr) goes to `files/<output>`; one result
    {"status": evaluate(...), "files": [output]}."""

    def __init__(self, connection, tests):
        self.conn = connection
        self.tests = tests
        self._proc = None

    def __str__(self):
        return f"{type(self).__name__}({self.conn}, {len(self.tests)} tests)"

    def start(self):
        """Nothing to prepare."""
        _log.debug("starting: %s", self)

    def stop(self):
        """Nothing to clean up."""
        _log.debug("stopping: %s", self)

    def cancel(self):
        """Kill the running command (any thread)."""
        proc = self._proc
        if proc is not None:
            proc.kill()

    def evaluate(self, exit_code, output):  # noqa: ARG002
        """The status of a finished command: "pass" for exit code 0, else
        "fail". `output` is the Path of its output file."""
        return "pass" if exit_code == 0 else "fail"

    def run_test(self, test_name, artifacts, *, output="output.txt"):
        """Run the command of `test_name`; returns its exit code."""
        if test_name not in self.tests:
            raise ValueError(f"'{test_name}' doesn't exist")
        command = self.tests[test_name]
        _log.info("'%s': running %s, artifacts=%s", test_name, command, artifacts)
        artifacts = Path(artifacts)
        files = artifacts / "files"
        files.mkdir()
        out_path = files / _safe_name(output)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "wb") as f:
            self._proc = self.conn.cmd(
                command, stdout=f, stderr=subprocess.STDOUT, func=subprocess.Popen
            )
            try:
                returncode = self._proc.wait()
            finally:
                self._proc = None
        result = {"status": self.evaluate(returncode, out_path), "files": [output]}
        (artifacts / "results").write_text(json.dumps(result) + "\n")
        return returncode

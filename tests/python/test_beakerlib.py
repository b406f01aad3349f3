"""atex.executor.beakerlib: BeakerlibExecutor (Python ATEX's class) over a
LocalConnection, against the fake BeakerLib of the C tests
(tests/integration/beakerlib-fake: BeakerLib is no Debian package; the
fixture writes the journal and TestResults in BeakerLib's formats)."""

import json
import textwrap
from pathlib import Path

import pytest

from atex.connection.local import LocalConnection
from atex.executor.beakerlib import BeakerlibExecutor
from atex.executor.fmf import FMFExecutor, TestSetupError, discover

TOP = Path(__file__).resolve().parent.parent / "integration"
FAKE = str(TOP / "beakerlib-fake")
TREE = """
/plan:
  discover: {how: fmf}
  execute: {how: tmt}
duration: 1m
/passing:
  test: |
    . "$BEAKERLIB/beakerlib.sh" || exit 1
    false
    rlJournalStart
    rlPhaseStartTest one
    rlAssert0 "zero is zero" 0
    rlPhaseEnd
    rlJournalEnd
/failing:
  test: |
    . "$BEAKERLIB/beakerlib.sh" || exit 1
    rlJournalStart
    rlPhaseStartTest two
    rlAssert0 "one is not zero" 1
    rlPhaseEnd
    rlJournalEnd
/shell:
  framework: shell
  test: exit 0
"""


def results(artifacts):
    return [json.loads(line) for line in (Path(artifacts) / "results").read_text().splitlines()]


@pytest.fixture(scope="module")
def tests(tmp_path_factory):
    root = tmp_path_factory.mktemp("bltree")
    (root / ".fmf").mkdir()
    (root / ".fmf" / "version").write_text("1\n")
    (root / "main.fmf").write_text(textwrap.dedent(TREE))
    return discover(root, "/plan")


def test_every_test_is_beakerlib(tests, tmp_path):
    with BeakerlibExecutor(LocalConnection(), tests, env={"BEAKERLIB": FAKE}) as e:
        # `false` before rlJournalStart does not end it: no errexit.
        assert e.run_test("/passing", tmp_path / "p") == 0
        res = results(tmp_path / "p")
        assert res[0] == {"status": "pass", "name": "one", "files": ["resultoutputfile.log"]}
        assert res[-1]["status"] == "pass" and "name" not in res[-1]
        assert "TestResults" in res[-1]["files"]
        # Python ATEX: a BeakerLib test's results decide its exit code.
        assert e.run_test("/failing", tmp_path / "f") == 1
        assert [r["status"] for r in results(tmp_path / "f")] == ["fail", "fail"]
        # The test's own key wins.
        assert e.run_test("/shell", tmp_path / "s") == 0
        assert results(tmp_path / "s") == [{"status": "pass", "files": ["output.txt"]}]


def test_fmf_executor_stays_shell(tests, tmp_path):
    with FMFExecutor(LocalConnection(), tests, env={"BEAKERLIB": FAKE}) as e:
        # Run as a shell test: `false` ends it under set -eo pipefail.
        assert e.run_test("/passing", tmp_path / "p") == 1
        assert results(tmp_path / "p") == [{"status": "fail", "files": ["output.txt"]}]


def test_beakerlib_missing(tests, tmp_path):
    with BeakerlibExecutor(LocalConnection(), tests,
                           env={"BEAKERLIB": str(tmp_path / "none")}) as e:
        # As Python ATEX when beakerlib cannot be installed.
        with pytest.raises(TestSetupError, match="no readable beakerlib.sh"):
            e.run_test("/passing", tmp_path / "m")
        res = results(tmp_path / "m")
        assert res[-1]["status"] == "error"
        assert "none" in res[-1]["note"]

"""Issue 14's timings through the Python API: SQLiteAggregator's run=
keyword and its timing columns, filled from ARTIFACTS/attempt.json as the
ad-hoc orchestrator writes it."""

import json
import sqlite3

import pytest

from atex import _atex
from atex.aggregator.sqlite import SQLiteAggregator
from atex.executor.command import CommandExecutor
from atex.orchestrator.adhoc import AdHocOrchestrator
from atex.provisioner.local import LocalProvisioner

ATTEMPT = {"start": "2026-12-06T22:45:01.123+00:00",
           "end": "2026-12-06T22:45:04.567+00:00", "duration": 3.444,
           "system": "local-3", "attempt": 1, "exit_code": 0}


def artifacts(base, attempt=ATTEMPT):
    art = base / "art"
    art.mkdir()
    (art / "results").write_text(json.dumps({"status": "pass"}) + "\n")
    if attempt is not None:
        (art / "attempt.json").write_text(json.dumps(attempt))
    return art


def rows(db, sql):
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql)]


def test_sqlite_run_and_columns(tmp_path):
    db = tmp_path / "r.sqlite"
    art = artifacts(tmp_path)
    agg = SQLiteAggregator(db, run={"platform": "fedora-41", "tree": "/t",
                                    "context": {"distro": "fedora-41"}})
    with agg:
        agg.ingest("p", "/a", art)
    (got,) = rows(db, "SELECT started, ended, duration, system, attempt,"
                      " exit_code FROM results")
    assert got == {"started": ATTEMPT["start"], "ended": ATTEMPT["end"],
                   "duration": 3.444, "system": "local-3", "attempt": 1,
                   "exit_code": 0}
    (run,) = rows(db, "SELECT * FROM run")
    assert run["platform"] == "fedora-41" and run["tree"] == "/t"
    assert run["provisioner"] is None and run["git_commit"] is None
    assert json.loads(run["context"]) == {"distro": "fedora-41"}
    assert run["first_test"] == ATTEMPT["start"] and run["systems"] == 1
    assert run["ended"] >= run["started"]


def test_sqlite_run_refused(tmp_path):
    with pytest.raises(TypeError, match="dict"):
        SQLiteAggregator(tmp_path / "r.sqlite", run="platform=x")
    with pytest.raises(ValueError, match="tree"):
        SQLiteAggregator(tmp_path / "r.sqlite", run={"tree": 1})
    # Without run=, as before: the run row has the version and times.
    db = tmp_path / "plain.sqlite"
    with SQLiteAggregator(db) as agg:
        agg.ingest("p", "/a", artifacts(tmp_path, attempt=None))
    (run,) = rows(db, "SELECT atex_version, platform, systems FROM run")
    assert run == {"atex_version": _atex.version, "platform": None,
                   "systems": 0}
    (got,) = rows(db, "SELECT started, duration, attempt FROM results")
    assert got == {"started": None, "duration": None, "attempt": 1}


def test_orchestrator_times_every_attempt(tmp_path):
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/bash\nsleep 0.2\n")
    ok.chmod(0o755)
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nsleep 0.1\nexit 3\n")
    bad.chmod(0o755)
    tests = {"/ok": (ok,), "/bad": (bad,)}
    db = tmp_path / "r.sqlite"
    prov = LocalProvisioner()
    agg = SQLiteAggregator(db)
    with prov, agg:
        with AdHocOrchestrator("plat", tests.keys(), (prov,),
                               lambda remote: CommandExecutor(remote, tests),
                               agg) as orch:
            orch.serve_forever()
    got = {r["test"]: r for r in rows(db, "SELECT * FROM results")}
    assert set(got) == {"/ok", "/bad"}
    assert got["/ok"]["exit_code"] == 0 and got["/bad"]["exit_code"] == 3
    assert got["/ok"]["duration"] >= 0.2 and got["/bad"]["duration"] >= 0.1
    for r in got.values():
        assert r["started"] < r["ended"] and r["system"] and r["attempt"] == 1


@pytest.mark.parametrize("run, key", [
    ({"context": {"a": 1}}, "'a'"),
    ({"context": {"a": None}}, "'a'"),
    ({"context": {"a": ["x", "y"]}}, "'a'"),
    ({"context": {1: "x"}}, "1"),
    ({"context": "a=b"}, "'context'"),
    ({"tree": b"x"}, "'tree'"),
    ({"git-commit": "0" * 40}, "'git-commit'"),
])
def test_sqlite_run_checked(tmp_path, run, key):
    """run= as docs/PYTHON.md says: a ValueError naming the key, nothing
    stored as it is nor dropped silently."""
    with pytest.raises(ValueError, match=key):
        SQLiteAggregator(tmp_path / "r.sqlite", run=run)


def test_sqlite_run_json_checked_in_c(tmp_path):
    """libatex refuses the same run_json (for C callers), naming the key."""
    for text, key in (('{"context": {"a": 1}}', '"a"'),
                      ('{"context": {"a": ["x"]}}', '"a"'),
                      ('{"git-commit": "x"}', '"git-commit"')):
        with pytest.raises(ValueError, match=key):
            _atex.AggregatorSQLite(tmp_path / "r.sqlite", None, text)
    _atex.AggregatorSQLite(tmp_path / "r.sqlite", None,
                           '{"context": {"a": "x,y"}, "tree": null}')

"""AdHocOrchestrator(history=...): an atex extension (Python ATEX has no
history): tests ordered by earlier runs' measured times, read from a
results database made here by hand in the SQLite aggregator's schema
(docs/PROTOCOL.md); bad paths fail the start, naming the path."""

import sqlite3

import pytest

from atex.orchestrator.adhoc import AdHocOrchestrator
from test_orchestrator import PoolProvisioner, run, script

SCHEMA = (
    "CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT NOT NULL,"
    " status TEXT NOT NULL, test TEXT NOT NULL, subtest TEXT, note TEXT,"
    " files TEXT NOT NULL, ingested REAL NOT NULL, attempt INTEGER NOT NULL,"
    " final INTEGER NOT NULL, started TEXT, ended TEXT, duration REAL,"
    " system TEXT, exit_code INTEGER)")


def history_db(path, durations):
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    for i, (test, duration) in enumerate(durations.items()):
        db.execute(
            "INSERT INTO results(platform, status, test, files, ingested,"
            " attempt, final, started, duration) VALUES"
            " ('p', 'pass', ?, '[]', 0, 1, 1, ?, ?)",
            (test, f"2026-12-06T10:00:{i:02d}.000+00:00", duration))
    db.commit()
    db.close()
    return path


def test_history_orders_tests(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    db = history_db(tmp_path / "h.sqlite",
                    {"/short": 1, "/long": 30, "/mid": 10})
    tests = {"/long": (ok,), "/mid": (ok,), "/new": (ok,), "/short": (ok,)}
    # One system: the results come in the order the tests ran.
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    results, _ = run(tmp_path / "with", dict(sorted(tests.items())),
                     provisioner=PoolProvisioner(1), history=db)
    assert [r[2] for r in results] == ["/new", "/long", "/mid", "/short"]
    # Without history: Python ATEX's order, the order given.
    results, _ = run(tmp_path / "without", dict(sorted(tests.items())),
                     provisioner=PoolProvisioner(1))
    assert [r[2] for r in results] == ["/long", "/mid", "/new", "/short"]


def test_next_test_override_wins(tmp_path):
    ok = script(tmp_path, "ok.sh", "true\n")
    db = history_db(tmp_path / "h.sqlite", {"/a": 1, "/b": 30})

    class Last(AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            return list(to_run)[-1]

    results, _ = run(tmp_path, {"/b": (ok,), "/a": (ok,)}, cls=Last,
                     provisioner=PoolProvisioner(1), history=[db])
    assert [r[2] for r in results] == ["/a", "/b"]


@pytest.mark.parametrize("make", ["missing", "text", "old"])
def test_bad_history_path(tmp_path, make):
    ok = script(tmp_path, "ok.sh", "true\n")
    path = tmp_path / f"{make}.sqlite"
    if make == "text":
        path.write_text("not a database at all, just some text\n")
    elif make == "old":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE results(id INTEGER PRIMARY KEY,"
                   " platform TEXT, status TEXT, test TEXT, subtest TEXT,"
                   " note TEXT, files TEXT, ingested REAL, attempt INTEGER,"
                   " final INTEGER)")
        db.commit()
        db.close()
    with pytest.raises(Exception) as e:
        run(tmp_path, {"/a": (ok,)}, history=str(path))
    assert str(path) in str(e.value)
    if make == "old":
        assert "before timings" in str(e.value)

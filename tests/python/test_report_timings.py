"""atex.report and issue 14: the attempts' timings on each Result, the
run's metadata (Results.run, wall_time) and tmt's results.yaml
(Results.tmt)."""

import json

import yaml

import atex.report

LINES = [
    ["local", "pass", "/a", None, ["out.txt"], None],
    ["local", "fail", "/a", "s1", [], "bad"],
    ["local", "infra", "/b", None, [], "lost"],
]
ATTEMPTS = [
    {"platform": "local", "test": "/a", "attempt": 1, "final": True,
     "start": "2026-12-06T22:45:01.123+00:00",
     "end": "2026-12-06T22:45:04.567+00:00", "duration": 3.444,
     "system": "local-3", "exit_code": 0},
    {"platform": "local", "test": "/b", "attempt": 1, "final": True,
     "start": None, "end": None, "duration": None, "system": None,
     "exit_code": None},
]
RUN = {"started": "2026-12-06T22:44:59.000+00:00",
       "ended": "2026-12-06T22:46:11.500+00:00", "atex_version": "0.1.0",
       "platform": "local", "provisioner": "local", "tree": "/t",
       "git_commit": None, "context": {"distro": "fedora-41"},
       "systems": 3, "history": ["/h/r1"]}


def write_run(d, run=True):
    (d / "results.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in LINES))
    (d / "attempts.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in ATTEMPTS))
    if run:
        (d / "run.json").write_text(json.dumps(RUN))
    (d / "files/local/a").mkdir(parents=True)
    (d / "files/local/a/out.txt").write_text("out\n")


def test_timings(tmp_path):
    write_run(tmp_path)
    results = atex.report.load(tmp_path / "results.jsonl")
    a, s1, b = results
    for r in (a, s1):
        assert r.start == "2026-12-06T22:45:01.123+00:00"
        assert r.end == "2026-12-06T22:45:04.567+00:00"
        assert r.duration == 3.444
        assert r.system == "local-3"
        assert r.exit_code == 0
    assert (b.start, b.end, b.duration, b.system, b.exit_code) == (
        None, None, None, None, None)
    # The six fields and the attempt come first, as before.
    assert a[:9] == ("local", "pass", "/a", None, None, ("out.txt",),
                     a.files_dir, 1, True)


def test_run(tmp_path):
    write_run(tmp_path)
    results = atex.report.load(tmp_path / "results.jsonl")
    run = results.run
    assert run["started"] == RUN["started"]
    assert run["atex_version"] == "0.1.0"
    assert run["git_commit"] is None
    assert run["context"] == {"distro": "fedora-41"}
    assert run["systems"] == 3
    assert run["history"] == ["/h/r1"]
    assert abs(results.wall_time - 72.5) < 1e-6


def test_no_run(tmp_path):
    write_run(tmp_path, run=False)
    results = atex.report.load(tmp_path / "results.jsonl")
    assert results.run is None
    # Only /a has a start and an end.
    assert abs(results.wall_time - 3.444) < 1e-6


def test_tmt(tmp_path):
    write_run(tmp_path)
    results = atex.report.load(tmp_path / "results.jsonl")
    (tmp_path / "out").mkdir()
    results.tmt(tmp_path / "out" / "results.yaml")
    data = yaml.safe_load((tmp_path / "out" / "results.yaml").read_text())
    assert [e["name"] for e in data] == ["/a", "/b"]
    assert data[0]["duration"] == "00:00:03"
    assert data[0]["log"] == ["../files/local/a/out.txt"]
    assert data[0]["subresult"][0]["result"] == "fail"
    assert data[1]["result"] == "error"
    assert data[1]["note"][0] == "lost"


def test_load_results_folder(tmp_path):
    """A results folder of atex run loads as `atex report DIR` reads it:
    its results.jsonl (with the run's metadata), else its results.sqlite."""
    run = tmp_path / "run"
    run.mkdir()
    write_run(run)
    results = atex.report.load(run)
    assert [(r.test, r.subtest) for r in results] == [
        ("/a", None), ("/a", "s1"), ("/b", None)]
    assert results.run["platform"] == "local"
    assert results[0].files_dir == str(run / "files/local/a")
    from atex.aggregator.sqlite import SQLiteAggregator
    only_db = tmp_path / "db"
    only_db.mkdir()
    with SQLiteAggregator(only_db / "results.sqlite"):
        pass
    assert len(atex.report.load(only_db)) == 0

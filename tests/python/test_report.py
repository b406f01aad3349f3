"""atex.report: results files loaded (JSON Lines plain/gz/xz, earlier
attempts, SQLite), and the HTML, JUnit and summary writers."""

import gzip
import io
import json
import logging
import lzma
import os
import resource
import sys
import threading
import tracemalloc
import xml.etree.ElementTree as ET

import pytest

import atex.report
from atex.aggregator.sqlite import SQLiteAggregator
from atex.report import Result, Results

LINES = [
    ["p1", "pass", "/a", None, ["out.log"], None],
    ["p1", "fail", "/b", "sub", [], "it broke"],
    ["p2", "skip", "/c", None, [], None],
]


def write_jsonl(path, lines, opener=open):
    with opener(path, "wt") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")


@pytest.mark.parametrize("name, opener", [
    ("r.jsonl", open), ("r.jsonl.gz", gzip.open), ("r.jsonl.xz", lzma.open)])
def test_load_jsonl(tmp_path, name, opener):
    write_jsonl(tmp_path / name, LINES, opener)
    results = atex.report.load(tmp_path / name)
    assert isinstance(results, Results)
    assert len(results) == 3
    first = results[0]
    assert isinstance(first, Result)
    assert first == Result("p1", "pass", "/a", None, None, ("out.log",),
                           f"{tmp_path}/files/p1/a", 1, True)
    assert results[1].subtest == "sub" and results[1].note == "it broke"
    assert results[1].files_dir == f"{tmp_path}/files/p1/b/sub"
    assert results[-1].platform == "p2"
    assert [r.test for r in results[1:]] == ["/b", "/c"]
    with pytest.raises(IndexError):
        results[3]
    assert results.passed is False
    assert results.damaged == 0
    assert repr(results).endswith(": 3 results>")


def test_passed_and_earlier_attempts(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", [LINES[0], LINES[2]])
    (tmp_path / "old").mkdir()
    write_jsonl(tmp_path / "old" / "results.jsonl", [["p1", "fail", "/a", None, [], "flaky"]])
    results = atex.report.load(tmp_path / "r.jsonl")
    assert results.passed is True  # earlier attempts do not count
    assert len(results) == 3
    old = [r for r in results if not r.final]
    assert len(old) == 1 and old[0].note == "flaky" and old[0].attempt == 1
    assert [r.test for r in results.final()] == ["/a", "/c"]


def test_damaged_lines(tmp_path, atex_log):
    (tmp_path / "r.jsonl").write_text(json.dumps(LINES[0]) + "\nnot a result\n")
    results = atex.report.load(tmp_path / "r.jsonl")
    assert results.damaged == 1
    bad = [r for r in results if r.platform == "(damaged)"]
    assert len(bad) == 1 and bad[0].status == "error"
    assert bad[0].test.endswith("r.jsonl:2")
    atex.report._atex.log_flush()
    assert any(r.levelno == logging.WARNING and r.name == "atex.report"
               and "r.jsonl" in r.getMessage() for r in atex_log.records)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        atex.report.load(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="without results.jsonl"):
        atex.report.load(tmp_path)
    (tmp_path / "x.sqlite").write_text("hello\n")
    with pytest.raises(ValueError, match="x.sqlite: not a results database"):
        atex.report.load(tmp_path / "x.sqlite")
    with pytest.raises(TypeError):
        atex.report.load(None)


def test_sqlite_load(tmp_path):
    agg = SQLiteAggregator(tmp_path / "r.sqlite")
    earlier = agg.earlier()
    art = tmp_path / "art"
    art.mkdir()
    with agg:
        (art / "results").write_text('{"status": "fail"}\n')
        earlier.ingest("p", "/t", art)
        (art / "results").write_text('{"status": "pass"}\n')
        agg.ingest("p", "/t", art)
    results = atex.report.load(tmp_path / "r.sqlite")
    got = sorted((r.status, r.attempt, r.final) for r in results)
    assert got == [("fail", 1, False), ("pass", 2, True)]
    assert results.passed is True


def test_writers(tmp_path, capfd):
    write_jsonl(tmp_path / "r.jsonl", LINES)
    results = atex.report.load(tmp_path / "r.jsonl")
    results.html(tmp_path / "report.html", title="Nightly <run>")
    html = (tmp_path / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "Nightly &lt;run&gt;" in html and "it broke" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    results.html(str(tmp_path / "untitled.html"))
    assert (tmp_path / "untitled.html").stat().st_size > 0

    results.junit(tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"p1", "p2"}
    failure = suites["p1"].find("testcase[@name='sub']/failure")
    assert failure is not None and "it broke" in failure.get("message", "") + (failure.text or "")
    assert suites["p2"].find("testcase/skipped") is not None

    results.summary()
    out = capfd.readouterr().out
    assert "p1" in out and "/b" in out and "it broke" in out
    with open(tmp_path / "summary.txt", "w") as f:
        results.summary(f)
    assert "it broke" in (tmp_path / "summary.txt").read_text()
    fd = os.open(tmp_path / "s2.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        results.summary(fd)
    finally:
        os.close(fd)
    assert "it broke" in (tmp_path / "s2.txt").read_text()

    with pytest.raises(OSError):
        results.junit(tmp_path / "no" / "such" / "dir.xml")


def test_render_from_threads(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", LINES * 50)
    results = atex.report.load(tmp_path / "r.jsonl")
    errors = []

    def worker(k):
        try:
            for i in range(5):
                results.html(tmp_path / f"r{k}-{i}.html")
                results.junit(tmp_path / f"r{k}-{i}.xml")
                assert len(results) == 150
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(tmp_path.glob("r*-*.xml"))) == 40


def test_leaks_load(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", LINES)
    path = str(tmp_path / "r.jsonl")

    def one():
        results = atex.report.load(path)
        assert len(results) == 3 and results[1].note == "it broke"
        list(results)

    for _ in range(200):
        one()
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10000):
        one()
    heap = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    assert heap < 64 * 1024, heap
    assert rss < 8 * 1024, rss


def test_null_status_from_aggregator(tmp_path):
    # The JSON Lines aggregator writes Python ATEX's null status; the
    # report reads it as an error (a result without status).
    from atex.aggregator.jsonl import JSONLinesAggregator

    art = tmp_path / "art"
    art.mkdir()
    (art / "results").write_text('{"name": "s"}\n')
    with JSONLinesAggregator(tmp_path / "r.jsonl", tmp_path / "files") as agg:
        agg.ingest("p", "/t", art)
    results = atex.report.load(tmp_path / "r.jsonl")
    assert results.damaged == 0
    assert [(r.status, r.subtest) for r in results] == [("error", "s")]
    assert results.passed is False


# ---- QA findings (issue 12, fix-agg) ----------------------------------------


def test_negative_index_bounds(tmp_path):
    write_jsonl(tmp_path / "r.jsonl", LINES * 500)
    results = atex.report.load(tmp_path / "r.jsonl")
    n = len(results)
    assert n == 1500
    assert results[-1] == results[n - 1]
    assert results[-n] == results[0]
    for bad in (-n - 1, -2 * n, -2 * n - 1, n, 2 * n):
        with pytest.raises(IndexError, match=str(bad)):
            results[bad]
    assert results[-2:] == [results[n - 2], results[n - 1]]
    with pytest.raises(TypeError):
        results["1"]


@pytest.mark.parametrize("content", [
    b"---\nplatform: p\nname: /a\nstatus: pass\n---\nplatform: p\nname: /b\n",
    b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
    bytes(range(256)) * 400,
])
def test_not_a_results_file(tmp_path, atex_log, content):
    path = tmp_path / "notresults"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"notresults: not a results file .*notresults:1:"):
        atex.report.load(path)
    atex.report._atex.log_flush()
    assert not [r for r in atex_log.records if r.levelno >= logging.WARNING]


def test_yaml_aggregator_output_is_not_results(tmp_path):
    from atex.aggregator.yamld import YAMLDocumentAggregator

    art = tmp_path / "art"
    art.mkdir()
    (art / "results").write_text('{"status": "pass"}\n')
    with YAMLDocumentAggregator(tmp_path / "out.yaml", tmp_path / "files") as agg:
        agg.ingest("p", "/t", art)
    with pytest.raises(ValueError, match="out.yaml: not a results file"):
        atex.report.load(tmp_path / "out.yaml")


def test_many_damaged_lines_few_warnings(tmp_path, atex_log):
    text = json.dumps(LINES[0]) + "\n" + "".join(f"junk {i}\n" for i in range(300))
    (tmp_path / "r.jsonl").write_text(text)
    results = atex.report.load(tmp_path / "r.jsonl")
    assert results.damaged == 300 and len(results) == 301
    atex.report._atex.log_flush()
    warnings = [r.getMessage() for r in atex_log.records
                if r.levelno == logging.WARNING and r.name == "atex.report"]
    assert len(warnings) == 11
    assert "290 more lines" in warnings[-1]


def test_nul_in_path(tmp_path):
    with pytest.raises(ValueError, match="path: embedded null byte"):
        atex.report.load("a\0b")
    write_jsonl(tmp_path / "r.jsonl", LINES)
    results = atex.report.load(tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="path: embedded null byte"):
        results.html(str(tmp_path / "x\0.html"))


def test_summary_to_any_writable(tmp_path, capsys, monkeypatch):
    write_jsonl(tmp_path / "r.jsonl", LINES)
    results = atex.report.load(tmp_path / "r.jsonl")
    buf = io.StringIO()
    results.summary(file=buf)
    assert "it broke" in buf.getvalue() and "p1" in buf.getvalue()

    class Writer:
        def __init__(self):
            self.parts = []

        def write(self, s):
            self.parts.append(s)

    w = Writer()
    results.summary(w)
    assert "it broke" in "".join(w.parts)
    # sys.stdout replaced by something without a descriptor
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    results.summary()
    assert "it broke" in sys.stdout.getvalue()
    with pytest.raises(TypeError, match="write"):
        results.summary(object())

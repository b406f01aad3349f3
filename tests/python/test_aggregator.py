"""atex.aggregator: the Aggregator ABC, the JSON Lines (plain, gzip, xz),
YAML, multi and SQLite aggregators, the bridge that lets libatex call an
aggregator written in Python, thread safety and leaks."""

import gzip
import json
import logging
import lzma
import os
import resource
import sqlite3
import threading
import time
import tracemalloc

import pytest
import yaml

from atex import _atex
from atex.aggregator import Aggregator, AggregatorError
from atex.aggregator.jsonl import (
    GzipJSONLinesAggregator,
    JSONLinesAggregator,
    LZMAJSONLinesAggregator,
)
from atex.aggregator.multi import MultiAggregator
from atex.aggregator.sqlite import SQLiteAggregator, SQLiteEarlierAggregator
from atex.aggregator.yamld import YAMLDocumentAggregator


def artifacts(base, results, files=None, name="art"):
    """An artifacts directory: `results` (dicts, or raw text) and files."""
    art = base / name
    art.mkdir()
    if isinstance(results, str):
        (art / "results").write_text(results)
    elif results is not None:
        (art / "results").write_text("".join(json.dumps(r) + "\n" for r in results))
    (art / "files").mkdir()
    for rel, data in (files or {}).items():
        (art / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (art / "files" / rel).write_bytes(data)
    return art


def lines(path, opener=open):
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f]


# ---- the ABC ----------------------------------------------------------------


def test_abc_is_abstract():
    with pytest.raises(TypeError):
        Aggregator()
    assert issubclass(AggregatorError, Exception)


def test_context_manager_stops_after_failed_start():
    calls = []

    class Failing(Aggregator):
        def start(self):
            calls.append("start")
            raise OSError("cannot open")

        def stop(self):
            calls.append("stop")

        def ingest(self, platform, test_name, artifacts):
            pass

    with pytest.raises(OSError, match="cannot open"):
        with Failing():
            pass
    assert calls == ["start", "stop"]


def test_lazy_submodules():
    import atex.aggregator

    assert {"jsonl", "yamld", "multi", "sqlite"} <= set(dir(atex.aggregator))
    assert atex.aggregator.jsonl.JSONLinesAggregator is JSONLinesAggregator
    with pytest.raises(AttributeError):
        atex.aggregator.nonexistent


# ---- JSON Lines -------------------------------------------------------------


def test_jsonl_lines(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    art = artifacts(tmp_path, [
        {"status": "fail", "name": "sub1", "note": "n1"},
        {"name": "nostatus"},
        {"status": "pass", "files": ["a.log", "sub/b.log"], "extra": 1},
    ], files={"a.log": b"a", "sub/b.log": b"\x00b"})
    with JSONLinesAggregator(target, files) as agg:
        assert agg.target == target and agg.files == files
        agg.ingest("platform1", "/test1", art)
    assert lines(target) == [
        ["platform1", "fail", "/test1", "sub1", [], "n1"],
        ["platform1", None, "/test1", "nostatus", [], None],
        ["platform1", "pass", "/test1", None, ["a.log", "sub/b.log"], None],
    ]
    assert (files / "platform1" / "test1" / "a.log").read_bytes() == b"a"
    assert (files / "platform1" / "test1" / "sub" / "b.log").read_bytes() == b"\x00b"
    # Destructive: results and the uploaded files are gone.
    assert not (art / "results").exists()
    assert not (art / "files").exists()


def test_jsonl_str_args_and_str_test_name(tmp_path):
    class Name:
        def __str__(self):
            return "/named"

    art = artifacts(tmp_path, [{"status": "pass"}])
    with JSONLinesAggregator(str(tmp_path / "o.jsonl"), str(tmp_path / "f")) as agg:
        agg.ingest("p", Name(), str(art))
    assert lines(tmp_path / "o.jsonl") == [["p", "pass", "/named", None, [], None]]


def test_jsonl_empty_results_and_no_files(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    art = artifacts(tmp_path, "")
    with JSONLinesAggregator(target, files) as agg:
        agg.ingest("p", "/t", art)
    assert target.read_text() == ""
    assert not (art / "results").exists()
    assert (art / "files").is_dir()  # empty: left, as Python ATEX does
    assert not (files / "p").exists()


def test_jsonl_start_refuses_existing_outputs(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    target.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="out.jsonl already exists"):
        JSONLinesAggregator(target, files).start()
    assert target.read_text() == "keep me\n"
    target.unlink()
    files.mkdir()
    with pytest.raises(FileExistsError, match="files already exists"):
        with JSONLinesAggregator(target, files):
            pass
    # A dangling symlink counts as existing, and is not followed.
    os.symlink(tmp_path / "nowhere", tmp_path / "link.jsonl")
    with pytest.raises(FileExistsError):
        JSONLinesAggregator(tmp_path / "link.jsonl", tmp_path / "f2").start()
    assert not (tmp_path / "nowhere").exists()


def test_jsonl_duplicates(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    with JSONLinesAggregator(target, files) as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass"}], name="a1"))
        with pytest.raises(AggregatorError, match="'/t' was already ingested once for 'p'"):
            agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "fail"}], name="a2"))
        # Another platform is another test.
        agg.ingest("q", "/t", artifacts(tmp_path, [{"status": "pass"}], name="a3"))
    assert [ln[0] for ln in lines(target)] == ["p", "q"]

    target2, files2 = tmp_path / "out2.jsonl", tmp_path / "files2"
    with JSONLinesAggregator(target2, files2, allow_duplicate=True) as agg:
        for i in range(3):
            agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass", "files": ["x"]}],
                                            files={"x": str(i).encode()}, name=f"b{i}"))
    assert [ln[2] for ln in lines(target2)] == ["/t", "/t (1)", "/t (2)"]
    assert (files2 / "p" / "t (2)" / "x").read_text() == "2"
    assert (files2 / "p" / "t" / "x").read_text() == "0"


def test_jsonl_bad_artifacts(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    with JSONLinesAggregator(target, files) as agg:
        art = tmp_path / "noresults"
        art.mkdir()
        with pytest.raises(FileNotFoundError, match="noresults/results does not exist"):
            agg.ingest("p", "/missing", art)
        bad = artifacts(tmp_path, '{"status": "pass"}\n{not json\n', name="bad")
        with pytest.raises(ValueError, match=r"bad/results:2:"):
            agg.ingest("p", "/bad", bad)
        assert (bad / "results").exists()  # nothing consumed on failure
        (files / "p" / "taken").mkdir(parents=True)
        with pytest.raises(FileExistsError, match="taken already exists"):
            agg.ingest("p", "/taken", artifacts(tmp_path, [{"status": "pass"}], name="t"))
        # Control characters are kept in the files directory's names.
        agg.ingest("p", "/c\x01d", artifacts(tmp_path, [{"status": "pass"}], {"x": b"x"},
                                             name="c"))
        assert (files / "p" / "c\x01d" / "x").exists()
        # libatex's names: a platform is one path component.
        with pytest.raises(ValueError, match="bad platform name"):
            agg.ingest("a/b", "/t", artifacts(tmp_path, [{"status": "pass"}], name="s"))
    assert [ln[2] for ln in lines(target)] == ["/c\x01d"]


def test_jsonl_ingest_before_start(tmp_path):
    agg = JSONLinesAggregator(tmp_path / "o.jsonl", tmp_path / "f")
    with pytest.raises(RuntimeError, match="before start"):
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass"}]))
    agg.stop()  # stopping a never started one is fine


def test_jsonl_str_and_logging(tmp_path, atex_log):
    agg = JSONLinesAggregator(tmp_path / "o.jsonl", tmp_path / "f")
    assert str(agg) == f"JSONLinesAggregator({tmp_path}/o.jsonl, {tmp_path}/f)"
    with agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass"}]))
    text = atex_log.text
    assert f"starting: {agg}" in text
    assert f"ingesting 'p' / '/t' from '{tmp_path}/art'" in text
    assert f"stopping: {agg}" in text
    assert all(r.name == "atex.aggregator.jsonl" for r in atex_log.records
               if "ing: " in r.getMessage())


def test_jsonl_threads(tmp_path):
    target, files = tmp_path / "out.jsonl", tmp_path / "files"
    n_threads, per = 8, 25
    errors = []

    def worker(k):
        try:
            for i in range(per):
                art = artifacts(tmp_path, [{"status": "pass", "name": f"s{j}"} for j in range(5)],
                                files={"f": b"x" * 100}, name=f"a{k}-{i}")
                agg.ingest("p", f"/t{k}/{i}", art)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    with JSONLinesAggregator(target, files) as agg:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    got = lines(target)
    assert len(got) == n_threads * per * 5
    # Each test's lines are together (one write per test).
    for i in range(0, len(got), 5):
        assert len({ln[2] for ln in got[i:i + 5]}) == 1
    assert len(list(files.glob("p/t*/*/f"))) == n_threads * per


# ---- compressed JSON Lines --------------------------------------------------

COMPRESSED = [
    (GzipJSONLinesAggregator, gzip.open, ".gz", "compress_level"),
    (LZMAJSONLinesAggregator, lzma.open, ".xz", "compress_preset"),
]


@pytest.mark.parametrize("cls, opener, suffix, level_kw", COMPRESSED)
def test_compressed_output_and_files(tmp_path, cls, opener, suffix, level_kw):
    target, files = tmp_path / f"o.jsonl{suffix}", tmp_path / "files"
    art = artifacts(tmp_path, [
        {"status": "pass", "files": ["d.bin", "keep.txt", "sub/e.bin", "never-uploaded"]},
        {"status": "info", "name": "s", "files": ["sub/keep.txt"]},
    ], files={"d.bin": b"\x00\x01", "keep.txt": b"plain", "sub/e.bin": b"e",
              "sub/keep.txt": b"plain2"})
    os.symlink("d.bin", art / "files" / "link")
    with cls(target, files, compress_files_exclude=["keep.txt"], **{level_kw: 1}) as agg:
        agg.ingest("p", "/t", art)
    got = lines(target, opener)
    assert got[0][4] == [f"d.bin{suffix}", "keep.txt", f"sub/e.bin{suffix}",
                         f"never-uploaded{suffix}"]
    assert got[1][4] == ["sub/keep.txt"]
    base = files / "p" / "t"
    with opener(base / f"d.bin{suffix}", "rb") as f:
        assert f.read() == b"\x00\x01"
    with opener(base / "sub" / f"e.bin{suffix}", "rb") as f:
        assert f.read() == b"e"
    assert (base / "keep.txt").read_bytes() == b"plain"
    assert (base / "sub" / "keep.txt").read_bytes() == b"plain2"
    assert os.readlink(base / "link") == "d.bin"  # symlinks kept as they are
    assert not (base / "d.bin").exists()


@pytest.mark.parametrize("cls, opener, suffix, level_kw", COMPRESSED)
def test_compressed_options(tmp_path, cls, opener, suffix, level_kw):
    # compress_files=False: verbatim; suffix "": compressed in place.
    with cls(tmp_path / "a.jsonl", tmp_path / "fa", compress_files=False) as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass", "files": ["x"]}],
                                        files={"x": b"raw"}, name="a"))
    assert (tmp_path / "fa" / "p" / "t" / "x").read_bytes() == b"raw"
    assert lines(tmp_path / "a.jsonl", opener)[0][4] == ["x"]
    with cls(tmp_path / "b.jsonl", tmp_path / "fb", compress_files_suffix="") as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass", "files": ["x"]}],
                                        files={"x": b"raw"}, name="b"))
    with opener(tmp_path / "fb" / "p" / "t" / "x", "rb") as f:
        assert f.read() == b"raw"
    assert lines(tmp_path / "b.jsonl", opener)[0][4] == ["x"]
    with pytest.raises(ValueError):
        cls(tmp_path / "c.jsonl", tmp_path / "fc", **{level_kw: 10})


def test_lzma_extreme_preset(tmp_path):
    target = tmp_path / "o.jsonl.xz"
    with LZMAJSONLinesAggregator(target, tmp_path / "f",
                                 compress_preset=6 | lzma.PRESET_EXTREME) as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass"}]))
    assert lines(target, lzma.open) == [["p", "pass", "/t", None, [], None]]


def test_gzip_readable_before_stop(tmp_path):
    # libatex flushes the stream after every test: readable mid-run.
    target = tmp_path / "o.jsonl.gz"
    with GzipJSONLinesAggregator(target, tmp_path / "f") as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass"}]))
        import zlib

        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert json.loads(d.decompress(target.read_bytes()))[2] == "/t"


# ---- YAML -------------------------------------------------------------------


def test_yamld(tmp_path):
    target, files = tmp_path / "o.yaml", tmp_path / "files"
    with YAMLDocumentAggregator(target, files) as agg:
        agg.ingest("p", "/t1", artifacts(tmp_path, [
            {"status": "fail", "name": "s1", "files": ["s1.log"]},
            {"status": "error", "files": ["a"], "note": "first"},
            {"status": "pass", "files": ["b"], "note": "last"},
            {"name": "s2", "note": "no status"},
        ], files={"a": b"A", "b": b"B"}, name="a1"))
        agg.ingest("p", "/t2", artifacts(tmp_path, [{}], name="a2"))
        with pytest.raises(AggregatorError):
            agg.ingest("p", "/t2", artifacts(tmp_path, [{}], name="a3"))
        with pytest.raises(FileNotFoundError):
            agg.ingest("p", "/t3", tmp_path / "a3" / "files")
    docs = list(yaml.safe_load_all(target.read_text()))
    assert docs == [
        {"platform": "p", "name": "/t1", "status": "pass", "files": ["a", "b"],
         "note": "last", "subtests": [
             {"name": "s1", "status": "fail", "files": ["s1.log"]},
             {"name": "s2", "note": "no status"}]},
        {"platform": "p", "name": "/t2"},
    ]
    assert list(docs[0]) == ["platform", "name", "status", "files", "note", "subtests"]
    assert target.read_text().startswith("---\n")
    assert (files / "p" / "t1" / "b").read_bytes() == b"B"
    assert not (files / "p" / "t2").exists()
    with pytest.raises(FileExistsError):
        YAMLDocumentAggregator(target, tmp_path / "other").start()


def test_yamld_strings_and_errors(tmp_path):
    # Strings YAML would read as something else stay strings; a malformed
    # results line is a ValueError and nothing of the test is written.
    target = tmp_path / "o.yaml"
    with YAMLDocumentAggregator(target, tmp_path / "f") as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, [
            {"status": "yes", "note": "1.5", "files": ["~", "null"]},
            {"name": "- x: y", "status": "true", "note": "two\nlines: # c"}], name="a"))
        bad = artifacts(tmp_path, '{"status": "pass"}\n[1, 2\n', name="b")
        with pytest.raises(ValueError, match="b/results:2"):
            agg.ingest("p", "/bad", bad)
        assert (bad / "results").exists()
    assert list(yaml.safe_load_all(target.read_text())) == [
        {"platform": "p", "name": "/t", "status": "yes", "files": ["~", "null"],
         "note": "1.5", "subtests": [
             {"name": "- x: y", "status": "true", "note": "two\nlines: # c"}]}]


def test_yamld_duplicates_allowed(tmp_path):
    target, files = tmp_path / "o.yaml", tmp_path / "files"
    with YAMLDocumentAggregator(target, files, allow_duplicate=True) as agg:
        for i in range(2):
            agg.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass", "files": ["x"]}],
                                            files={"x": b"x"}, name=f"a{i}"))
    assert [d["name"] for d in yaml.safe_load_all(target.read_text())] == ["/t", "/t (1)"]
    assert (files / "p" / "t (1)" / "x").exists()


# ---- multi ------------------------------------------------------------------


def test_multi(tmp_path, atex_log):
    with pytest.raises(ValueError):
        MultiAggregator([])
    j = JSONLinesAggregator(tmp_path / "o.jsonl", tmp_path / "f1")
    y = YAMLDocumentAggregator(tmp_path / "o.yaml", tmp_path / "f2")
    multi = MultiAggregator(iter([j, y]))
    assert str(multi) == f"MultiAggregator([{j}, {y}])"
    with multi:
        multi.ingest("p", "/t", artifacts(tmp_path, [{"status": "pass", "files": ["x"]}],
                                          files={"x": b"x"}))
        # A failing child: the copy is removed, the error propagates.
        bad = tmp_path / "bad"
        bad.mkdir()
        with pytest.raises(FileNotFoundError):
            multi.ingest("p", "/u", bad)
    assert lines(tmp_path / "o.jsonl") == [["p", "pass", "/t", None, ["x"], None]]
    assert next(yaml.safe_load_all((tmp_path / "o.yaml").read_text()))["files"] == ["x"]
    assert (tmp_path / "f1" / "p" / "t" / "x").exists()
    assert (tmp_path / "f2" / "p" / "t" / "x").exists()
    assert list(tmp_path.glob("atex-multi-*")) == []
    assert f"stopping: {multi}" in atex_log.text


def test_multi_stop_logs_failures(tmp_path, atex_log):
    class BadStop(JSONLinesAggregator):
        def stop(self):
            super().stop()
            raise RuntimeError("stop failed here")

    bad = BadStop(tmp_path / "b.jsonl", tmp_path / "bf")
    good = JSONLinesAggregator(tmp_path / "g.jsonl", tmp_path / "gf")
    multi = MultiAggregator([bad, good])
    multi.start()
    multi.stop()
    failed = [r for r in atex_log.records if r.getMessage() == f"failed to stop {bad}"]
    assert failed and failed[0].levelno == logging.ERROR
    assert "stop failed here" in atex_log.text
    assert f"stopping: {good}" in atex_log.text


# ---- SQLite -----------------------------------------------------------------


def test_sqlite(tmp_path):
    db = tmp_path / "r.sqlite"
    agg = SQLiteAggregator(db, tmp_path / "files")
    earlier = agg.earlier()
    assert isinstance(earlier, SQLiteEarlierAggregator)
    with agg:
        earlier.start()
        earlier.ingest("p", "/t", artifacts(tmp_path, [{"status": "fail"}], name="e"))
        art = artifacts(tmp_path, [{"status": "pass", "files": ["x"]}, {"status": "fail",
                                   "name": "s"}], files={"x": b"x"}, name="f")
        agg.ingest("p", "/t", art)
        earlier.stop()
    assert (art / "results").exists()  # libatex's: never consumed
    rows = sqlite3.connect(db).execute(
        "SELECT platform, status, test, subtest, files, attempt, final "
        "FROM results ORDER BY id").fetchall()
    assert rows == [("p", "fail", "/t", None, "[]", 1, 0),
                    ("p", "pass", "/t", None, '["x"]', 2, 1),
                    ("p", "fail", "/t", "s", "[]", 2, 1)]
    assert (tmp_path / "files" / "p" / "t" / "x").exists()
    with pytest.raises(TypeError):
        SQLiteEarlierAggregator(object())


# ---- the bridge: libatex calling Python ------------------------------------


class Recorder(Aggregator):
    def __init__(self, delay=0.0):
        self.calls = []
        self.active = 0
        self.max_active = 0
        self.delay = delay
        self.lock = threading.Lock()

    def start(self):
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")

    def ingest(self, platform, test_name, artifacts):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if test_name == "/raise":
                raise FileExistsError(f"already there: {artifacts}")
            if test_name == "/boom":
                raise RuntimeError("boom")
            time.sleep(self.delay)
            with self.lock:
                self.calls.append((platform, test_name, artifacts, threading.get_ident()))
        finally:
            with self.lock:
                self.active -= 1


def test_bridge_calls_python_from_c_threads():
    rec = Recorder(delay=0.05)
    items = [("p", f"/t{i}", f"/art/{i}") for i in range(16)]
    res = _atex.AggregatorDrive(rec, items, threads=8, start=True, stop=True)
    assert res["start"] == (0, None) and res["stop"] == (0, None)
    assert res["ingest"] == [(0, None)] * 16
    assert rec.calls[0] == "start" and rec.calls[-1] == "stop"
    got = sorted(c[:3] for c in rec.calls[1:-1])
    assert got == sorted(items)
    assert all(isinstance(c[2], str) for c in rec.calls[1:-1])
    # Taken from 8 C threads, the GIL only held per call.
    assert rec.max_active > 1
    assert len({c[3] for c in rec.calls[1:-1]}) > 1
    assert threading.get_ident() not in {c[3] for c in rec.calls[1:-1]}


# The second exception, with the first still kept, is reported as
# unraisable (shown, not lost): pytest turns that into a warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_bridge_exceptions_become_errors():
    rec = Recorder()
    res = _atex.AggregatorDrive(rec, [("p", "/raise", "/a"), ("p", "/boom", "/b"),
                                      ("p", "/ok", "/c")])
    (rc1, msg1), (rc2, msg2), ok = res["ingest"]
    assert rc1 == _atex.E_EXISTS
    assert msg1 == "Recorder.ingest() raised FileExistsError: already there: /a"
    assert rc2 != 0 and "raised RuntimeError: boom" in msg2
    assert ok == (0, None)
    # The first exception is kept, with its traceback, for the caller.
    exc = rec._atex_bridge.take_exception()
    assert isinstance(exc, FileExistsError) and exc.__traceback__ is not None
    assert rec._atex_bridge.take_exception() is None


def test_bridge_start_failure():
    class NoStart(Recorder):
        def start(self):
            raise ValueError("no way")

    res = _atex.AggregatorDrive(NoStart(), [("p", "/t", "/a")], start=True)
    assert res["start"] == (_atex.E_INVAL, "NoStart.start() raised ValueError: no way")


def test_bridge_or_native():
    # Built-ins with Python semantics (JSON Lines) go through the bridge;
    # the SQLite aggregator is libatex's own unless a method is overridden.
    assert SQLiteAggregator("/nonexistent/x.sqlite")._atex_native() is not None

    class Mine(SQLiteAggregator):
        def ingest(self, platform, test_name, artifacts):
            self.seen = test_name
            super().ingest(platform, test_name, artifacts)

    assert Mine("/nonexistent/y.sqlite")._atex_native() is None
    assert JSONLinesAggregator("/x", "/y")._atex_native() is None
    with pytest.raises(TypeError, match="not an aggregator"):
        _atex.AggregatorDrive(object(), [])


def test_bridge_overridden_builtin(tmp_path):
    class Mine(SQLiteAggregator):
        def ingest(self, platform, test_name, artifacts):
            self.seen = test_name
            super().ingest(platform, test_name, artifacts)

    agg = Mine(tmp_path / "r.sqlite")
    art = artifacts(tmp_path, [{"status": "pass"}])
    res = _atex.AggregatorDrive(agg, [("p", "/t", art)], start=True, stop=True)
    assert res["ingest"] == [(0, None)]
    assert agg.seen == "/t"
    assert sqlite3.connect(tmp_path / "r.sqlite").execute(
        "SELECT test FROM results").fetchall() == [("/t",)]


def test_jsonl_from_c_threads(tmp_path):
    agg = JSONLinesAggregator(tmp_path / "o.jsonl", tmp_path / "f")
    items = [("p", f"/t{i}", artifacts(tmp_path, [{"status": "pass"}], {"x": b"x"},
                                        name=f"a{i}")) for i in range(40)]
    res = _atex.AggregatorDrive(agg, items, threads=8, start=True, stop=True)
    assert res["ingest"] == [(0, None)] * 40
    assert sorted(ln[2] for ln in lines(tmp_path / "o.jsonl")) == sorted(i[1] for i in items)
    assert not any((i[2] / "results").exists() for i in items)


# ---- leaks ------------------------------------------------------------------


def _growth(fn, n):
    """Python heap and max RSS growth (KiB) over n calls after warming.
    Log records below WARNING are off meanwhile: pytest keeps every
    record it captures, which is not ours to measure."""
    logging.disable(logging.INFO)
    try:
        for i in range(200):
            fn(n + i)
        tracemalloc.start()
        heap0 = tracemalloc.get_traced_memory()[0]
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for i in range(n):
            fn(i)
        heap = tracemalloc.get_traced_memory()[0] - heap0
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    finally:
        logging.disable(logging.NOTSET)
    return heap, rss


def test_leaks_jsonl_ingest(tmp_path):
    art = tmp_path / "art"
    art.mkdir()
    results = art / "results"
    # allow_duplicate and one name: the seen-tests table keeps one entry,
    # so whatever grows is a leak (of the wrapper or of libatex).
    with JSONLinesAggregator(tmp_path / "o.jsonl", tmp_path / "f",
                             allow_duplicate=True) as agg:
        def one(i):
            results.write_text('{"status": "pass", "name": "s"}\n')
            agg.ingest("p", "/t", art)

        heap, rss = _growth(one, 10000)
    assert heap < 64 * 1024, heap
    assert rss < 8 * 1024, rss
    assert len(lines(tmp_path / "o.jsonl")) == 10200


def test_leaks_bridge_and_handles(tmp_path):
    rec = Recorder()
    rec.calls = None  # nothing recorded: measure the bridge only

    class Quiet(Aggregator):
        def start(self):
            pass

        def stop(self):
            pass

        def ingest(self, platform, test_name, artifacts):
            pass

    q = Quiet()
    heap, rss = _growth(
        lambda i: _atex.AggregatorDrive(q, [("p", "/t", "/a"), ("p", "/u", "/b")]), 10000)
    assert heap < 64 * 1024, heap
    assert rss < 8 * 1024, rss

    def handle(i):
        h = _atex.AggregatorJSONLines(tmp_path / "x.jsonl", tmp_path / "xf")
        h.close()
        SQLiteAggregator(tmp_path / "y.sqlite").earlier()

    heap, rss = _growth(handle, 10000)
    assert heap < 64 * 1024, heap
    assert rss < 8 * 1024, rss


def test_handle_options(tmp_path):
    # The low-level libatex aggregator: bad options are named.
    with pytest.raises(ValueError, match="unknown compress_files 7"):
        _atex.AggregatorJSONLines(tmp_path / "o.jsonl", compress_files=7)
    with pytest.raises(ValueError, match="level 10 out of range"):
        _atex.AggregatorJSONLines(tmp_path / "o.jsonl.gz", level=10)
    with pytest.raises(TypeError):
        _atex.AggregatorJSONLines(tmp_path / "o.jsonl", compress_files=1, files_exclude=5)
    h = _atex.AggregatorJSONLines(tmp_path / "o.jsonl", tmp_path / "f", attempt_dirs=True)
    h.start()
    art = artifacts(tmp_path, [{"status": "pass"}], {"x": b"x"})
    h.ingest("p", "/t", art)
    h.ingest("p", "/t", art)  # libatex's own: nothing consumed
    h.stop()
    h.close()
    h.close()
    with pytest.raises(ValueError, match="closed"):
        h.start()
    assert (tmp_path / "f" / "2" / "p" / "t" / "x").exists()
    assert len(lines(tmp_path / "o.jsonl")) == 2


def test_compressed_file_mode_kept(tmp_path):
    art = artifacts(tmp_path, [{"status": "pass", "files": ["run.sh"]}], {"run.sh": b"#!/bin/sh\n"})
    os.chmod(art / "files" / "run.sh", 0o750)
    with GzipJSONLinesAggregator(tmp_path / "o.jsonl.gz", tmp_path / "f") as agg:
        agg.ingest("p", "/t", art)
    assert (tmp_path / "f" / "p" / "t" / "run.sh.gz").stat().st_mode & 0o777 == 0o750


def test_stop_and_close_during_ingests(tmp_path):
    # stop() (which closes the libatex handle) while threads ingest: the
    # aggregator is freed by the last call out, never under one; ingests
    # that lose the race fail cleanly.
    agg = JSONLinesAggregator(tmp_path / "o.jsonl.gz", tmp_path / "f")
    agg.start()
    arts = [artifacts(tmp_path, [{"status": "pass", "name": f"s{j}"} for j in range(200)],
                      {"x": b"x" * 4096}, name=f"a{i}") for i in range(40)]
    outcomes = []

    def worker(k):
        for i in range(k, 40, 4):
            try:
                agg.ingest("p", f"/t{i}", arts[i])
                outcomes.append("ok")
            except (ValueError, RuntimeError):
                outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.01)
    agg.stop()
    for t in threads:
        t.join()
    assert len(outcomes) == 40
    handle = _atex.AggregatorJSONLines(tmp_path / "x.jsonl", tmp_path / "xf")
    handle.close()
    with pytest.raises(ValueError, match="closed"):
        handle.ingest("p", "/t", arts[0])

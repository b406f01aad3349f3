"""atex.aggregator.reportportal with the inputs a strict ReportPortal
refuses (issue 14, review 4): bytes that are not UTF-8 in output.txt,
file names with '"', line breaks or '\\', names over ReportPortal's
limits, subtests' codeRef, what goes inline. The fake server
(tests/integration/rp-server.py) enforces ReportPortal's limits and
matches multipart file names exactly."""

import pytest

from atex.aggregator.reportportal import (
    ReportPortalAggregator,
    ReportPortalAPI,
)
from test_reportportal import PROJECT, TOKEN, artifacts, server, state

assert server  # the fixture, imported for pytest


def logs_of(s, item):
    return [s["logs"][u] for u in item["logs"]]


@pytest.mark.parametrize("data", [
    b"x\xed\xa0\x80y\n",          # a surrogate (U+D800)
    b"x\xf4\x90\x80\x80y\n",      # above U+10FFFF
    b"x\xe0\x80\x80y\n",          # an overlong NUL
    b"x\xc0\xafy\xf0\x80\x80\x80z\n",
])
def test_not_utf8_inline(server, tmp_path, data):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="bytes") as agg:
        a = artifacts(tmp_path, "a", [
            {"status": "pass", "files": ["output.txt", "other.log"]}],
            {"output.txt": data, "other.log": b"other\n"})
        agg.ingest("p", "/t", a)
    s = state(server)
    (item,) = [i for i in s["items"].values() if i["name"] == "/t"]
    assert item["status"] == "PASSED"
    logs = logs_of(s, item)
    inline = [g["message"] for g in logs if "file" not in g]
    assert len(inline) == 1
    assert inline[0].startswith("x?") and inline[0].endswith("\n")
    assert all(ord(c) < 0x80 for c in inline[0])
    assert sorted(g["file"]["name"] for g in logs if "file" in g) == [
        "other.log", "output.txt"]


def test_random_bytes_inline(server, tmp_path):
    import random
    rnd = random.Random(14)
    data = bytes(rnd.randrange(256) for _ in range(20000))
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="random") as agg:
        a = artifacts(tmp_path, "a", [{"status": "pass",
                                       "files": ["output.txt"]}],
                      {"output.txt": data})
        agg.ingest("p", "/t", a)
    s = state(server)
    (item,) = [i for i in s["items"].values() if i["name"] == "/t"]
    assert item["status"] == "PASSED" and len(item["logs"]) == 2


def test_weird_file_names(server, tmp_path):
    names = ['we"ird.txt', "back\\slash.txt", "line\nbreak.txt",
             "cr\rname.txt"]
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="names") as agg:
        a = artifacts(tmp_path, "a", [{"status": "pass", "files": names}],
                      {n: n.encode() for n in names})
        agg.ingest("p", "/t", a)
    s = state(server)
    (item,) = [i for i in s["items"].values() if i["name"] == "/t"]
    assert item["status"] == "PASSED"
    got = {g["message"]: g["file"]["name"] for g in logs_of(s, item)
           if "file" in g}
    assert got == {'we"ird.txt': "we_ird.txt",
                   "back\\slash.txt": "back_slash.txt",
                   "line\nbreak.txt": "line_break.txt",
                   "cr\rname.txt": "cr_name.txt"}


def test_long_names_cut(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    long_launch = "L" * 299 + "\u00e9" * 10
    sub = "/" + "x" * 1100
    test = "/t/" + "\u20ac" * 400   # 1203 bytes
    with ReportPortalAggregator(api, launch_name=long_launch,
                                attributes=["k:" + "v" * 600]) as agg:
        a = artifacts(tmp_path, "a", [
            {"status": "pass", "name": sub},
            {"status": "pass"}])
        agg.ingest("p", test, a)
    s = state(server)
    (launch,) = s["launches"].values()
    assert len(launch["name"].encode()) <= 256
    assert launch["name"].startswith("LLL") and launch["name"].endswith(
        "\u2026")
    assert len(launch["attributes"][0]["value"]) <= 512
    steps = [i for i in s["items"].values() if i["type"] == "STEP"]
    assert sorted(i["status"] for i in steps) == ["PASSED", "PASSED"]
    (top,) = [i for i in steps if i["parent"] and
              s["items"][i["parent"]]["type"] == "SUITE"]
    assert len(top["name"].encode()) <= 1024
    assert top["name"].endswith("\u2026") and top["codeRef"] == test
    (child,) = [i for i in steps if i is not top]
    assert len(child["name"]) <= 1024
    assert child["name"].startswith("/xxx")
    assert child["codeRef"] == test + sub


def test_subtest_code_ref_and_inline(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="coderef") as agg:
        a = artifacts(tmp_path, "a", [
            {"status": "pass", "name": "/first", "files": ["output.txt"]},
            {"status": "pass", "files": ["output.txt", "data/output.txt"]}],
            {"first/output.txt": b"sub out\n", "output.txt": b"",
             "data/output.txt": b"data out\n"})
        agg.ingest("p", "/t", a)
        b = artifacts(tmp_path, "b", [
            {"status": "pass", "files": ["output.txt"]}],
            {"output.txt": b"own\n"})
        agg.ingest("p", "/u", b)
    s = state(server)
    items = {i["name"]: i for i in s["items"].values()}
    assert items["/first"]["codeRef"] == "/t/first"
    assert items["/t"]["codeRef"] == "/t"
    for name in ("/first", "/t"):
        assert [g for g in logs_of(s, items[name]) if "file" not in g] == []
    assert [g["message"] for g in logs_of(s, items["/u"])
            if "file" not in g] == ["own\n"]


def test_per_platform_launch_starts_with_the_run(server, tmp_path):
    import datetime
    import time

    def iso(t):
        return datetime.datetime.fromtimestamp(
            t, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"

    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="pp",
                                launch_per_platform=True) as agg:
        t0 = time.time()
        time.sleep(1.2)
        a = artifacts(tmp_path, "a", [{"status": "pass"}], {},
                      {"start": iso(t0 + 0.3), "end": iso(t0 + 0.8),
                       "duration": 0.5, "attempt": 1})
        agg.ingest("f42", "/t", a)
    s = state(server)
    (launch,) = s["launches"].values()
    (item,) = [i for i in s["items"].values() if i["name"] == "/t"]
    assert launch["startTime"] <= iso(t0 + 0.3)
    assert item["startTime"] == iso(t0 + 0.3)
    assert item["endTime"] == iso(t0 + 0.8)


def test_failure_names_the_attempt(server, tmp_path):
    from test_reportportal import fault
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    agg = ReportPortalAggregator(api, launch_name="att", retry_total=1)
    with agg:
        fault(server, kind="status", status=500, count=1000,
              match="^POST /api/v2/[^/]+/item/")
        a = artifacts(tmp_path, "a", [{"status": "pass"}], {},
                      {"attempt": 2})
        with pytest.raises(OSError, match=r"test /t on p \(attempt 2\)"):
            agg.ingest("p", "/t", a)


def test_blank_attribute_value_refused(server):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    for attr in ("k:", "k:  ", " "):
        with pytest.raises(ValueError, match="blank value"):
            ReportPortalAggregator(api, launch_name="x", attributes=[attr])

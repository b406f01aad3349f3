"""atex.aggregator.reportportal against the fake ReportPortal API
(tests/integration/rp-server.py on 127.0.0.1): the item tree, retries,
times from attempt.json, files, consumed artifacts, errors, threads."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from atex.aggregator.reportportal import (
    ReportPortalAggregator,
    ReportPortalAPI,
)

SERVER = Path(__file__).resolve().parent.parent / "integration" / "rp-server.py"
TOKEN = "py-token-0123456789"
PROJECT = "atex_personal"


@pytest.fixture
def server(tmp_path):
    d = tmp_path / "srv"
    env = dict(os.environ, RP_SERVER_TOKEN=TOKEN)
    p = subprocess.Popen([sys.executable, str(SERVER), "--dir", str(d),
                          "--token", "-", "--project", PROJECT], env=env,
                         stdin=subprocess.DEVNULL)
    for _ in range(100):
        if (d / "port").exists():
            break
        time.sleep(0.1)
    url = f"http://127.0.0.1:{(d / 'port').read_text()}"
    yield url
    p.terminate()
    p.wait()


def state(url):
    with urllib.request.urlopen(url + "/_control/state") as r:
        return json.load(r)


def fault(url, **f):
    req = urllib.request.Request(url + "/_control/fault",
                                 data=json.dumps(f).encode(), method="POST")
    urllib.request.urlopen(req).read()


def artifacts(tmp_path, name, results, files=None, attempt=None):
    d = tmp_path / name
    (d / "files").mkdir(parents=True)
    (d / "results").write_text("".join(json.dumps(r) + "\n" for r in results))
    for rel, data in (files or {}).items():
        (d / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / "files" / rel).write_bytes(data)
    if attempt:
        (d / "attempt.json").write_text(json.dumps(attempt))
    return d


def test_tree_retries_times_files(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    assert TOKEN not in repr(api) and TOKEN not in str(api)
    agg = ReportPortalAggregator(api, launch_name="py launch",
                                 attributes=["team:qe", "nightly"])
    old = agg.earlier()
    with agg:
        uuid = agg.launch_uuid
        assert uuid and len(uuid) == 36
        a1 = artifacts(tmp_path, "a1", [
            {"status": "fail", "name": "sub", "files": ["s.log"]},
            {"status": "fail", "note": "went wrong", "files": ["output.txt"]},
        ], {"sub/s.log": b"sub log\n", "output.txt": b"out\n"},
            {"start": "2099-01-01T00:00:01.000+00:00",
             "end": "2099-01-01T00:00:03.500+00:00", "duration": 2.5,
             "system": "local-1", "attempt": 1, "exit_code": 1})
        old.ingest("fedora", "/t/one", a1)
        assert not (a1 / "results").exists()  # consumed
        a2 = artifacts(tmp_path, "a2", [{"status": "pass"}])
        agg.ingest("fedora", "/t/one", a2)
        a3 = artifacts(tmp_path, "a3", [{"status": "infra"}])
        agg.ingest("fedora", "/t/two", a3)
    s = state(server)
    launch = s["launches"][uuid]
    assert launch["name"] == "py launch" and launch["status"] == "FAILED"
    assert {"key": "team", "value": "qe"} in launch["attributes"]
    items = list(s["items"].values())
    suite = [i for i in items if i["type"] == "SUITE"]
    assert [i["name"] for i in suite] == ["fedora"]
    ones = [i for i in items if i["name"] == "/t/one"]
    assert [(i["status"], i["retry"]) for i in ones] == [
        ("FAILED", False), ("PASSED", True)]
    assert ones[1]["retryOf"] == ones[0]["uuid"]
    assert ones[0]["description"] == "went wrong"
    assert ones[0]["startTime"] == "2099-01-01T00:00:01.000+00:00"
    assert ones[0]["endTime"] == "2099-01-01T00:00:03.500+00:00"
    sub = [i for i in items if i["parent"] == ones[0]["uuid"]]
    assert [(i["name"], i["status"], i["hasStats"]) for i in sub] == [
        ("sub", "FAILED", False)]
    two = [i for i in items if i["name"] == "/t/two"]
    assert [i["status"] for i in two] == ["INTERRUPTED"]
    logs = s["logs"]
    files = {logs[u]["message"]: Path(logs[u]["file"]["path"]).read_bytes()
             for i in items for u in i["logs"] if "file" in logs[u]}
    assert files == {"s.log": b"sub log\n", "output.txt": b"out\n"}
    inline = [logs[u]["message"] for u in ones[0]["logs"]
              if "file" not in logs[u]]
    assert inline == ["out\n"]


def test_join_subtest_and_faults(server, tmp_path):
    fault(server, kind="drop_after", match="^POST /api/v2/[^/]+/item/")
    fault(server, kind="status", status=503, match="^PUT /api/v2/[^/]+/item/")
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="joined",
                                join_subtest="::") as agg:
        a = artifacts(tmp_path, "a", [
            {"status": "pass", "name": "x"}, {"status": "pass"}])
        agg.ingest("p", "/t", a)
    s = state(server)
    names = sorted(i["name"] for i in s["items"].values())
    assert names == ["/t", "/t::x", "p"]
    assert s["repeats"] >= 1


def test_threads(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="threads") as agg:
        dirs = [artifacts(tmp_path, f"a{i}", [{"status": "pass"}])
                for i in range(12)]
        ts = [threading.Thread(target=agg.ingest, args=("p", f"/t{i}", d))
              for i, d in enumerate(dirs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    s = state(server)
    assert sum(1 for i in s["items"].values() if i["type"] == "SUITE") == 1
    assert sum(1 for i in s["items"].values() if i["type"] == "STEP") == 12


def test_errors(server, tmp_path, monkeypatch):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with pytest.raises(ValueError):
        ReportPortalAggregator(api)
    with pytest.raises(ValueError):
        ReportPortalAggregator(api, launch_name="a", launch_rerun="b")
    with pytest.raises(NotImplementedError):
        ReportPortalAPI(server, PROJECT, TOKEN, ssl_verify=False)
    bad = ReportPortalAggregator(ReportPortalAPI(server, PROJECT, "nope"),
                                 launch_name="x", retry_total=1)
    with pytest.raises(OSError, match="start launch.*HTTP 401"):
        bad.start()
    bad.stop()
    monkeypatch.delenv("ATEX_REPORTPORTAL_TOKEN", raising=False)
    monkeypatch.delenv("TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN", raising=False)
    with pytest.raises(ValueError, match="ATEX_REPORTPORTAL_TOKEN"):
        ReportPortalAggregator(ReportPortalAPI(server, PROJECT, None),
                               launch_name="x")
    monkeypatch.setenv("ATEX_REPORTPORTAL_TOKEN", TOKEN)
    agg = ReportPortalAggregator(ReportPortalAPI(server, PROJECT, None),
                                 launch_name="env", retry_total=1)
    with agg:
        with pytest.raises(FileNotFoundError):
            agg.ingest("p", "/t", tmp_path / "none")
        fault(server, kind="status", status=500, count=1000,
              match="^POST /api/v2/[^/]+/item/")
        a = artifacts(tmp_path, "a", [{"status": "pass"}])
        with pytest.raises(OSError, match=r"test /t on p.*POST .*/item/.*"
                           r"HTTP 500") as e:
            agg.ingest("p", "/t", a)
        assert TOKEN not in str(e.value)
        assert (a / "results").exists()  # not consumed


def test_launch_rerun(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="first") as agg:
        agg.ingest("p", "/t", artifacts(tmp_path, "a", [{"status": "fail"}]))
        uuid = agg.launch_uuid
    with ReportPortalAggregator(api, launch_rerun=uuid) as agg:
        assert agg.launch_uuid == uuid
        agg.ingest("p", "/t", artifacts(tmp_path, "b", [{"status": "pass"}]))
    s = state(server)
    assert list(s["launches"]) == [uuid]
    assert s["launches"][uuid]["reruns"] == 1
    assert s["launches"][uuid]["status"] == "PASSED" or \
        s["launches"][uuid]["status"] == "FAILED"
    assert sorted(i["status"] for i in s["items"].values()
                  if i["name"] == "/t") == ["FAILED", "PASSED"]


def test_launch_per_platform(server, tmp_path):
    api = ReportPortalAPI(server, PROJECT, TOKEN)
    with ReportPortalAggregator(api, launch_name="nightly",
                                launch_per_platform=True) as agg:
        assert agg.launch_uuid is None
        for n, p in enumerate(("f41", "f42", "f41")):
            agg.ingest(p, "/t", artifacts(tmp_path, f"a{n}",
                                          [{"status": "pass"}]))
    s = state(server)
    launches = {la["name"]: la for la in s["launches"].values()}
    assert sorted(launches) == ["nightly f41", "nightly f42"]
    assert all(la["status"] == "PASSED" and la["endTime"]
               for la in launches.values())
    for p, n in (("f41", 2), ("f42", 1)):
        uuid = launches["nightly " + p]["uuid"]
        mine = [i for i in s["items"].values() if i["launchUuid"] == uuid]
        assert sorted((i["type"], i["name"]) for i in mine) == sorted(
            [("SUITE", p)] + [("STEP", "/t")] * n)
        assert [i["retry"] for i in mine if i["type"] == "STEP"] == \
            [False, True][:n]
    with pytest.raises(ValueError, match="per platform"):
        ReportPortalAggregator(api, launch_rerun="0" * 8,
                               launch_per_platform=True)

#!/usr/bin/python3
"""rp-check.py STATE.json RESULTS_DIR LAUNCH_NAME TOKEN [join SEP]

Checks what the fake ReportPortal (rp-server.py) holds after `atex run
--reportportal` of integration/trees/cli-reportportal against the run's
local results; prints "ok ..." / "FAIL ..." lines, exits 1 on a failure.
"""

import glob
import hashlib
import json
import os
import sys

state_path, results, launch_name, token = sys.argv[1:5]
join = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "join" else None
state = json.load(open(state_path))
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


launches = [la for la in state["launches"].values()
            if la["name"] == launch_name]
check(len(launches) == 1, f"one launch named {launch_name!r} "
      f"({len(launches)})")
if not launches:
    sys.exit(1)
launch = launches[0]
check(launch["status"] != "IN_PROGRESS" and launch["endTime"],
      "the launch is finished")
items = {u: i for u, i in state["items"].items()
         if i["launchUuid"] == launch["uuid"]}
check(all(i["status"] != "IN_PROGRESS" and i["endTime"]
          for i in items.values()) and state["forced"] == 0,
      "every item is finished, by atex")
suites = [i for i in items.values() if i["type"] == "SUITE"]
check([s["name"] for s in suites] == ["local"], "one suite, the platform")
suite = suites[0]["uuid"] if suites else None
tests = [i for i in items.values() if i["parent"] == suite]


def attempts(name):
    """The items of a test in posting order: the retry chain."""
    mine = [i for i in tests if i["name"] == name]
    first = [i for i in mine if not i["retryOf"]]
    chain = first[:1]
    while chain and chain[-1].get("retryOf_next"):
        chain.append(items[chain[-1]["retryOf_next"]])
    return mine, chain


expect = {"/tests/pass": ["PASSED"], "/tests/fail": ["FAILED", "FAILED"],
          "/tests/flaky": ["FAILED", "PASSED"], "/tests/binary": ["PASSED"],
          "/tests/env": ["PASSED"]}
if join:
    for sub, st in (("first", "FAILED"), ("second", "PASSED")):
        expect["/tests/fail" + join + sub] = [st, st]
for name, statuses in expect.items():
    mine, chain = attempts(name)
    check(len(mine) == len(statuses) and
          [i["status"] for i in chain] == statuses,
          f"{name}: {len(statuses)} attempt(s), retries in order, statuses "
          f"{statuses} ({[i['status'] for i in chain]} of {len(mine)})")
    check(all(i["retry"] == (k > 0) and i["hasStats"] for k, i in
              enumerate(chain)), f"{name}: later attempts are retries of "
          "the earlier ones, all counted")
check(len(tests) == sum(len(v) for v in expect.values()),
      f"no other item under the suite ({len(tests)})")

# Subtests: nested steps without statistics, or (join) items of their own.
fails = attempts("/tests/fail")[1]
if not join:
    for f in fails:
        kids = sorted((i["name"], i["status"], i["hasStats"])
                      for i in items.values() if i["parent"] == f["uuid"])
        check(kids == [("first", "FAILED", False),
                       ("second", "PASSED", False)],
              f"/tests/fail: subtests nested without statistics ({kids})")

# Descriptions: the notes of the local results (none here but the
# interrupted one); a test's item has the note of its own result.
lines = [json.loads(x) for x in open(os.path.join(results, "results.jsonl"))]
notes = {l[2]: l[5] for l in lines if l[3] is None}
for name in ("/tests/pass", "/tests/fail", "/tests/flaky"):
    last = attempts(name)[1][-1:]
    check(bool(last) and last[0]["description"] == notes.get(name),
          f"{name}: description is the note ({notes.get(name)!r})")

# Times: the attempts' own (attempt.json, as DIR/attempts.jsonl and
# DIR/old/attempts.jsonl hold them), in attempt order.
att = {}
for f in (os.path.join(results, "old", "attempts.jsonl"),
          os.path.join(results, "attempts.jsonl")):
    if os.path.exists(f):
        for x in open(f):
            a = json.loads(x)
            att.setdefault(a["test"], []).append(a)
for name in ("/tests/pass", "/tests/fail", "/tests/flaky"):
    chain = attempts(name)[1]
    want = [(a["start"], a["end"], a["system"]) for a in
            sorted(att.get(name, []), key=lambda a: a["attempt"])]
    got = [(i["startTime"], i["endTime"],
            {x["key"]: x["value"] for x in i["attributes"]}.get("system"))
           for i in chain]
    check(bool(want) and got == want,
          f"{name}: start, end and system of each attempt ({got} vs {want})")


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# Attachments: byte-equal to the local results' files, each exactly once.
def owner(item):
    if item["parent"] == suite:
        name = item["name"]
        if join and join in name and name.split(join, 1)[0] in expect:
            return tuple(name.split(join, 1))
        return name, None
    return items[item["parent"]]["name"], item["name"]


rp_files = []
inline = {}
levels = {}
for log in state["logs"].values():
    item = items.get(log["itemUuid"])
    if not item:
        continue
    test, sub = owner(item)
    rel = test.strip("/") + "/" + (sub.strip("/") + "/" if sub else "")
    if "file" in log:
        rp_files.append((rel + log["message"], sha(log["file"]["path"])))
        levels.setdefault(test, set()).add(log["level"])
    else:
        inline.setdefault(test, []).append(log["message"])
local_files = []
for base in [os.path.join(results, "files", "local")] + glob.glob(
        os.path.join(results, "old", "files", "*", "local")):
    for dirpath, _, names in os.walk(base):
        for n in names:
            p = os.path.join(dirpath, n)
            local_files.append((os.path.relpath(p, base), sha(p)))
check(sorted(rp_files) == sorted(local_files),
      f"attachments: every local file once, byte-equal ({len(rp_files)} "
      f"uploaded, {len(local_files)} local)")
if sorted(rp_files) != sorted(local_files):
    print("     rp only:", sorted(set(rp_files) - set(local_files)))
    print("     local only:", sorted(set(local_files) - set(rp_files)))
check(inline.get("/tests/pass") == ["fine\n"], "output.txt also inline")
check(inline.get("/tests/binary") == ["caf? ??? end\n"],
      f"bytes that are not UTF-8 inline as '?' ({inline.get('/tests/binary')})")
check(levels.get("/tests/fail") == {"ERROR"} and
      levels.get("/tests/pass") == {"INFO"},
      "levels: ERROR for failures, INFO otherwise")
check(token not in json.dumps(state) and
      not any(token.encode() in open(l["file"]["path"], "rb").read()
              for l in state["logs"].values() if "file" in l),
      "the token is in nothing uploaded (the env test's output included)")
sys.exit(1 if failures else 0)

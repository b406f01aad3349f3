#!/bin/bash
# cli-timings.sh ATEX: issue 14's timings and provenance through `atex run
# --local 2 --reruns 1` on a tree made here (tests that sleep 0.2-0.5 s,
# one failing once, one failing always): every timing column of
# results.sqlite, its run table, attempts.jsonl, old/attempts.jsonl and
# run.json (while the run goes on and after it), checked with Debian's
# python3 (sqlite3, json). Twice: the tree outside git (git_commit null),
# then as a git repository made here (its HEAD).
set -u
atex=$1
py=/usr/bin/python3
work=$(mktemp -d /tmp/atex-cli-timings.XXXXXX)
failures=0
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
trap 'rm -rf "$work"' EXIT

fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
# /fast copies run.json while the run goes on (RUNJSON, SNAP: --env).
cat >"$tree/main.fmf" <<'EOF'
/fast:
  test: sleep 0.2; cp "$RUNJSON" "$SNAP"
/slow:
  test: sleep 0.5
/flaky:
  test: sleep 0.3; [ "$ATEX_TEST_ATTEMPT" -ge 2 ] || exit 3
/fails:
  test: sleep 0.2; exit 1
EOF

version=$("$atex" --version | awk '{print $2}')

# check.py OUT COMMIT(or "null") SNAP
cat >"$work/check.py" <<'EOF'
import datetime, json, re, sqlite3, sys

out, commit, snap, tree, version = sys.argv[1:6]
commit = None if commit == "null" else commit
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")

def when(s):
    return datetime.datetime.fromisoformat(s)

SLEEP = {"/fast": 0.2, "/slow": 0.5, "/flaky": 0.3, "/fails": 0.2}
# test -> [(attempt, final, exit_code, status)]
WANT = {
    "/fast": [(1, 1, 0, "pass")],
    "/slow": [(1, 1, 0, "pass")],
    "/flaky": [(1, 0, 3, "error"), (2, 1, 0, "pass")],  # exit 3: error
    "/fails": [(1, 0, 1, "fail"), (2, 1, 1, "fail")],
}

db = sqlite3.connect(out + "/results.sqlite")
db.row_factory = sqlite3.Row
rows = db.execute("SELECT * FROM results WHERE subtest IS NULL"
                  " ORDER BY test, attempt").fetchall()
got = {}
for r in rows:
    got.setdefault(r["test"], []).append(
        (r["attempt"], r["final"], r["exit_code"], r["status"]))
    for key in ("started", "ended"):
        check(r[key] is not None and ISO.match(r[key]),
              f"{r['test']} attempt {r['attempt']}: {key} {r[key]!r}")
    if r["started"] is None or r["ended"] is None:
        continue
    wall = (when(r["ended"]) - when(r["started"])).total_seconds()
    check(when(r["started"]) < when(r["ended"]),
          f"{r['test']}: start {r['started']} not before end {r['ended']}")
    check(isinstance(r["duration"], float), f"{r['test']}: duration type")
    check(r["duration"] >= SLEEP[r["test"]],
          f"{r['test']}: duration {r['duration']} < sleep")
    check(r["duration"] < SLEEP[r["test"]] + 10,
          f"{r['test']}: duration {r['duration']} implausible")
    check(abs(r["duration"] - wall) < 0.05,
          f"{r['test']}: duration {r['duration']} vs wall clock {wall}")
    check(round(r["duration"], 3) == r["duration"],
          f"{r['test']}: duration {r['duration']} not in ms")
    check(r["system"] in ("local:1", "local:2"),
          f"{r['test']}: system {r['system']!r}")
check(got == WANT, f"attempts {got} != {WANT}")

run = db.execute("SELECT * FROM run").fetchall()
check(len(run) == 1, f"{len(run)} run rows")
run = run[0]
first = db.execute("SELECT MIN(started), MAX(ended),"
                   " COUNT(DISTINCT system) FROM results").fetchone()
check(ISO.match(run["started"]) and ISO.match(run["ended"] or ""),
      f"run times {run['started']} {run['ended']}")
check(run["started"] <= first[0] and run["ended"] >= first[1],
      f"run {run['started']}..{run['ended']} vs results {first[0]}..{first[1]}")
check(run["first_test"] == first[0], f"first_test {run['first_test']}")
check(run["systems"] == first[2] and run["systems"] in (1, 2),
      f"systems {run['systems']}")
check((run["atex_version"], run["platform"], run["provisioner"], run["tree"],
       run["git_commit"]) == (version, "local", "local", tree, commit),
      f"run row {tuple(run)}")
check(json.loads(run["context"]) == {"distro": "fedora-41"},
      f"context {run['context']}")

# The sidecars: one line per ingest, the contract's keys in order, the
# same values as the database.
KEYS = ["platform", "test", "attempt", "final", "start", "end", "duration",
        "system", "exit_code"]
for path, final in ((out + "/attempts.jsonl", True),
                    (out + "/old/attempts.jsonl", False)):
    lines = [json.loads(l) for l in open(path)]
    want = sum(1 for r in rows if bool(r["final"]) == final)
    check(len(lines) == want, f"{path}: {len(lines)} lines, want {want}")
    for l in lines:
        check(list(l) == KEYS, f"{path}: keys {list(l)}")
        check(l["final"] is final, f"{path}: final {l['final']}")
        r = db.execute("SELECT * FROM results WHERE subtest IS NULL AND"
                       " test = ? AND attempt = ?",
                       (l["test"], l["attempt"])).fetchone()
        check(r is not None and (l["platform"], l["start"], l["end"],
                                 l["duration"], l["system"],
                                 l["exit_code"]) ==
              (r["platform"], r["started"], r["ended"], r["duration"],
               r["system"], r["exit_code"]), f"{path}: {l} vs {tuple(r)}")
# results.jsonl keeps Python ATEX's six fields.
for l in open(out + "/results.jsonl"):
    check(len(json.loads(l)) == 6, f"results.jsonl line {l!r}")

info = json.load(open(out + "/run.json"))
check(list(info) == ["started", "ended", "atex_version", "platform",
                     "provisioner", "tree", "git_commit", "context",
                     "systems", "history"], f"run.json keys {list(info)}")
check(ISO.match(info["started"]) and ISO.match(info["ended"] or "")
      and info["started"] <= first[0] <= first[1] <= info["ended"],
      f"run.json times {info['started']} {info['ended']}")
check((info["atex_version"], info["platform"], info["provisioner"],
       info["tree"], info["git_commit"], info["context"], info["systems"],
       info["history"]) ==
      (version, "local", "local", tree, commit, {"distro": "fedora-41"},
       run["systems"], None), f"run.json {info}")
# One run, one start and one end: run.json and the `run` table agree.
check((info["started"], info["ended"]) == (run["started"], run["ended"]),
      f"run.json {info['started']}..{info['ended']} vs run table "
      f"{run['started']}..{run['ended']}")
# Written at the start too: what /fast saw while running.
during = json.load(open(snap))
check(during["ended"] is None and during["systems"] is None
      and during["started"] == info["started"]
      and during["git_commit"] == commit, f"run.json during the run {during}")

for p in problems:
    print("FAIL", p)
sys.exit(1 if problems else 0)
EOF

# run NAME COMMIT: one run and its checks.
run() {
	local out=$work/$1 rc
	"$atex" run --local 2 --reruns 1 --context distro=fedora-41 \
		--env "RUNJSON=$out/run.json" --env "SNAP=$work/snap-$1.json" \
		--results "$out" "$tree" >"$work/$1.log" 2>&1
	rc=$?
	[ "$rc" = 1 ] || fail "$1: exit status $rc, want 1 (/fails fails)"
	if "$py" "$work/check.py" "$out" "$2" "$work/snap-$1.json" "$tree" \
		"$version"; then
		echo "ok   $1: timings, run table, sidecars, run.json"
	else
		fail "$1: see above"
		cat "$work/$1.log"
	fi
}

run plain null

# The tree as a git repository of its own.
git -C "$tree" init -q &&
	git -C "$tree" add -A &&
	git -C "$tree" -c user.name=t -c user.email=t@localhost \
		commit -qm tree || fail "git: cannot make the repository"
run git "$(git -C "$tree" rev-parse HEAD)"

# A canceled attempt is timed too: Ctrl-C while /long runs; run.json gets
# its end all the same.
long=$work/long
mkdir -p "$long/.fmf"
echo 1 >"$long/.fmf/version"
cat >"$long/main.fmf" <<'EOF2'
/long:
  test: touch "$SNAP"; sleep 30
EOF2
out=$work/canceled
"$atex" run --local 1 --env "SNAP=$work/long-started" --results "$out" \
	"$long" >"$work/canceled.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -e "$work/long-started" ] && break
	sleep 0.1
done
sleep 0.3
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] || fail "canceled: exit status $rc, want 130"
if "$py" - "$out" <<'EOF2'; then
import json, sqlite3, sys
out = sys.argv[1]
db = sqlite3.connect(out + "/results.sqlite")
rows = db.execute("SELECT test, started, ended, duration, system, attempt,"
                  " exit_code FROM results WHERE subtest IS NULL").fetchall()
assert len(rows) == 1, rows
test, started, ended, duration, system, attempt, exit_code = rows[0]
assert test == "/long" and started < ended and system == "local:1", rows
assert attempt == 1 and exit_code is None, rows
assert 0.3 <= duration < 25, rows
(line,) = [json.loads(l) for l in open(out + "/attempts.jsonl")]
assert line["duration"] == duration and line["exit_code"] is None, line
info = json.load(open(out + "/run.json"))
assert info["ended"] is not None and info["ended"] >= ended, info
assert info["systems"] == 1, info
EOF2
	echo "ok   canceled attempt timed, run.json ended"
else
	fail "canceled: see above"
	cat "$work/canceled.log"
fi

[ "$failures" = 0 ] || exit 1
echo "all ok"

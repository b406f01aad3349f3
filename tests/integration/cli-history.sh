#!/bin/bash
# cli-history.sh ATEX: `atex run --history` end to end on --local 2. A
# first run of six sleeping tests in fmf order records their times; a
# second run with --history of the first starts the two tests the history
# has never seen first (longest declared duration first), then the
# measured ones longest first; the order is read back from the second
# run's attempts (results.sqlite's `started`). Bad --history paths are
# usage errors (exit 2) that name the path.
set -u
atex=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/atex-cli-history.XXXXXX")
failures=0
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
py=/usr/bin/python3

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}
trap 'rm -rf "$work"' EXIT

tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
# fmf order (by name) is not the order of the times.
cat >"$tree/main.fmf" <<'YAML'
/plan:
    discover:
        how: fmf
    execute:
        how: tmt
/a:
    test: sleep 0.1
/b:
    test: sleep 1.0
/c:
    test: sleep 0.25
/d:
    test: sleep 1.4
/e:
    test: sleep 0.6
/f:
    test: sleep 0.4
/new-1:
    test: sleep 0.05
    duration: 1m
/new-2:
    test: sleep 0.05
    duration: 2m
YAML

# The tests in the order they started (their attempts' `started`).
start_order() {
	"$py" - "$1" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT test FROM results WHERE subtest IS NULL ORDER BY started")
print(" ".join(r[0] for r in rows))
PY
}

# The tests of a first run, longest measured first: the order the history
# of that run gives them (each has one attempt, its median). The sleeps
# are apart, but under load a test's overhead can outweigh the gap
# between two of them: what the policy must follow is what was measured.
# With several databases, a test's time is the median of its attempts in
# all of them. ONLY: a regex the tests must match.
measured_order() {
	"$py" - "$@" <<'PY'
import re, sqlite3, statistics, sys
only = re.compile(sys.argv[1][len("--only="):]) if sys.argv[1].startswith("--only=") else None
times = {}
for db in sys.argv[2 if only else 1:]:
    for test, d in sqlite3.connect(db).execute(
            "SELECT test, duration FROM results WHERE subtest IS NULL"):
        if not only or only.search(test):
            times.setdefault(test, []).append(d)
order = sorted(times, key=lambda t: -statistics.median(times[t]))
print(" ".join(order))
PY
}

# near_order ACTUAL EXPECTED: each test at most one place from where it
# is expected (two systems pick one after the other, but the one that
# picked second may start its test first).
near_order() {
	"$py" - "$1" "$2" <<'PY'
import sys
actual, expected = sys.argv[1].split(), sys.argv[2].split()
ok = sorted(actual) == sorted(expected) and all(
    abs(i - expected.index(t)) <= 1 for i, t in enumerate(actual))
sys.exit(0 if ok else 1)
PY
}

"$atex" run --local 2 --exclude new --results "$work/r1" "$tree" \
	>"$work/r1.out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "first run" || fail "first run: exit $rc: $(tail -5 "$work/r1.out")"

"$atex" run --local 2 --history "$work/r1" --results "$work/r2" "$tree" \
	>"$work/r2.out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "second run" || fail "second run: exit $rc: $(tail -5 "$work/r2.out")"
order=$(start_order "$work/r2/results.sqlite")
measured=$(measured_order "$work/r1/results.sqlite")
expected="/new-2 /new-1 $measured"
near_order "$order" "$expected" && pass "history order: $order" ||
	fail "history order: '$order', expected about '$expected'"
# The first run, in fmf order, is far from it.
order=$(start_order "$work/r1/results.sqlite")
near_order "$order" "$measured" &&
	fail "the first run (fmf order) is in history order: $order"
grep -q "history of 6 tests" "$work/r2.out" && pass "history announced" ||
	fail "no 'history of 6 tests' in: $(head -3 "$work/r2.out")"
# run.json records the history it scheduled from (absolute paths).
got=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["history"])' \
	"$work/r2/run.json")
[ "$got" = "['$work/r1']" ] && pass "run.json history" ||
	fail "run.json history: $got"

# A results folder without results.sqlite: results.jsonl + attempts.jsonl
# (and old/) give the same order.
mkdir "$work/r1-jsonl"
cp -r "$work/r1/results.jsonl" "$work/r1/attempts.jsonl" "$work/r1/old" \
	"$work/r1-jsonl/"
"$atex" run --local 1 --history "$work/r1-jsonl" --test '^/[a-f]$' \
	--results "$work/r6" "$tree" >"$work/r6.out" 2>&1
order=$(start_order "$work/r6/results.sqlite")
[ "$order" = "$measured" ] && pass "history from JSON Lines" ||
	fail "history from JSON Lines: '$order' ($(tail -3 "$work/r6.out"))"

# On a terminal the progress line's estimate comes from the history from
# the start: ~4.75 s of tests (two never seen, taken as the typical
# measured time) over 2 systems; without history it is "?" until a test
# ends.
if command -v script >/dev/null; then
	script -qec "'$atex' run --local 2 --history '$work/r1' \
		--results '$work/r5' '$tree'" /dev/null 2>&1 |
		tr '\r' '\n' >"$work/r5.out"
	first=$(grep -a -m1 -o '[0-9?~]*s\? left' "$work/r5.out")
	case $first in
	# (~2-3 s on a quiet machine; slow tests under load measure longer)
	"~"[1-9]"s left" | "~"[1-9][0-9]"s left")
		pass "estimate from history: $first" ;;
	*) fail "estimate from history: '$first', expected ~2s or so" ;;
	esac
fi

# --order wins over the history's order: fmf order.
"$atex" run --local 1 --history "$work/r1" --order fmf --test '^/[a-c]$' \
	--results "$work/r3" "$tree" >"$work/r3.out" 2>&1
order=$(start_order "$work/r3/results.sqlite")
[ "$order" = "/a /b /c" ] && pass "--order fmf wins" ||
	fail "--order fmf with --history: '$order'"
# The database's folder and the database itself read the same; two
# histories at once.
"$atex" run --local 1 --history "$work/r1/results.sqlite" \
	--history "$work/r2" --test '^/[a-c]$' \
	--results "$work/r4" "$tree" >"$work/r4.out" 2>&1
order=$(start_order "$work/r4/results.sqlite")
expected=$(measured_order --only='^/[a-c]$' "$work/r1/results.sqlite" \
	"$work/r2/results.sqlite")
[ "$order" = "$expected" ] && pass "two histories" ||
	fail "two histories: '$order' ($(tail -3 "$work/r4.out"))"

# Bad paths: exit 2 before anything runs, the path named.
expect_usage() { # what path words...
	local what=$1 path=$2
	shift 2
	"$atex" run --local 1 --history "$path" --results "$work/bad" "$tree" \
		>"$work/bad.out" 2>&1
	rc=$?
	if [ $rc -ne 2 ]; then
		fail "$what: exit $rc, expected 2"
		return
	fi
	for w in "$path" "$@"; do
		if ! grep -qF -- "$w" "$work/bad.out"; then
			fail "$what: '$w' not in: $(cat "$work/bad.out")"
			return
		fi
	done
	[ -e "$work/bad/results.jsonl" ] && fail "$what: the run started" ||
		pass "$what: $(head -1 "$work/bad.out")"
}
expect_usage "missing path" "$work/no-such-dir" "No such file"
mkdir "$work/empty"
expect_usage "empty folder" "$work/empty" "not a results folder"
echo "not a database, just text" >"$work/text.sqlite"
expect_usage "not a database" "$work/text.sqlite" "not a results database"
"$py" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, attempt INTEGER NOT NULL, final INTEGER NOT NULL)")
db.commit()' "$work/old.sqlite"
expect_usage "database from before timings" "$work/old.sqlite" "before timings"
"$atex" run --local 1 --order history --results "$work/bad" "$tree" \
	>"$work/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "needs --history" "$work/bad.out" &&
	pass "--order history without --history" ||
	fail "--order history without --history: exit $rc: $(cat "$work/bad.out")"

[ $failures -eq 0 ] || {
	echo "$failures failures"
	exit 1
}
echo "all passed"

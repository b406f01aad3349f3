#!/bin/bash
# cli-history-hardening.sh ATEX: `atex run --history` on odd histories
# (issue 14's black-box findings): a FIFO (as the path or inside a folder)
# is refused at once, not waited on; a --results DIR holding a --history
# is refused before anything is removed; a canceled run's short infra
# attempt does not make a long test look short; a history without
# durations is warned about; the estimate follows an explicit --order; a
# locked database is said to be locked; the same history twice is read
# once. Histories are databases made here (PROTOCOL.md 6 and 8).
set -u
atex=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/atex-cli-history-hardening.XXXXXX")
failures=0
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
py=/usr/bin/python3
lock_pid=

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}
cleanup() {
	[ -n "$lock_pid" ] && kill "$lock_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
cat >"$tree/main.fmf" <<'YAML'
/plan:
    discover:
        how: fmf
    execute:
        how: tmt
/a:
    test: sleep 0.1
/b:
    test: sleep 0.3
/c:
    test: sleep 0.1
/d:
    test: sleep 0.3
/e:
    test: sleep 0.1
/f:
    test: sleep 0.3
YAML

# make_db PATH TEST:STATUS:DURATION... (DURATION "-": NULL)
make_db() {
	"$py" - "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT NOT NULL, status TEXT NOT NULL, test TEXT NOT NULL, subtest TEXT, note TEXT, files TEXT NOT NULL, ingested REAL NOT NULL, attempt INTEGER NOT NULL, final INTEGER NOT NULL, started TEXT, ended TEXT, duration REAL, system TEXT, exit_code INTEGER)")
for k, spec in enumerate(sys.argv[2:]):
    test, status, duration = spec.split(":")
    db.execute("INSERT INTO results(platform, status, test, files, ingested, attempt, final, started, duration) VALUES ('local', ?, ?, '[]', 0, 1, 1, ?, ?)",
               (status, test, "2026-12-01T00:00:%02d.000+00:00" % k,
                None if duration == "-" else float(duration)))
db.commit()
PY
}

start_order() {
	"$py" - "$1" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT test FROM results WHERE subtest IS NULL ORDER BY started")
print(" ".join(r[0] for r in rows))
PY
}

# expect_usage WHAT OUT WORDS...: exit 2 (in $rc) and every word in OUT.
expect_usage() {
	local what=$1 out=$2
	shift 2
	if [ "$rc" -ne 2 ]; then
		fail "$what: exit $rc, expected 2: $(tail -3 "$out")"
		return
	fi
	for w in "$@"; do
		if ! grep -qF -- "$w" "$out"; then
			fail "$what: '$w' not in: $(cat "$out")"
			return
		fi
	done
	pass "$what: $(grep -m1 -e "$1" -e history "$out")"
}

# 1. FIFOs: refused at once (timeout: the old code waited for ever).
mkfifo "$work/fifo"
timeout 30 "$atex" run --local 1 --history "$work/fifo" \
	--results "$work/o1" "$tree" >"$work/o1.out" 2>&1
rc=$?
expect_usage "a FIFO as history" "$work/o1.out" "$work/fifo" \
	"not a regular file"
mkdir "$work/fifo-db"
mkfifo "$work/fifo-db/results.sqlite"
timeout 30 "$atex" run --local 1 --history "$work/fifo-db" \
	--results "$work/o1" "$tree" >"$work/o1.out" 2>&1
rc=$?
expect_usage "a folder whose results.sqlite is a FIFO" "$work/o1.out" \
	"$work/fifo-db/results.sqlite" "not a regular file"
mkdir "$work/fifo-att"
echo '["local", "pass", "/a", null, [], null]' >"$work/fifo-att/results.jsonl"
mkfifo "$work/fifo-att/attempts.jsonl"
timeout 30 "$atex" run --local 1 --history "$work/fifo-att" \
	--results "$work/o1" "$tree" >"$work/o1.out" 2>&1
rc=$?
expect_usage "a folder whose attempts.jsonl is a FIFO" "$work/o1.out" \
	"$work/fifo-att/attempts.jsonl" "not a regular file"
# A symlink to a database is fine.
make_db "$work/h.sqlite" /a:pass:1 /b:pass:2
ln -s "$work/h.sqlite" "$work/link.sqlite"
"$atex" run --local 1 --history "$work/link.sqlite" --test '^/a$' \
	--results "$work/o2" "$tree" >"$work/o2.out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "a symlink to a database" ||
	fail "a symlink to a database: exit $rc: $(tail -3 "$work/o2.out")"

# 2. --results holding the history: refused, nothing removed.
mkdir -p "$work/R/old" "$work/R/files"
make_db "$work/R/results.sqlite" /a:pass:1 /b:pass:2
echo keep >"$work/R/old/marker"
sum=$(md5sum <"$work/R/results.sqlite")
ln -s "$work/R" "$work/R-link"
for pair in "R R" "R/results.sqlite R" "R R-link" "R/old R"; do
	set -- $pair
	"$atex" run --local 1 --history "$work/$1" --results "$work/$2" \
		"$tree" >"$work/o3.out" 2>&1
	rc=$?
	expect_usage "--history $1 --results $2" "$work/o3.out" \
		"--history $work/$1" "--results $work/$2"
done
[ "$(md5sum <"$work/R/results.sqlite")" = "$sum" ] &&
	[ -e "$work/R/old/marker" ] && pass "the history is intact" ||
	fail "the history was changed: $(ls "$work/R")"
# A results DIR inside the history folder is fine (nothing there goes).
"$atex" run --local 1 --history "$work/R" --test '^/a$' \
	--results "$work/R/next" "$tree" >"$work/o3.out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "--results inside the history folder" ||
	fail "--results inside the history folder: exit $rc: $(tail -3 "$work/o3.out")"

# 3. A canceled run as history: /d was cut short after 0.05 s (infra); it
# is never seen, so it starts first, not last.
make_db "$work/canceled.sqlite" /a:pass:1 /b:pass:6 /c:pass:2 \
	/d:infra:0.05 /e:pass:5 /f:pass:3
"$atex" run --local 1 --history "$work/canceled.sqlite" \
	--results "$work/o4" "$tree" >"$work/o4.out" 2>&1
order=$(start_order "$work/o4/results.sqlite")
[ "$order" = "/d /b /e /f /c /a" ] && pass "infra gives no time: $order" ||
	fail "infra gives no time: '$order' ($(tail -3 "$work/o4.out"))"

# 4. No attempt with a duration: a warning naming the path.
make_db "$work/nodur.sqlite" /a:pass:- /b:pass:-
"$atex" run --local 1 --history "$work/nodur.sqlite" --test '^/a$' \
	--results "$work/o5" "$tree" >"$work/o5.out" 2>&1
rc=$?
grep -q "$work/nodur.sqlite: no attempt with a duration" "$work/o5.out" &&
	pass "no durations warned about (exit $rc)" ||
	fail "no durations: exit $rc, no warning in: $(cat "$work/o5.out")"

# 5. The estimate follows --order fmf: five 10 s tests and /f of 40 s
# last; on 2 systems, once both run, ~60 s are left (the long test starts
# at 20 s), where the history's order (/f first) leaves ~50 s.
make_db "$work/est.sqlite" /a:pass:10 /b:pass:10 /c:pass:10 /d:pass:10 \
	/e:pass:10 /f:pass:40
# first_estimate ORDER-ARGS...: the estimate once 2 tests run on 2 systems.
first_estimate() {
	script -qec "'$atex' run --local 2 --history '$work/est.sqlite' $* \
		--results '$work/o6' '$tree'" /dev/null 2>&1 | tr '\r' '\n' |
		grep -a 'running 2 on 2 systems' | head -1 |
		grep -a -o '~[0-9]*s left' | tr -dc 0-9
}
if command -v script >/dev/null; then
	got=$(first_estimate --order fmf)
	[ -n "$got" ] && [ "$got" -ge 55 ] && [ "$got" -le 60 ] &&
		pass "estimate with --order fmf: ~${got}s" ||
		fail "estimate with --order fmf: '~${got}s', expected ~60s"
	got=$(first_estimate)
	[ -n "$got" ] && [ "$got" -ge 45 ] && [ "$got" -le 50 ] &&
		pass "estimate in the history's order: ~${got}s" ||
		fail "estimate in the history's order: '~${got}s', expected ~50s"
fi

# 6. A database locked by another process: said so, naming it.
make_db "$work/locked.sqlite" /a:pass:1
"$py" - "$work/locked.sqlite" "$work/locked.ready" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE results SET duration = 2")
open(sys.argv[2], "w").close()
time.sleep(60)
PY
lock_pid=$!
for _ in $(seq 100); do
	[ -e "$work/locked.ready" ] && break
	sleep 0.1
done
"$atex" run --local 1 --history "$work/locked.sqlite" \
	--results "$work/o7" "$tree" >"$work/o7.out" 2>&1
rc=$?
expect_usage "a locked database" "$work/o7.out" "$work/locked.sqlite" \
	"locked by another process"
grep -q "not a results database" "$work/o7.out" &&
	fail "a locked database called 'not a results database'"
kill "$lock_pid" 2>/dev/null
wait "$lock_pid" 2>/dev/null
lock_pid=

# The same history twice (and through its folder): read once.
mkdir "$work/twice"
make_db "$work/twice/results.sqlite" /a:pass:1 /b:pass:2
"$atex" run --local 1 --history "$work/twice" \
	--history "$work/twice/results.sqlite" --history "$work/twice" \
	--test '^/a$' --results "$work/o8" "$tree" >"$work/o8.out" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c 'read once' "$work/o8.out")" -eq 2 ] &&
	pass "the same history twice: read once" ||
	fail "the same history twice: exit $rc: $(cat "$work/o8.out")"

[ $failures -eq 0 ] || {
	echo "$failures failures"
	exit 1
}
echo "all passed"

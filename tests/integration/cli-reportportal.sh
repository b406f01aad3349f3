#!/bin/bash
# cli-reportportal.sh ATEX: `atex run --reportportal` against the fake
# ReportPortal API (rp-server.py, on 127.0.0.1) with the tree
# integration/trees/cli-reportportal (a pass, a failure with subtests and
# files, a re-run, bytes that are not UTF-8, a test printing its
# environment); rp-check.py compares what arrived with the local results:
#   - a clean run: the launch, a suite for the platform, a step per test
#     (subtests nested, or joined with --rp-join-subtest), statuses,
#     re-runs as retries in order, every file attached once and
#     byte-equal, output.txt inline, the launch and items finished;
#   - the same through faults (503s, a slow answer past the try's
#     timeout, connections dropped mid-upload and after the request was
#     handled), with the v2 API's answers to a repeated request and with
#     a synchronous server's (409 "already exists", 406 "already
#     finished"): everything arrives exactly once;
#   - a slow server: the tests do not wait for it (uploads queued);
#   - a server failing every request: the local results complete, exit
#     2, the message names the test, the request and the status; a wrong
#     token: exit 2 before any test runs;
#   - Ctrl-C mid-run: the launch is finished all the same;
#   - tmt's token variable, --rp-launch-per-platform, no token at all;
#   - atex report --reportportal: a results folder uploaded afterwards
#     makes the same launch (attempts as retries, times, files);
#   - the token in no output, no file of the results, no process's
#     arguments, not in the environment of the tests.
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
tree=$ATEX_TEST_TREES/cli-reportportal
work=$(mktemp -d /tmp/atex-cli-rp.XXXXXX)
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
failures=0
TOKEN=rp-token-$RANDOM$RANDOM$RANDOM
PROJECT=atex_personal
# Retries after 0.2 s, 0.4 s... instead of 2 s, 4 s...
export ATEX_TEST_RP_BACKOFF_MS=200

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

for cmd in curl /usr/bin/python3; do
	command -v "$cmd" >/dev/null || {
		echo "FAIL cli-reportportal needs $cmd"
		exit 1
	}
done

srv_pid=
atex_pid=
cleanup() {
	[ -n "$atex_pid" ] && kill -KILL "$atex_pid" 2>/dev/null
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME [MODE]: a fresh server in $work/srv-NAME; sets URL.
start_server() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid"
	mkdir -p "$work/srv-$1"
	RP_SERVER_TOKEN=$TOKEN /usr/bin/python3 "$here/rp-server.py" \
		--dir "$work/srv-$1" --token - --project "$PROJECT" \
		--mode "${2:-async}" ${3:+"$3"} </dev/null 2>"$work/srv-$1.err" &
	srv_pid=$!
	for _ in $(seq 100); do
		[ -s "$work/srv-$1/port" ] && break
		sleep 0.1
	done
	URL=http://127.0.0.1:$(cat "$work/srv-$1/port")
}

fault() { curl -sf -X POST --data "$1" "$URL/_control/fault" >/dev/null; }
state() { curl -sf "$URL/_control/state"; }

# run_rp NAME [args...]: atex run of the tree into $work/NAME, uploading;
# exit status in $rc.
run_rp() {
	local name=$1
	shift
	ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" run --local 2 --reruns 1 \
		--results "$work/$name" --reportportal "$URL/" \
		--rp-project "$PROJECT" --rp-launch "launch $name" \
		--rp-timeout 2 --rp-retry-time "${RETRY:-60}" "$@" "$tree" \
		>"$work/$name.out" 2>"$work/$name.err"
	rc=$?
}

# check NAME [join SEP]: rp-check.py over the server's state.
check() {
	local name=$1
	shift
	state >"$work/$name.state"
	if /usr/bin/python3 "$here/rp-check.py" "$work/$name.state" \
		"$work/$name" "launch $name" "$TOKEN" "$@" >"$work/$name.check"; then
		pass "$name: what ReportPortal holds matches the results" \
			"($(grep -c '^ok' "$work/$name.check") checks)"
	else
		fail "$name: ReportPortal's state:"
		sed 's/^/     /' "$work/$name.check"
		sed 's/^/     stderr: /' "$work/$name.err" | tail -20
	fi
}

# local_complete NAME: every test's own final result in results.jsonl.
local_complete() {
	local got
	got=$(/usr/bin/python3 -c '
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1])]
print(" ".join(sorted(l[2] + ":" + l[1] for l in lines if l[3] is None)))
' "$work/$1/results.jsonl" 2>&1)
	if [ "$got" = "/tests/binary:pass /tests/env:pass /tests/fail:fail /tests/flaky:pass /tests/pass:pass" ]; then
		pass "$1: the local results are complete"
	else
		fail "$1: local results: $got"
	fi
}

expect_rc() {
	if [ "$rc" = "$2" ]; then
		pass "$1: exit $2"
	else
		fail "$1: exit $rc, not $2"
		sed 's/^/     /' "$work/$1.err" | tail -20
	fi
}

# --- A clean run. --------------------------------------------------------------
start_server clean
run_rp clean
expect_rc clean 1
check clean
if grep -q "not uploaded" "$work/clean.err"; then
	fail "clean: something was not uploaded"
else
	pass "clean: nothing reported as not uploaded"
fi
grep -q "ReportPortal launch [0-9a-f-]\{36\}" "$work/clean.err" &&
	pass "clean: the launch's UUID is printed" ||
	fail "clean: no launch UUID printed"

# --- atex report --reportportal: the same folder uploaded again. ------------------
ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" report --reportportal "$URL" \
	--rp-project "$PROJECT" --rp-launch "launch reupload" "$work/clean" \
	>"$work/reupload.out" 2>"$work/reupload.err"
rc=$?
expect_rc reupload 0
state >"$work/reupload.state"
if /usr/bin/python3 "$here/rp-check.py" "$work/reupload.state" \
	"$work/clean" "launch reupload" "$TOKEN" >"$work/reupload.check"; then
	pass "reupload: atex report --reportportal gives the same launch" \
		"($(grep -c '^ok' "$work/reupload.check") checks)"
else
	fail "reupload: ReportPortal's state:"
	sed 's/^/     /' "$work/reupload.check"
	sed 's/^/     stderr: /' "$work/reupload.err" | tail -20
fi
[ ! -e "$work/clean/.rp-upload" ] && pass "reupload: nothing left in the folder" ||
	fail "reupload: $work/clean/.rp-upload left"

# --- A server that makes its own ids: atex uses those it answers. -----------------
start_server ownids async --ignore-uuid
run_rp ownids
expect_rc ownids 1
check ownids

# --- Joined subtests. ------------------------------------------------------------
run_rp joined --rp-join-subtest ::
expect_rc joined 1
check joined join ::

# --- Faults: retried, nothing lost, nothing duplicated. --------------------------
for mode in async sync; do
	name=faults-$mode
	start_server "$name" "$mode"
	fault '{"kind": "slow", "delay": 3, "match": "^POST /api/v2/[^/]+/launch$"}'
	fault '{"kind": "status", "status": 503, "count": 2, "match": "^POST /api/v2/[^/]+/item$"}'
	fault '{"kind": "drop_after", "match": "^POST /api/v2/[^/]+/item/"}'
	fault '{"kind": "drop_mid", "match": "^POST /api/v2/[^/]+/log$"}'
	fault '{"kind": "drop_after", "count": 2, "match": "^POST /api/v2/[^/]+/log$"}'
	fault '{"kind": "status", "status": 502, "match": "^PUT /api/v2/[^/]+/item/"}'
	fault '{"kind": "drop_after", "count": 2, "match": "^PUT /api/v2/[^/]+/item/"}'
	fault '{"kind": "drop_after", "match": "^PUT /api/v2/[^/]+/launch/.*/finish$"}'
	# With the debug log: the retries are logged, the token never.
	ATEX_LOG=debug run_rp "$name"
	expect_rc "$name" 1
	check "$name"
	state >"$work/$name.state2"
	left=$(/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["repeats"], sum(1 for r in s["requests"] if r["fault"]))
' "$work/$name.state2")
	if [ "${left%% *}" -ge 4 ] && [ "${left##* }" = 11 ]; then
		pass "$name: all 11 faults hit, $((${left%% *})) repeated requests taken as done"
	else
		fail "$name: repeats and faults hit: $left (want >= 4, 11)"
	fi
done

# --- A slow server holds no system: uploads are queued, the run drains them. -----
start_server slow
fault '{"kind": "slow", "delay": 0.4, "count": 100, "match": "^POST /api/v2/[^/]+/item/"}'
run_rp slow
expect_rc slow 1
check slow
n=$(sed -n 's/.*run: uploading the last \([0-9]*\) result.*/\1/p' "$work/slow.err")
[ "${n:-0}" -ge 3 ] && pass "slow: the tests did not wait for the uploads ($n queued at the end)" ||
	fail "slow: queued at the end: ${n:-none}"
[ ! -e "$work/slow/.rp-spool" ] && pass "slow: the upload spool is gone" ||
	fail "slow: $work/slow/.rp-spool left"

# --- A server that fails every request: local results kept, exit 2. -------------
start_server down
fault '{"kind": "status", "status": 503, "count": 100000, "match": "^(POST|PUT) /api/"}'
RETRY=1 run_rp down
expect_rc down 2
local_complete down
grep -q "run: 7 test results were not uploaded to ReportPortal" "$work/down.err" &&
	pass "down: the run says how many were not uploaded" ||
	fail "down: no count of what was not uploaded: $(tail -3 "$work/down.err")"
grep -q "start launch: POST http://127.0.0.1:[0-9]*/api/v2/$PROJECT/launch: HTTP 503 after [0-9]* tries" "$work/down.err" &&
	pass "down: the message names the request and the status" ||
	fail "down: message: $(grep -m1 ReportPortal "$work/down.err")"

# Going down mid-run: a test's upload fails; the message names it.
start_server middown
fault '{"kind": "status", "status": 500, "count": 100000, "match": "^POST /api/v2/[^/]+/item/"}'
RETRY=1 run_rp middown
expect_rc middown 2
local_complete middown
grep -q "not uploaded: ReportPortal: test /tests/[a-z]* on local (attempt [0-9]*): POST http://127.0.0.1:[0-9]*/api/v2/$PROJECT/item/[0-9a-f-]*: HTTP 500 after [0-9]* tries" "$work/middown.err" &&
	pass "middown: the message names the test, its attempt, the request and the status" ||
	fail "middown: message: $(grep -m1 'not uploaded' "$work/middown.err")"
# Once a request outlasted its retries, the others get one try each.
tries=$(state | /usr/bin/python3 -c '
import json, re, sys
s = json.load(sys.stdin)
print(sum(1 for r in s["requests"] if re.match("POST /api/v2/[^/]+/item/", r["line"])))')
[ "$tries" -ge 7 ] && [ "$tries" -le 13 ] &&
	pass "middown: a server down is not retried for every test ($tries tries for 7 tests)" ||
	fail "middown: $tries tries of 7 tests' items (want 7 to 13: one try each after the first gave up)"
launch=$(state | /usr/bin/python3 -c 'import json,sys; print([l["status"] for l in json.load(sys.stdin)["launches"].values()])')
[ "$launch" = "['FAILED']" ] || [ "$launch" = "['PASSED']" ] &&
	pass "middown: the launch is finished all the same" ||
	fail "middown: launch status $launch"

# Logs refused mid-test: each test's item is finished as interrupted,
# saying why, by atex (not left for the launch's finish to interrupt).
start_server logdown
fault '{"kind": "status", "status": 500, "count": 100000, "match": "^POST /api/v2/[^/]+/log$"}'
RETRY=1 run_rp logdown
expect_rc logdown 2
local_complete logdown
got=$(state | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
steps = [i for i in s["items"].values() if i["parent"] and
         s["items"][i["parent"]]["type"] == "SUITE"]
ok = [i for i in steps if i["status"] == "INTERRUPTED" and
      "atex could not upload all of it" in (i["description"] or "") and
      "HTTP 500" in i["description"]]
print(len(steps), len(ok), s["forced"])')
[ "$got" = "7 7 0" ] &&
	pass "logdown: every test item finished as interrupted, saying why" ||
	fail "logdown: test items, interrupted by atex, forced: $got (want 7 7 0)"

# A wrong token: 401, named, at the start: a usage error before any
# test runs (the launch's quick first try; cli-reportportal-edges.sh).
start_server badtoken
ATEX_REPORTPORTAL_TOKEN=wrong-$TOKEN "$atex" run --local 2 --reruns 1 \
	--results "$work/badtoken" --reportportal "$URL" --rp-project "$PROJECT" \
	"$tree" >"$work/badtoken.out" 2>"$work/badtoken.err"
rc=$?
expect_rc badtoken 2
[ ! -s "$work/badtoken/results.jsonl" ] && pass "badtoken: no test ran" ||
	fail "badtoken: tests ran: $(head -c 300 "$work/badtoken/results.jsonl")"
grep -q "HTTP 401" "$work/badtoken.err" &&
	pass "badtoken: the message says HTTP 401" ||
	fail "badtoken: $(grep -m1 ReportPortal "$work/badtoken.err")"

# tmt's variable is accepted too; no token at all is a usage error.
start_server tmtvar
TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN=$TOKEN "$atex" run --local 2 \
	--results "$work/tmtvar" --reportportal "$URL" --rp-project "$PROJECT" \
	--rp-launch "launch tmtvar" --rp-launch-per-platform "$tree" \
	>"$work/tmtvar.out" 2>"$work/tmtvar.err"
rc=$?
expect_rc tmtvar 1
n=$(state | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" -ge 6 ] && pass "tmtvar: TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN works ($n items)" ||
	fail "tmtvar: $n items"
names=$(state | /usr/bin/python3 -c 'import json,sys; print([(l["name"], l["status"]) for l in json.load(sys.stdin)["launches"].values()])')
[ "$names" = "[('launch tmtvar local', 'FAILED')]" ] &&
	pass "tmtvar: --rp-launch-per-platform names the launch after the platform" ||
	fail "tmtvar: launches $names"
env -u ATEX_REPORTPORTAL_TOKEN -u TMT_PLUGIN_REPORT_REPORTPORTAL_TOKEN \
	"$atex" run --local 1 --results "$work/notoken" --reportportal "$URL" \
	--rp-project "$PROJECT" "$tree" >"$work/notoken.out" 2>"$work/notoken.err"
rc=$?
expect_rc notoken 2
grep -q "no token: set ATEX_REPORTPORTAL_TOKEN" "$work/notoken.err" &&
	pass "notoken: says which variable to set" ||
	fail "notoken: $(cat "$work/notoken.err")"

# Bad options: refused before anything runs or is written.
ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" run --local 1 --results "$work/badurl" \
	--reportportal "ftp://127.0.0.1/" --rp-project "$PROJECT" "$tree" \
	>"$work/badurl.out" 2>"$work/badurl.err"
rc=$?
expect_rc badurl 2
grep -q "the URL must be http:// or https://" "$work/badurl.err" && [ ! -e "$work/badurl" ] &&
	pass "badurl: refused at once, nothing written" ||
	fail "badurl: $(cat "$work/badurl.err")"

# --- Ctrl-C mid-run: the launch is finished. ---------------------------------------
start_server interrupt
ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" run --local 2 --context mode=interrupt \
	--results "$work/interrupt" --reportportal "$URL" --rp-project "$PROJECT" \
	--rp-launch "launch interrupt" "$tree" \
	>"$work/interrupt.out" 2>"$work/interrupt.err" &
atex_pid=$!
for _ in $(seq 100); do
	grep -q "/tests/endless started" "$work/interrupt.err" 2>/dev/null && break
	sleep 0.1
done
sleep 1
# While it runs: the token in no process's arguments or environment.
hits=
for p in /proc/[0-9]*; do
	if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$TOKEN"; then
		hits="$hits $(basename "$p")"
	fi
done
[ -z "$hits" ] && pass "interrupt: the token is in no process's arguments" ||
	fail "interrupt: the token is in the arguments of$hits"
child_env_hits=
for p in $(pgrep -P "$atex_pid") $(pgrep -f "sleep 60"); do
	tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qF -- "$TOKEN" &&
		child_env_hits="$child_env_hits $p"
done
[ -z "$child_env_hits" ] && pass "interrupt: no child of atex inherits the token" ||
	fail "interrupt: the token is in the environment of$child_env_hits"
kill -INT "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
expect_rc interrupt 130
status=$(state | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(l["status"] for l in s["launches"].values()),
      sum(1 for i in s["items"].values() if i["status"] == "IN_PROGRESS"))')
case $status in
"FAILED 0" | "PASSED 0") pass "interrupt: the launch and every item are finished ($status)" ;;
*) fail "interrupt: launch and items in progress: $status" ;;
esac

# --- The token: in no output and no file of the results. -------------------------
if grep -rlF -- "$TOKEN" "$work"/*.out "$work"/*.err "$work"/clean "$work"/faults-* \
	"$work"/down "$work"/interrupt "$TMPDIR" >"$work/token-hits" 2>/dev/null; then
	fail "the token is in $(tr '\n' ' ' <"$work/token-hits")"
else
	pass "the token is in no output of atex and no file of the results"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

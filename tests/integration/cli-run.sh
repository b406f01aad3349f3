#!/bin/bash
# cli-run.sh ATEX KIND: `atex run` end to end through the CLI, on the tree
# integration/trees/cli-run, with the provisioner KIND:
#   local    --local 3
#   ssh      three sshd on 127.0.0.1 (sshd.sh), one --ssh each
#   podman   --podman of the test image, --count 3 (podman.sh)
# It checks the files a run writes (results.jsonl, files/, old/,
# results.sqlite, report.html), exit statuses, re-runs, destructive tests,
# a system dying mid-test (ssh: its sshd killed; podman: its container
# removed) and Ctrl-C leaving nothing behind.
set -u
atex=$1
kind=${2:-local}
here=$(cd "$(dirname "$0")" && pwd)
tree=$ATEX_TEST_TREES/cli-run
work=$(mktemp -d /tmp/atex-cli-run.XXXXXX)
failures=0
# atex's private directories (ssh masters, staging) go here, so that
# leftovers are seen.
export TMPDIR=$work/tmp
mkdir "$TMPDIR"

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

cleanup() {
	if [ "$kind" = ssh ]; then
		for srv in 1 2 3; do
			SSHD_PID=${sshd_pid[$srv]:-} SSHD_DIR=${sshd_dir[$srv]:-}
			sshd_stop
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT

case $kind in
local)
	prov=(--local 3)
	;;
ssh)
	# shellcheck source=sshd.sh
	. "$here/sshd.sh"
	# Three servers, one user key: one --identity for the pool.
	SSHD_SHARED_KEY=$work/user_key
	declare -A sshd_pid sshd_dir sshd_port
	prov=()
	# (srv, not i: sshd.sh uses i.)
	for srv in 1 2 3; do
		sshd_start || exit 1
		sshd_pid[$srv]=$SSHD_PID sshd_dir[$srv]=$SSHD_DIR
		sshd_port[$srv]=$SSHD_PORT
		prov+=(--ssh "$SSH_TARGET")
	done
	prov+=(--identity "$SSHD_SHARED_KEY"
		--ssh-option StrictHostKeyChecking=no
		--ssh-option UserKnownHostsFile=/dev/null)
	;;
podman)
	# shellcheck source=podman.sh
	. "$here/podman.sh"
	podman_image || exit 1
	prov=("${PODMAN_ATEX[@]}" --count 3)
	;;
*)
	echo "unknown kind $kind" >&2
	exit 2
	;;
esac

# run NAME ARGS...: atex run into $work/NAME, stdout/stderr kept; sets rc.
run() {
	local name=$1
	shift
	"$atex" run "${prov[@]}" --platform plat --results "$work/$name" \
		"$@" "$tree" >"$work/$name.out" 2>"$work/$name.err"
	rc=$?
}

# small_tree DIR LINE...: an fmf tree whose main.fmf is the LINEs.
small_tree() {
	local dir=$1
	shift
	mkdir -p "$dir/.fmf"
	echo 1 >"$dir/.fmf/version"
	printf '%s\n' "$@" >"$dir/main.fmf"
}

# owner_of PID: "PID-START", the part of the names of its staging and work
# directories that is the process's own (src/executor/README.md). Read
# while it lives: under make check pids wrap within seconds, and another
# suite's process with the same pid makes directories of its own.
owner_of() { echo "$1-$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20)"; }

# jsonl FILE FILTER: jq over every line of a results file, slurped.
jsonl() { jq -s -c "$2" "$1"; }

# --- A whole run: 6 tests, one failing (3 attempts), one flaky. -------------
t0=$(date +%s)
run full --reruns 2
t1=$(date +%s)
res=$work/full
if [ "$rc" -eq 1 ]; then
	pass "full run: exit 1 (one test fails) in $((t1 - t0)) s"
else
	fail "full run: exit $rc, want 1: $(cat "$work/full.err")"
fi
for f in results.jsonl results.sqlite report.html old/results.jsonl; do
	[ -s "$res/$f" ] && pass "full run: wrote $f" ||
		fail "full run: no $f"
done
if jq -e 'type == "array" and length == 6' "$res/results.jsonl" \
	>/dev/null 2>&1 &&
	[ "$(jq -c 'select(type != "array" or length != 6)' \
		"$res/results.jsonl" | wc -l)" -eq 0 ]; then
	pass "results.jsonl: every line is a 6-element array"
else
	fail "results.jsonl: malformed: $(head -3 "$res/results.jsonl")"
fi
own=$(jsonl "$res/results.jsonl" \
	'[.[] | select(.[3] == null) | .[2]] | sort')
want='["/tests/destructive","/tests/fail","/tests/flaky","/tests/pass","/tests/slow","/tests/subtests"]'
if [ "$own" = "$want" ]; then
	pass "results.jsonl: each test's own result exactly once"
else
	fail "results.jsonl: own results $own, want $want"
fi
status_of() { # FILE TEST [SUBTEST]: the statuses of that result
	jq -r --arg t "$2" --arg s "${3:-}" \
		'select(.[2] == $t and ((.[3] // "") == $s)) | .[1]' "$1" |
		tr '\n' ' ' | sed 's/ $//'
}
check_status() { # FILE TEST SUBTEST WANT
	local got
	got=$(status_of "$1" "$2" "$3")
	[ "$got" = "$4" ] && pass "$(basename "$1"): $2${3:+/$3} is $4" ||
		fail "$(basename "$1"): $2${3:+/$3} is '$got', want '$4'"
}
check_status "$res/results.jsonl" /tests/pass "" pass
check_status "$res/results.jsonl" /tests/fail "" fail
check_status "$res/results.jsonl" /tests/flaky "" pass
check_status "$res/old/results.jsonl" /tests/flaky "" fail
check_status "$res/results.jsonl" /tests/subtests first pass
check_status "$res/results.jsonl" /tests/subtests second skip
check_status "$res/old/results.jsonl" /tests/fail "" "fail fail"
if [ "$(jq -s 'length' "$res/old/results.jsonl")" -eq 3 ]; then
	pass "old/results.jsonl: the three earlier attempts only"
else
	fail "old/results.jsonl: $(cat "$res/old/results.jsonl")"
fi
# Files: a subtest's under its name, the test's own beside them.
sub_files=$(jsonl "$res/results.jsonl" \
	'.[] | select(.[2] == "/tests/subtests" and .[3] == "first") | .[4]')
if [ "$sub_files" = '["first.log"]' ] &&
	grep -q "log of the first part" \
		"$res/files/plat/tests/subtests/first/first.log"; then
	pass "files: the subtest's log under files/plat/tests/subtests/first"
else
	fail "files: subtest files $sub_files; $(find "$res/files" -type f | head)"
fi
if grep -q "a whole log" "$res/files/plat/tests/subtests/run.log"; then
	pass "files: the test's own upload under files/plat/tests/subtests"
else
	fail "files: no run.log: $(find "$res/files" -type f | head)"
fi
# Every attempt's files kept: the final one in files/, the earlier ones
# in old/files/N/.
if grep -q "broken on purpose, attempt 3" \
	"$res/files/plat/tests/fail/output.txt" &&
	grep -q "broken on purpose, attempt 1" \
		"$res/old/files/1/plat/tests/fail/output.txt" &&
	grep -q "broken on purpose, attempt 2" \
		"$res/old/files/2/plat/tests/fail/output.txt"; then
	pass "files: the failing test's output of each of its 3 attempts"
else
	fail "files: attempts of /tests/fail: $(find "$res" -path '*tests/fail*' -type f)"
fi
if grep -q 'href="old/files/2/plat/tests/fail/output.txt"' \
	"$res/report.html"; then
	pass "report.html: links to an earlier attempt's files"
else
	fail "report.html: no link to old/files/2/plat/tests/fail/output.txt"
fi
"$atex" report --html "$res/from-db.html" "$res/results.sqlite" \
	>/dev/null 2>&1
if grep -q 'href="old/files/2/plat/tests/fail/output.txt"' \
	"$res/from-db.html" &&
	grep -q 'href="files/plat/tests/fail/output.txt"' "$res/from-db.html"; then
	pass "report from results.sqlite: links to every attempt's files"
else
	fail "report from results.sqlite: links wrong"
fi
# SQLite: every attempt, numbered, the final flagged.
flaky_rows=$(sqlite3 "$res/results.sqlite" \
	"select attempt || ':' || final || ':' || status from results
	 where test = '/tests/flaky' order by attempt" | tr '\n' ' ')
if [ "$flaky_rows" = "1:0:fail 2:1:pass " ]; then
	pass "results.sqlite: the flaky test's two attempts"
else
	fail "results.sqlite: flaky rows '$flaky_rows'"
fi
n_final=$(sqlite3 "$res/results.sqlite" \
	"select count(*) from results where final = 1")
n_lines=$(wc -l <"$res/results.jsonl")
[ "$n_final" -eq "$n_lines" ] &&
	pass "results.sqlite: $n_final final rows, as many as jsonl lines" ||
	fail "results.sqlite: $n_final final rows, $n_lines jsonl lines"
if grep -qiE '(src|href)="(https?:)?//' "$res/report.html"; then
	fail "report.html: loads something from the network"
else
	pass "report.html: self-contained"
fi
grep -q "/tests/subtests" "$res/report.html" &&
	pass "report.html: lists the tests" ||
	fail "report.html: no /tests/subtests"
# Plain log lines (not a terminal): one line per result.
if grep -qE '^fail +/tests/fail' "$work/full.out" &&
	grep -qE '^pass +/tests/flaky.*attempt 2' "$work/full.out"; then
	pass "output: result lines, the re-run marked"
else
	fail "output: $(cat "$work/full.out")"
fi
# atex report takes the results folder for its results.jsonl.
"$atex" report --summary --exit-code "$res" >"$work/summary.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -qE '^plat +6 +1 +0 +0 +0 +0 +1 +8' "$work/summary.out" &&
	grep -qE '^fail +/tests/fail' "$work/summary.out"; then
	pass "report --summary --exit-code DIR: exit 1, the counts and the failure"
else
	fail "report --summary DIR: exit $rc: $(cat "$work/summary.out")"
fi
# The destructive test's system ran nothing after it: the next line that
# names that system releases it.
dsys=$(sed -n 's|^atex: run: /tests/destructive started on ||p' "$work/full.err")
next=$(grep -F "$dsys" "$work/full.err" | grep -A1 -F "/tests/destructive started" |
	sed -n 2p)
if [ -n "$dsys" ] && [ "$next" = "atex: run: system $dsys released" ]; then
	pass "destructive: $dsys released right after the test"
else
	fail "destructive: on '$dsys', then '$next'"
fi
# Nothing left behind.
[ ! -e "$res/.running" ] && pass "no .running left in the results" ||
	fail ".running left: $(ls "$res/.running")"

# --- Exit 0 when everything passes; --filter. --------------------------------
run passing --filter 'tag: destructive'
if [ "$rc" -eq 0 ] && [ "$(wc -l <"$work/passing/results.jsonl")" -eq 1 ]; then
	pass "filtered run: exit 0, one result"
else
	fail "filtered run: exit $rc: $(cat "$work/passing.err")"
fi

# --- On a terminal: a live progress line, redrawn in place. ------------------
if [ "$kind" = local ]; then
	script -qec "$atex run ${prov[*]} --platform plat --results $work/tty \
		--filter 'tag: destructive' $tree" /dev/null >"$work/tty.out" 2>&1
	if tr '\r' '\n' <"$work/tty.out" |
		grep -qE '^.*\[1/1\] running 0 on [0-9]+ systems, 1 passed, 0 failed, [0-9]+s elapsed, 0s left' &&
		! grep -q "started on" "$work/tty.out"; then
		pass "terminal: a progress line instead of log lines"
	else
		fail "terminal: $(tr '\r' '\n' <"$work/tty.out" | tail -5)"
	fi
fi

# --- Usage errors: exit 2 with a message naming the culprit. ----------------
usage() { # NAME WANT-IN-STDERR ARGS...
	local name=$1 want=$2 out
	shift 2
	out=$("$atex" run "$@" 2>&1)
	local code=$?
	if [ "$code" -eq 2 ] && printf '%s' "$out" | grep -q -- "$want"; then
		pass "usage $name: $out"
	else
		fail "usage $name: exit $code: $out"
	fi
}
usage no-results "--results" --local 1 "$tree"
usage no-tree "TREE" --local 1 --results "$work/x"
: >"$work/a-file"
usage results-file "$work/a-file: not a directory" --local 1 \
	--results "$work/a-file" "$tree"
usage bad-reruns "--reruns" --local 1 --reruns x --results "$work/x" "$tree"
usage bad-order "--order" --local 1 --order random --results "$work/x" "$tree"
usage bad-platform "--platform" --local 1 --platform a/b --results "$work/x" \
	"$tree"
usage no-tree-dir "$work/nowhere" --local 1 --results "$work/x" \
	"$work/nowhere"
usage no-plan "/plans/nope" --local 1 --plan /plans/nope \
	--results "$work/x" "$tree"

# --- A system dies mid-test: the test runs again on another one. ------------
# (ssh: the victim's sshd and its sessions killed; podman: its container
# removed. Over the local provisioner test_orchestrator covers it.)
if [ "$kind" != local ]; then
	"$atex" run "${prov[@]}" --platform plat --results "$work/fault" \
		--context mode=fault "$tree" \
		>"$work/fault.out" 2>"$work/fault.err" &
	pid=$!
	victim=
	for _ in $(seq 1 600); do
		victim=$(sed -n 's|^atex: run: /tests/victim started on ||p' \
			"$work/fault.err" 2>/dev/null | head -1)
		[ -n "$victim" ] && break
		sleep 0.1
	done
	sleep 1
	case $kind in
	ssh)
		port=${victim##*:}
		for srv in 1 2 3; do
			[ "${sshd_port[$srv]}" = "$port" ] || continue
			pkill -KILL -P "${sshd_pid[$srv]}"
			kill -KILL "${sshd_pid[$srv]}"
		done
		;;
	podman)
		ct=$(printf '%s' "$victim" | grep -o 'atex-[0-9a-zA-Z]*' | head -1)
		podman "${PODMAN_GLOBAL[@]}" rm -f -t 0 "$ct" >/dev/null
		;;
	esac
	wait "$pid"
	rc=$?
	own=$(jsonl "$work/fault/results.jsonl" \
		'[.[] | select(.[3] == null) | .[2]] | sort')
	want='["/tests/destructive","/tests/fail","/tests/flaky","/tests/pass","/tests/slow","/tests/subtests","/tests/victim"]'
	if [ -n "$victim" ] && [ "$rc" -eq 1 ] && [ "$own" = "$want" ] &&
		grep -q "lost" "$work/fault.err"; then
		pass "fault: $victim killed mid-test, every test once"
	else
		fail "fault: victim '$victim', exit $rc, tests $own: $(tail -5 "$work/fault.err")"
	fi
	check_status "$work/fault/results.jsonl" /tests/victim "" pass
	check_status "$work/fault/old/results.jsonl" /tests/victim "" infra
fi

# --- Ctrl-C mid-run: exit 130 within 5 s, results kept, nothing left. -------
# The endless test sleeps a number of this script's own: another suite's
# "sleep 300" (a container's processes are in this machine's /proc too)
# must not count as ours.
endless="sleep 300.$$"
"$atex" run "${prov[@]}" --platform plat --results "$work/int" \
	--env "ENDLESS=${endless#sleep }" \
	--context mode=interrupt "$tree" >"$work/int.out" 2>"$work/int.err" &
pid=$!
owner=$(owner_of "$pid")
# Wait until the endless test runs (the other tests are done by then or
# running: whatever finished must be in the results).
for _ in $(seq 1 600); do
	grep -q "/tests/endless started" "$work/int.err" 2>/dev/null && break
	sleep 0.1
done
sleep 1
# On a busy machine (make check runs suites side by side) its process may
# show a moment later.
for _ in $(seq 1 100); do
	pgrep -f "$endless" >/dev/null && break
	sleep 0.1
done
pgrep -f "$endless" >/dev/null && pass "interrupt: the endless test runs" ||
	fail "interrupt: no '$endless' running before Ctrl-C"
t0=$(date +%s%N)
kill -INT "$pid"
wait "$pid"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" -eq 130 ] && [ "$ms" -lt 5000 ]; then
	pass "interrupt: exit 130 after $ms ms"
else
	fail "interrupt: exit $rc after $ms ms: $(tail -5 "$work/int.err")"
fi
if jq -e . "$work/int/results.jsonl" >/dev/null 2>&1 &&
	[ "$(status_of "$work/int/results.jsonl" /tests/endless)" = infra ]; then
	pass "interrupt: results.jsonl parses, the canceled test is infra"
else
	fail "interrupt: results: $(cat "$work/int/results.jsonl")"
fi
n_int=$(wc -l <"$work/int/results.jsonl")
[ "$n_int" -ge 2 ] && pass "interrupt: $n_int results kept" ||
	fail "interrupt: only $n_int results"
# The test's process group is killed by its wrapper, which sees the
# channel close: that may finish a few ms after atex has exited; it must
# be within the 5 s that Ctrl-C is given.
for _ in $(seq 1 40); do
	pgrep -f "$endless" >/dev/null || break
	[ $(((($(date +%s%N) - t0) / 1000000))) -lt 5000 ] || break
	sleep 0.1
done
if pgrep -f "$endless" >/dev/null; then
	fail "interrupt: the test's process is still running 5 s after Ctrl-C"
else
	pass "interrupt: no test process left"
fi
case $kind in
local)
	left=$(pgrep -f -- "--results $work/int" | wc -l)
	[ "$left" -eq 0 ] && pass "interrupt: no process of the run left" ||
		fail "interrupt: $left processes left"
	;;
ssh)
	if pgrep -f -- "-S $TMPDIR" >/dev/null; then
		fail "interrupt: ssh processes left: $(pgrep -af -- "-S $TMPDIR")"
	else
		pass "interrupt: no ssh master or client left"
	fi
	;;
podman)
	left=$(podman_atex_names | wc -l)
	[ "$left" -eq 0 ] && pass "interrupt: no container left" ||
		fail "interrupt: $left containers left"
	;;
esac
# Work directories are named after their owner, BOOT-PID-START of the
# atex run (src/executor/README.md): only ours count, not those of a
# suite running beside this one (make check runs several at once), nor
# those of a later process that got the same pid.
leftover=$(find /var/tmp -maxdepth 1 -name "atex-????????-$owner-*" \
	2>/dev/null)
[ -z "$leftover" ] && pass "interrupt: no work directory left" ||
	fail "interrupt: left: $leftover"
if ls "$TMPDIR" | grep -q '^atex-'; then
	fail "interrupt: private directories left: $(ls "$TMPDIR")"
else
	pass "interrupt: no private directory left in \$TMPDIR"
fi

# --- Several plans and no --plan: said, and every test runs. ---------------
if [ "$kind" = local ]; then
	small_tree "$work/plans-tree" '/p1:' '    execute: {how: tmt}' '/p2:' \
		'    execute: {how: tmt}' '/t:' '    test: "true"'
	"$atex" run "${prov[@]}" --results "$work/plans" "$work/plans-tree" \
		>/dev/null 2>"$work/plans.err"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -qF "has 2 plans (/p1, /p2) and no --plan" \
		"$work/plans.err"; then
		pass "several plans, no --plan: said, the tests run"
	else
		fail "several plans: exit $rc: $(cat "$work/plans.err")"
	fi
fi

# --- A required package that does not exist: one infra result, the ------
# system kept (not "lost", not replaced), no re-run without --reruns.
if [ "$kind" = local ]; then
	small_tree "$work/req-tree" '/req:' \
		'    require: [atex-no-such-package-here]' '    test: "true"' \
		'/ok:' '    test: "true"'
	"$atex" run --local 1 --results "$work/req" "$work/req-tree" \
		>"$work/req.out" 2>"$work/req.err"
	rc=$?
	if [ "$rc" -eq 1 ] && [ "$(grep -c '^infra /req' "$work/req.out")" -eq 1 ] &&
		! grep -q "lost" "$work/req.err" &&
		[ "$(grep -c "system local:1 ready" "$work/req.err")" -eq 1 ] &&
		[ "$(status_of "$work/req/results.jsonl" /req)" = infra ]; then
		pass "missing required package: one infra result, the system kept"
	else
		fail "missing package: exit $rc: $(cat "$work/req.out" "$work/req.err")"
	fi
fi

# --- Verdicts: a pass killed at its duration, a result without status. ----
# Both are errors, printed and stored alike, and the run fails; no note
# names the run's temporary directories.
if [ "$kind" = local ]; then
	small_tree "$work/verdict-tree" '/killed:' '    duration: 2' \
		'    test: |' \
		"        j='{\"status\": \"pass\"}'" \
		'        printf "result %d\n%s" "${#j}" "$j" >&$ATEX_TEST_CONTROL' \
		'        exec sleep 60' \
		'/nostatus:' '    test: |' \
		"        j='{\"name\": \"sub\"}'" \
		'        printf "result %d\n%s" "${#j}" "$j" >&$ATEX_TEST_CONTROL'
	"$atex" run --local 2 --platform plat --results "$work/verdict" \
		"$work/verdict-tree" >"$work/verdict.out" 2>"$work/verdict.err"
	rc=$?
	res=$work/verdict/results.jsonl
	if [ "$rc" -eq 1 ] &&
		grep -Eq "^error +/killed +the test did not end within its duration and was killed \\(it had reported 'pass'\\)$" "$work/verdict.out" &&
		grep -Eq '^error +/nostatus/sub +the result has no status$' "$work/verdict.out" &&
		[ "$(status_of "$res" /killed)" = error ] &&
		[ "$(status_of "$res" /nostatus sub)" = error ] &&
		[ "$(jq -r 'select(.[3] == "sub") | .[5]' "$res")" = "the result has no status" ] &&
		! grep -q '\.running' "$res" "$work/verdict.out"; then
		pass "verdicts: killed pass and missing status are errors, exit 1"
	else
		fail "verdicts: exit $rc: $(cat "$work/verdict.out" "$work/verdict.err" "$res")"
	fi
fi

# --- The terminal goes away (SIGHUP), or stdout is closed early. ------------
if [ "$kind" = local ]; then
	"$atex" run "${prov[@]}" --platform plat --results "$work/hup" \
		--context mode=interrupt "$tree" >/dev/null 2>"$work/hup.err" &
	pid=$!
	for _ in $(seq 1 600); do
		grep -q "/tests/endless started" "$work/hup.err" 2>/dev/null && break
		sleep 0.1
	done
	kill -HUP "$pid"
	wait "$pid"
	rc=$?
	if [ "$rc" -eq 129 ] && [ -s "$work/hup/report.html" ] &&
		[ "$(status_of "$work/hup/results.jsonl" /tests/endless)" = infra ]; then
		pass "hangup: exit 129, results and report kept, as Ctrl-C"
	else
		fail "hangup: exit $rc: $(tail -3 "$work/hup.err")"
	fi
	# `atex run | head -1`: the run goes on to the end, every result
	# written, with the exit status of its results.
	"$atex" run "${prov[@]}" --platform plat --results "$work/pipe" \
		"$tree" 2>"$work/pipe.err" | head -c 1 >/dev/null
	rc=${PIPESTATUS[0]}
	own=$(jsonl "$work/pipe/results.jsonl" '[.[] | select(.[3] == null)] | length')
	if [ "$rc" -eq 1 ] && [ "$own" -eq 6 ] && [ -s "$work/pipe/report.html" ]; then
		pass "stdout closed early: the run ends normally, 6 tests"
	else
		fail "stdout closed early: exit $rc, $own tests: $(tail -3 "$work/pipe.err")"
	fi
fi

# --- Links planted in the results directory are never followed. ------------
if [ "$kind" = local ]; then
	small_tree "$work/one-tree" '/one:' '    test: echo one'
	mkdir -p "$work/planted" "$work/victims/dir"
	echo precious >"$work/victims/dir/keep"
	for f in results.jsonl results.sqlite results.sqlite-wal \
		results.sqlite-shm results.sqlite-journal report.html; do
		echo precious >"$work/victims/$f"
		ln -s "$work/victims/$f" "$work/planted/$f"
	done
	for d in files old .running; do
		ln -s "$work/victims/dir" "$work/planted/$d"
	done
	"$atex" run --local 1 --results "$work/planted" "$work/one-tree" \
		>"$work/planted.out" 2>"$work/planted.err"
	rc=$?
	bad=$(cd "$work/victims" && for f in *; do
		[ "$f" = dir ] || grep -qx precious "$f" || echo "$f"
	done)
	[ -f "$work/victims/dir/keep" ] || bad="$bad dir/keep"
	[ "$(ls "$work/victims/dir")" = keep ] || bad="$bad dir"
	links=$(find "$work/planted" -type l)
	if [ "$rc" -eq 0 ] && [ -z "$bad" ] && [ -z "$links" ] &&
		[ "$(status_of "$work/planted/results.jsonl" /one)" = pass ]; then
		pass "planted links in the results directory not followed"
	else
		fail "planted links: exit $rc, victims changed: '$bad', links: '$links': $(cat "$work/planted.err")"
	fi
fi

# --- --results a symlink another user planted (a shared sticky /tmp,
# fs.protected_symlinks off): refused, its target untouched. -------------
if [ "$kind" = local ]; then
	mkdir -p "$work/sticky" "$work/target/files"
	chmod 1777 "$work/sticky"
	echo precious >"$work/target/files/keep"
	ln -s "$work/target" "$work/sticky/res"
	if chown -h 65534 "$work/sticky/res" 2>/dev/null; then
		"$atex" run --local 1 --results "$work/sticky/res" "$work/one-tree" \
			>"$work/sticky.out" 2>"$work/sticky.err"
		rc=$?
		if [ "$rc" -eq 2 ] && [ -f "$work/target/files/keep" ] &&
			[ ! -e "$work/target/results.jsonl" ] &&
			grep -q "symlink .*belongs to user 65534" "$work/sticky.err"; then
			pass "a --results symlink of another user refused"
		else
			fail "foreign --results symlink: exit $rc, target: $(ls -R "$work/target"): $(cat "$work/sticky.err")"
		fi
	elif [ "$(id -u)" = 0 ]; then
		fail "foreign symlink: root cannot chown -h"
	fi
fi

# --- A run killed with SIGKILL: the next run removes what it left (its
# staging directory, its local work directory), never a live run's. ------
if [ "$kind" = local ]; then
	small_tree "$work/sleep-tree" '/sleep:' '    test: sleep 60'
	small_tree "$work/quick-tree" '/quick:' '    test: echo quick'
	# sleeper NAME: an atex run of /sleep into $work/NAME, in the
	# background, once its test has started; its pid in $sleeper.
	sleeper() {
		"$atex" run --local 1 --results "$work/$1" "$work/sleep-tree" \
			>/dev/null 2>"$work/$1.err" &
		sleeper=$!
		for _ in $(seq 1 300); do
			grep -q "/sleep started" "$work/$1.err" && return
			sleep 0.1
		done
	}
	# dirs_of OWNER: the staging and work directories of OWNER
	# (owner_of).
	dirs_of() {
		ls -d "$TMPDIR"/atex-stage-*-"$1"-?????? \
			/var/tmp/atex-????????-"$1"-?????? 2>/dev/null
	}
	sleeper killed
	killed=$(owner_of "$sleeper")
	kill -KILL "$sleeper"
	wait "$sleeper" 2>/dev/null
	before_killed=$(dirs_of "$killed" | wc -l)
	# The live run is a next run too: it may remove them already.
	sleeper live
	live=$(owner_of "$sleeper")
	live_pid=$sleeper
	before_live=$(dirs_of "$live" | wc -l)
	"$atex" run --local 1 --results "$work/after-kill" "$work/quick-tree" \
		>/dev/null 2>"$work/after-kill.err"
	rc=$?
	after_killed=$(dirs_of "$killed")
	after_live=$(dirs_of "$live" | wc -l)
	if [ "$rc" -eq 0 ] && [ "$before_killed" -eq 2 ] && [ -z "$after_killed" ] &&
		[ "$before_live" -eq 2 ] && [ "$after_live" -eq 2 ]; then
		pass "a killed run's leftovers removed by the next, a live run's kept"
	else
		fail "leftovers: exit $rc, killed run's $before_killed then '$after_killed', live run's $before_live then $after_live: $(cat "$work/after-kill.err")"
	fi
	kill -INT "$live_pid"
	wait "$live_pid"
	[ -z "$(dirs_of "$live")" ] || fail "the live run left $(dirs_of "$live")"
fi

# --- A full disk under --results (a 2 MiB tmpfs, in a mount namespace of
# its own): the run says "no space left on device" and exits 2, no test
# is labelled as one that never reported (the test that filled the disk
# still has its result, room for it was set aside), and results.jsonl and
# results.sqlite hold the same results. ------------------------------------
if [ "$kind" = local ]; then
	lines=('/blob:' '    test: |' \
		'        head -c 400000 /dev/urandom | base64 >"$TMT_TEST_DATA/blob"' \
		'        echo written')
	for i in 1 2 3 4 5 6 7 8; do
		lines+=("/t$i:" '    test: echo small')
		[ "$i" -le 5 ] && lines+=("/b$i:" '    test: |' \
			'        head -c 300000 /dev/urandom | base64 >"$TMT_TEST_DATA/blob"' \
			'        echo big')
	done
	small_tree "$work/full-tree" "${lines[@]}"
	mkdir -p "$work/full"
	unshare -m sh -c 'mount -t tmpfs -o size=2m atex-full "$1" || exit 99
		"$2" run --local 1 --results "$1" "$3" >"$4.out" 2>"$4.err"
		rc=$?
		jq -c "[.[2], .[1], .[3], .[5]]" "$1/results.jsonl" | sort >"$4.jsonl"
		sqlite3 "$1/results.sqlite" "SELECT json_array(test, status, subtest, note) FROM results" |
			sort >"$4.sqlite"
		exit $rc' sh "$work/full" "$atex" "$work/full-tree" "$work/full"
	rc=$?
	if [ "$rc" -eq 99 ]; then
		fail "full disk: cannot mount a tmpfs (unshare -m, mount -t tmpfs)"
	elif [ "$rc" -eq 2 ] && grep -qi "no space left on device" "$work/full.err" &&
		! grep -q "never reported" "$work/full.out" "$work/full.jsonl" &&
		grep -q "^error /b[0-9].*No space left on device" "$work/full.out" &&
		[ -s "$work/full.jsonl" ] && cmp -s "$work/full.jsonl" "$work/full.sqlite"; then
		pass "full disk: said so, exit 2, no test relabelled, JSONL and SQLite agree"
	else
		fail "full disk: exit $rc; $(cat "$work/full.out" "$work/full.err"); JSONL: $(cat "$work/full.jsonl"); SQLite: $(cat "$work/full.sqlite")"
	fi
	# A test whose own output fills the disk fails of it (its writes
	# get ENOSPC): its result says why, nothing else would.
	small_tree "$work/full-tree2" '/loud:' \
		'    test: head -c 3000000 /dev/zero | tr "\\0" x' \
		'/quiet:' '    test: echo hi'
	mkdir -p "$work/full2"
	unshare -m sh -c 'mount -t tmpfs -o size=2m atex-full "$1" || exit 99
		"$2" run --local 1 --results "$1" "$3" >"$4.out" 2>"$4.err"
		rc=$?; cp "$1/results.jsonl" "$4.jsonl"; exit $rc' \
		sh "$work/full2" "$atex" "$work/full-tree2" "$work/full2"
	rc=$?
	if [ "$rc" -eq 1 ] &&
		grep -q '^fail  */loud  *no space left on device' "$work/full2.out" &&
		grep -q '"/loud".*no space left on device' "$work/full2.jsonl" &&
		grep -q '^pass  */quiet$' "$work/full2.out"; then
		pass "full disk: a test failing of its own output says no space left"
	else
		fail "full disk (output): exit $rc; $(cat "$work/full2.out" "$work/full2.err")"
	fi
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

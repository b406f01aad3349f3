#!/bin/bash
# `atex test` end to end through the CLI on tests/integration/trees/cli-test,
# on one kind of system: exit statuses (0, 1, 2, 130), the printed results,
# the artifacts layout (DIR/<test>/results and files/), binary output, the
# environment, a time limit, a reboot-like reconnect and Ctrl-C cleanup.
# usage: cli-test.sh ATEX_CLI local|ssh|podman
set -u
atex=$1 kind=$2
here=$(cd "$(dirname "$0")" && pwd)
tree=$here/trees/cli-test
work=$(mktemp -d)
failures=0
pass() { echo "ok   $kind: $1"; }
fail() { echo "FAIL $kind: $1"; failures=$((failures + 1)); }

case $kind in
local)
	prov=(--local 1)
	leftovers() { :; }
	trap 'rm -rf "$work"' EXIT
	;;
ssh)
	. "$here/sshd.sh"
	trap 'sshd_stop; rm -rf "$work"' EXIT
	sshd_start || exit 1
	export TMPDIR=$work/tmp
	mkdir -p "$TMPDIR"
	prov=("${SSH_ATEX[@]}")
	leftovers() {
		ls "$TMPDIR" | grep atex-ssh-
		pgrep -af -- "-S $TMPDIR"
	}
	;;
podman)
	trap 'rm -rf "$work"' EXIT
	. "$here/podman.sh"
	podman_image || exit 1
	prov=("${PODMAN_ATEX[@]}")
	leftovers() { podman_atex_names; }
	;;
*)
	echo "usage: cli-test.sh ATEX_CLI local|ssh|podman" >&2
	exit 2
	;;
esac

# run NAME WANT ARGS...: atex test PROV --artifacts $work/NAME ARGS exits
# WANT; stdout in $work/NAME.out, stderr in $work/NAME.err.
run() {
	local name=$1 want=$2 got
	shift 2
	"$atex" test "${prov[@]}" --artifacts "$work/$name" "$@" \
		</dev/null >"$work/$name.out" 2>"$work/$name.err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name: exit $got, want $want: $(cat "$work/$name.out" "$work/$name.err")"
		return 1
	fi
}

# has FILE PATTERN WHAT: FILE matches the extended regex PATTERN.
has() {
	if grep -Eq -e "$2" "$1"; then
		return 0
	fi
	fail "$3: '$2' not in $1: $(head -c 2000 "$1")"
	return 1
}

if run pass 0 "$tree" /pass &&
	has "$work/pass.out" '^pass +/pass$' "pass printed" &&
	has "$work/pass/pass/results" '"status": ?"pass"' "pass result" &&
	has "$work/pass/pass/results" '"files": ?\["output.txt"\]' "pass files" &&
	has "$work/pass/pass/files/output.txt" '^passing on ' "pass output"; then
	pass "pass: exit 0, result, output.txt"
fi

if run fail 1 "$tree" fail &&
	has "$work/fail.out" '^fail +/fail$' "fail printed" &&
	has "$work/fail/fail/files/output.txt" '^failing$' "fail output"; then
	pass "fail: exit 1 (name given without its slash)"
fi

if run subtests 1 "$tree" /subtests &&
	has "$work/subtests.out" '^pass +/subtests/first$' "first" &&
	has "$work/subtests.out" '^fail +/subtests/second$' "second" &&
	has "$work/subtests.out" '^warn +/subtests/third +a note$' "third" &&
	has "$work/subtests.out" '^fail +/subtests$' "fallback: the worst call, as tmt" &&
	has "$work/subtests/subtests/files/first/log.txt" '^some log$' "-o file"; then
	pass "subtests: helpers, notes, uploaded file, exit 1"
fi
# The same test again into the same DIR: its earlier results and files
# are replaced, not appended to.
if [ "$kind" = local ]; then
	"$atex" test "${prov[@]}" --artifacts "$work/subtests" "$tree" /subtests \
		>/dev/null 2>&1
	n=$(grep -c . "$work/subtests/subtests/files/first/log.txt")
	r=$(grep -c . "$work/subtests/subtests/results")
	if [ "$n" -eq 1 ] && [ "$r" -eq 4 ]; then
		pass "run again into the same DIR: replaced, not appended"
	else
		fail "run again: log.txt has $n lines, results $r lines"
	fi
fi

if run binary 0 "$tree" /binary; then
	out=$work/binary/binary/files/output.txt
	sum=$(sha256sum <"$out" | cut -d' ' -f1)
	if [ "$(wc -c <"$out")" -eq 1000000 ] &&
		[ "$sum" = "$(cat "$work/binary/binary/files/sum.txt")" ]; then
		pass "binary: 1 MB of output byte-exact"
	else
		fail "binary: $(wc -c <"$out") bytes, sum $sum"
	fi
fi

if run env 0 --env 'FROM_RUN=run value' "$tree" /env; then
	pass "env: plan, test and --env variables"
fi

start=$(date +%s)
if run timeout 1 "$tree" /timeout &&
	has "$work/timeout.out" '^error +/timeout ' "timeout printed"; then
	took=$(($(date +%s) - start))
	if [ "$took" -le 20 ]; then
		pass "timeout: error result after ${took}s"
	else
		fail "timeout: took ${took}s"
	fi
fi

# Killed at its duration after it reported a pass: its own result says
# so, the subtest stays, exit 1.
if run killed 1 "$tree" /killed-after-pass &&
	has "$work/killed.out" '^pass +/killed-after-pass/sub$' "killed: subtest" &&
	has "$work/killed.out" "^error +/killed-after-pass +the test did not end within its duration and was killed \\(it had reported 'pass'\\)$" "killed: own result" &&
	! grep -q '^pass  /killed-after-pass$' "$work/killed.out"; then
	pass "killed after reporting pass: error, exit 1"
fi

# A result without status: an error that says so, exit 1; the artifacts
# keep the result as the test wrote it.
if run nostatus 1 "$tree" /no-status &&
	has "$work/nostatus.out" '^error +/no-status/sub +the result has no status: just a log$' "no status printed" &&
	has "$work/nostatus.out" '^pass +/no-status$' "no status: fallback" &&
	has "$work/nostatus/no-status/results" '^\{"name": ?"sub", ?"note": ?"just a log"\}$' "no status kept"; then
	pass "result without status: error, exit 1"
fi

# Over ssh the system can reboot, so reconnecting is not enough: atex
# waits for a new boot id, and this machine never reboots. The acted-out
# reboots must end as infrastructure failures when their duration runs
# out (shortened here to 15 s), never as a second start on the old boot.
if [ "$kind" = ssh ]; then
	short=$work/short-tree
	cp -a "$tree" "$short"
	sed -i 's/^  duration: [12]m$/  duration: 15s/' "$short/main.fmf"
	for t in reboot tmt-reboot; do
		if run "$t" 1 "$short" "/$t" &&
			has "$work/$t.out" "^infra +/$t .*did not come back after a reboot before the test's duration ran out" "$t: infra" &&
			! grep -Eq 'second boot|after the reboot' "$work/$t/$t/files/output.txt"; then
			pass "$t: no new boot over ssh: infra after the duration"
		fi
	done
elif run reboot 0 "$tree" /reboot &&
	has "$work/reboot/reboot/files/output.txt" '^first boot' "first boot" &&
	has "$work/reboot/reboot/files/output.txt" '^second boot' "second boot"; then
	pass "reboot: disconnect, reconnect, second phase"
fi

if [ "$kind" = ssh ]; then
	:
elif run tmt-reboot 0 "$tree" /tmt-reboot &&
	has "$work/tmt-reboot/tmt-reboot/files/output.txt" '^before the reboot' "before" &&
	has "$work/tmt-reboot/tmt-reboot/files/output.txt" '^after the reboot 1' "after"; then
	if grep -q "not reached" "$work/tmt-reboot/tmt-reboot/files/output.txt"; then
		fail "tmt-reboot: the test went on after the reboot command"
	else
		pass "tmt-reboot: disconnect, reboot command, second phase"
	fi
fi

if run several 1 "$tree" /pass /fail /env &&
	[ "$(grep -c . "$work/several.out")" -eq 3 ] &&
	[ -f "$work/several/pass/results" ] && [ -f "$work/several/env/results" ]
then
	pass "several tests in one run"
else
	fail "several: $(cat "$work/several.out" "$work/several.err")"
fi

# Usage and setup errors: exit 2 with a message naming the culprit.
if run unknown 2 "$tree" /nope && has "$work/unknown.err" "/nope" "unknown"; then
	pass "unknown test: exit 2"
fi
# A test named by its last components only: the message offers the name.
if run shortened 2 "$here/trees/cli-run" fail &&
	has "$work/shortened.err" "no test named 'fail'.*did you mean '/tests/fail'" "shortened"; then
	pass "shortened test name: exit 2, did you mean"
fi
if "$atex" test "${prov[@]}" "$tree" /pass >/dev/null 2>"$work/noart.err"; then
	fail "no --artifacts: exit 0"
else
	has "$work/noart.err" "--artifacts" "no --artifacts" && pass "no --artifacts: exit 2"
fi
if run notree 2 "$work/no-such-tree" /pass &&
	has "$work/notree.err" "no-such-tree" "missing tree"; then
	pass "missing tree: exit 2"
fi

# Ctrl-C mid-test: 130 within 5 s, the system released.
"$atex" test "${prov[@]}" --artifacts "$work/int" "$tree" /long \
	</dev/null >"$work/int.out" 2>"$work/int.err" &
pid=$!
i=0
while ! grep -qs started "$work/int/long/output.raw" "$work/int/long/files/output.txt" &&
	[ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
start=$(date +%s)
kill -INT $pid
wait $pid
got=$? took=$(($(date +%s) - start))
sleep 0.5
left=$(leftovers)
if [ $got -eq 130 ] && [ $took -le 5 ] && [ -z "$left" ]; then
	pass "sigint: exit 130 in ${took}s, nothing left"
else
	fail "sigint: exit $got in ${took}s, left: '$left': $(cat "$work/int.err")"
fi

# A result's name and note are the test's to choose: a newline or an
# escape sequence in them is printed escaped, one line per result.
if [ "$kind" = local ]; then
	mkdir -p "$work/esc-tree/.fmf"
	echo 1 >"$work/esc-tree/.fmf/version"
	cat >"$work/esc-tree/main.fmf" <<'FMF'
/forge:
    test: |
        j='{"status":"pass","name":"x\npass /fake","note":"l1\nl2\u001b[31m"}'
        printf 'result %d\n%s' ${#j} "$j" >&$ATEX_TEST_CONTROL
FMF
	if run esc 0 "$work/esc-tree" /forge &&
		has "$work/esc.out" '^pass  /forge/x\\npass /fake  l1\\nl2\\x1b\[31m$' \
			"escaped result line"; then
		if [ "$(wc -l <"$work/esc.out")" -eq 2 ]; then
			pass "control characters in names and notes printed escaped"
		else
			fail "escaped: not 2 lines: $(cat "$work/esc.out")"
		fi
	fi
fi

# Links planted in the artifacts directory are never followed: the link
# DIR/pass -> VICTIM is removed (not VICTIM/files and VICTIM/results), and
# the test's artifacts go to a directory of their own.
if [ "$kind" = local ]; then
	mkdir -p "$work/victim/files" "$work/planted"
	echo precious >"$work/victim/files/keep"
	echo precious >"$work/victim/results"
	ln -s "$work/victim" "$work/planted/pass"
	if run planted 0 "$tree" /pass &&
		[ -f "$work/victim/files/keep" ] &&
		has "$work/victim/results" '^precious$' "victim results kept" &&
		[ ! -L "$work/planted/pass" ] &&
		has "$work/planted/pass/results" '"status": ?"pass"' "planted: own results"; then
		pass "planted link in the artifacts directory not followed"
	else
		fail "planted link: victim: $(ls -lR "$work/victim"), artifacts: $(ls -l "$work/planted")"
	fi
	# A directory another user owns could have links planted at any
	# time: refused before anything runs.
	mkdir -p "$work/foreign"
	if chown 65534 "$work/foreign" 2>/dev/null; then
		if run foreign 2 "$tree" /pass &&
			has "$work/foreign.err" "belongs to user 65534" "foreign named"; then
			pass "an artifacts directory of another user refused"
		fi
	elif [ "$(id -u)" = 0 ]; then
		fail "foreign: root cannot chown"
	fi
	# One every user may write to, not sticky: anyone could replace
	# DIR/NAME with a link while the test runs. Refused.
	mkdir -p "$work/world"
	chmod 0777 "$work/world"
	if run world 2 "$tree" /pass &&
		has "$work/world.err" "writable by every user" "world named" &&
		[ -z "$(ls "$work/world")" ]; then
		pass "a world-writable artifacts directory refused"
	fi
	# A sticky one (--artifacts /tmp): fine, but DIR/NAME made first
	# by another user (who could make DIR/NAME/files a link while the
	# test runs) is refused.
	mkdir -p "$work/sticky/pass"
	chmod 1777 "$work/sticky"
	if chown 65534 "$work/sticky/pass" 2>/dev/null; then
		if run sticky 2 "$tree" /pass &&
			has "$work/sticky.err" "sticky/pass belongs to user 65534" \
				"sticky named" &&
			[ -z "$(ls "$work/sticky/pass")" ]; then
			rmdir "$work/sticky/pass"
			if run sticky 0 "$tree" /pass &&
				has "$work/sticky/pass/results" '"status": ?"pass"' \
					"sticky: own results"; then
				pass "a sticky artifacts directory: another user's DIR/NAME refused"
			fi
		fi
	elif [ "$(id -u)" = 0 ]; then
		fail "sticky: root cannot chown"
	fi
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

#!/bin/sh
# `atex exec --local 1` end to end: the exit status passes through (also
# 128+N for a signal), stdin/stdout go through byte-exact and stderr stays
# separate, arguments arrive intact, usage errors exit 2, and SIGINT to a
# background atex (which a non-interactive shell starts with SIGINT
# ignored) ends it with 130 within 5 s, taking the command along; the same
# from a terminal.
# usage: cli-exec.sh ATEX_CLI
set -u
atex=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

# status NAME WANT ARGS...: atex exec --local 1 -- ARGS exits WANT.
status() {
	name=$1 want=$2
	shift 2
	"$atex" exec --local 1 -- "$@" </dev/null >/dev/null 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then
		pass "$name: exit $got"
	else
		fail "$name: exit $got, want $want"
	fi
}

status exit-0 0 true
status exit-1 1 false
status exit-42 42 sh -c 'exit 42'
status killed-by-9 137 sh -c 'kill -9 $$'
status not-found 127 atex-no-such-command-here
status not-executable 126 /etc/passwd

# 10 MiB of binary data through cat, compared byte for byte.
head -c 10485760 /dev/urandom >"$work/in"
if "$atex" exec --local 1 -- cat <"$work/in" >"$work/out" 2>"$work/err" &&
	cmp -s "$work/in" "$work/out" && [ ! -s "$work/err" ]; then
	pass "stdin-stdout: 10 MiB byte-exact"
else
	fail "stdin-stdout: output differs from input"
fi

# stdout and stderr stay apart.
"$atex" exec --local 1 -- sh -c 'echo to-out; echo to-err >&2' \
	>"$work/out" 2>"$work/err" </dev/null
if [ "$(cat "$work/out")" = to-out ] && [ "$(cat "$work/err")" = to-err ]; then
	pass "stderr: separate from stdout"
else
	fail "stderr: out='$(cat "$work/out")' err='$(cat "$work/err")'"
fi

# Arguments with spaces, quotes, globs and an empty one arrive intact.
"$atex" exec --local 1 -- printf '[%s]\n' 'a b' "it's" '"q"' '*' '' \
	'$HOME' >"$work/out" </dev/null
printf '[%s]\n' 'a b' "it's" '"q"' '*' '' '$HOME' >"$work/want"
if cmp -s "$work/out" "$work/want"; then
	pass "arguments: intact"
else
	fail "arguments: got $(cat "$work/out")"
fi

# The command starts with no signal blocked or ignored, although atex
# blocks SIGINT/SIGTERM for sigwait and this background job of a
# non-interactive shell starts with SIGINT ignored.
"$atex" exec --local 1 -- grep -E '^Sig(Blk|Ign):' /proc/self/status \
	</dev/null >"$work/out" 2>&1 &
wait $!
if [ "$(grep -c ':[[:space:]]*0*$' "$work/out")" -eq 2 ]; then
	pass "signals: none blocked or ignored in the command"
else
	fail "signals: the command got $(tr '\n' ' ' <"$work/out")"
fi

# usage NAME PATTERN ARGS...: atex ARGS exits 2 with PATTERN on stderr.
usage() {
	name=$1 pattern=$2
	shift 2
	"$atex" "$@" >"$work/out" 2>"$work/err" </dev/null
	got=$?
	if [ "$got" -ne 2 ]; then
		fail "usage $name: exit $got, want 2"
	elif ! grep -Eq -e "$pattern" "$work/err"; then
		fail "usage $name: stderr '$(cat "$work/err")' lacks '$pattern'"
	else
		pass "usage $name: $(head -n 1 "$work/err")"
	fi
}

usage no-command "COMMAND" exec --local 1
usage no-command-dashes "COMMAND" exec --local 1 --
usage no-provisioner "--local" exec -- true
usage two-kinds "one of" exec --local 1 --ssh host -- true
usage bad-local "--local.*'x'" exec --local x -- true
usage zero-local "--local.*'0'" exec --local 0 -- true
usage local-twice "--local given twice" exec --local 1 --local 2 -- true
usage unknown-option "unknown option '--nope'" exec --nope -- true
usage missing-value "needs a value" exec --local
usage identity-alone "--identity needs --ssh" exec --local 1 --identity k -- true
usage count-alone "--count needs --podman" exec --local 1 --count 2 -- true
usage bad-ssh-host "bad host 'h:0'" exec --ssh h:0 -- true

# SIGINT to a background atex: 130 within 5 s, and the command is gone.
"$atex" exec --local 1 -- sh -c 'echo $$ >"$1"; exec sleep 100' sh \
	"$work/pid" </dev/null >/dev/null 2>&1 &
atex_pid=$!
i=0
while [ ! -s "$work/pid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep_pid=$(cat "$work/pid" 2>/dev/null)
start=$(date +%s)
kill -INT "$atex_pid"
# A watchdog so that a hung atex fails the test instead of the suite.
(sleep 10; kill -KILL "$atex_pid") >/dev/null 2>&1 &
watchdog=$!
wait "$atex_pid"
got=$?
took=$(($(date +%s) - start))
kill "$watchdog" 2>/dev/null
if [ -z "$sleep_pid" ]; then
	fail "sigint: the command never started"
elif [ "$got" -ne 130 ]; then
	fail "sigint: exit $got, want 130"
elif [ "$took" -gt 5 ]; then
	fail "sigint: took $took s"
elif kill -0 "$sleep_pid" 2>/dev/null; then
	fail "sigint: sleep $sleep_pid still running"
	kill -KILL "$sleep_pid"
else
	pass "sigint: exit 130 in ${took} s, command gone"
fi

# SIGTERM likewise gives 143.
rm -f "$work/pid"
"$atex" exec --local 1 -- sh -c 'echo $$ >"$1"; exec sleep 100' sh \
	"$work/pid" </dev/null >/dev/null 2>&1 &
atex_pid=$!
i=0
while [ ! -s "$work/pid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -TERM "$atex_pid"
wait "$atex_pid"
got=$?
if [ "$got" -eq 143 ]; then
	pass "sigterm: exit 143"
else
	fail "sigterm: exit $got, want 143"
fi

# From an interactive terminal (script(1) gives atex a pty as its
# controlling terminal, in the foreground): the command, in a process group
# of its own, still reads the terminal through atex instead of stopping on
# SIGTTIN; Ctrl-D ends its input; Ctrl-C reaches atex, which exits 130.
# tty NAME INPUT WANT COMMAND...: the pty's output (with the terminal's
# echo) must contain WANT within 10 s.
tty() {
	name=$1 input=$2 want=$3
	shift 3
	# The input comes once the command runs (it creates $work/ready): a
	# Ctrl-C before atex has its handlers would kill atex and the shell
	# that script(1) starts, and a loaded machine can take seconds.
	# script(1) runs $SHELL: bash, because dash (a CI's /bin/sh) dies of
	# the terminal's SIGINT itself instead of waiting for atex's 130.
	rm -f "$work/ready"
	(i=0
	 while [ ! -e "$work/ready" ] && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	 done
	 printf "$input"; sleep 3) |
		SHELL=/bin/bash timeout 30 script -qec "$* </dev/tty; echo rc=\$?" /dev/null \
		>"$work/tty" 2>&1
	if tr -d '\r' <"$work/tty" | grep -q -e "$want"; then
		pass "tty $name"
	else
		fail "tty $name: got '$(tr -d '\r' <"$work/tty" | tr '\n' '|')'"
	fi
}
ready="touch $work/ready; exec"
tty read "hello" "^hellohellorc=0$" "$atex" exec --local 1 -- \
	sh -c "'$ready head -c 5'"
tty ctrl-d 'abc\n\004' "^4$" "$atex" exec --local 1 -- sh -c "'$ready wc -c'"
tty ctrl-c '\003' "rc=130" "$atex" exec --local 1 -- \
	sh -c "'$ready sleep 30'"

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

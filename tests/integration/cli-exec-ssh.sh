#!/bin/bash
# `atex exec --ssh` end to end against a private sshd on 127.0.0.1: exit
# statuses, 10 MiB of binary stdin/stdout byte-exact, stderr apart, a
# closed port and a wrong key fail with exit 2 and a message naming the
# host, and SIGINT ends atex with 130 within 5 s leaving no ssh process,
# no atex-ssh-* directory and no remote command behind.
# usage: cli-exec-ssh.sh ATEX_CLI
set -u
atex=$1
here=$(dirname "$0")
. "$here/sshd.sh"
work=$(mktemp -d)
failures=0
trap 'sshd_stop; rm -rf "$work"' EXIT
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

sshd_start || exit 1
# The masters' private directories go here, so that leftovers are seen.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
ssh_args=("${SSH_ATEX[@]}")

clean() {
	if ls "$TMPDIR" | grep -q atex-ssh-; then
		echo "left behind: $(ls "$TMPDIR")"
		return 1
	fi
	if pgrep -f -- "-S $TMPDIR" >/dev/null; then
		echo "ssh processes left: $(pgrep -af -- "-S $TMPDIR")"
		return 1
	fi
}

for want in 0 1 42; do
	"$atex" exec "${ssh_args[@]}" -- sh -c "exit $want" </dev/null
	got=$?
	if [ "$got" -eq "$want" ] && clean; then
		pass "exit $want"
	else
		fail "exit: $got, want $want"
	fi
done

# A command killed by a signal: 128+N, as locally (not ssh's 255), and
# nothing but the command's own stderr (the remote shell that waited for
# it does not add its "Killed" report).
for sig in TERM KILL; do
	want=$((128 + $(kill -l "$sig")))
	"$atex" exec "${ssh_args[@]}" -- sh -c "echo own >&2; kill -$sig \$\$" \
		</dev/null 2>"$work/err"
	got=$?
	if [ "$got" -eq "$want" ] && [ "$(cat "$work/err")" = own ] && clean
	then
		pass "killed by SIG$sig: exit $want, stderr the command's"
	else
		fail "killed by SIG$sig: exit $got, want $want; stderr: $(cat "$work/err")"
	fi
done

# A TMPDIR with a space: the pinned host key stays in atex's private
# directory (ssh splits an unquoted UserKnownHostsFile at spaces).
# (Without the suite's StrictHostKeyChecking=no and /dev/null options,
# so that atex pins the key itself.)
mkdir -p "$work/sp ace"
TMPDIR="$work/sp ace" "$atex" exec --ssh "$SSH_TARGET" --identity "$SSHD_KEY" \
	-- true </dev/null
got=$?
if [ "$got" -eq 0 ] && [ ! -e "$work/sp" ] && [ -z "$(ls "$work/sp ace")" ]; then
	pass "TMPDIR with a space: known hosts kept inside"
else
	fail "TMPDIR with a space: exit $got; $(ls -d "$work/sp" 2>&1); left: $(ls "$work/sp ace")"
fi

head -c 10485760 /dev/urandom >"$work/in"
if "$atex" exec "${ssh_args[@]}" -- cat <"$work/in" >"$work/out" \
	2>"$work/err" && cmp -s "$work/in" "$work/out" && [ ! -s "$work/err" ]
then
	pass "stdin-stdout: 10 MiB byte-exact"
else
	fail "stdin-stdout: differs ($(wc -c <"$work/out") bytes, $(cat "$work/err"))"
fi

"$atex" exec "${ssh_args[@]}" -- sh -c 'echo to-out; echo to-err >&2' \
	</dev/null >"$work/out" 2>"$work/err"
if [ "$(cat "$work/out")" = to-out ] && [ "$(cat "$work/err")" = to-err ]; then
	pass "stderr: separate"
else
	fail "stderr: out='$(cat "$work/out")' err='$(cat "$work/err")'"
fi

# A closed port: exit 2 within the connect timeout, naming host and port.
closed=$(sshd_free_port)
start=$(date +%s)
"$atex" exec --ssh "root@127.0.0.1:$closed" --identity "$SSHD_KEY" -- true \
	</dev/null 2>"$work/err"
got=$? took=$(($(date +%s) - start))
if [ $got -eq 2 ] && [ $took -le 15 ] &&
	grep -q "127.0.0.1:$closed" "$work/err"; then
	pass "closed port: exit 2 in ${took}s: $(head -n 1 "$work/err")"
else
	fail "closed port: exit $got in ${took}s: $(cat "$work/err")"
fi

# A wrong key: exit 2, naming the host and what the server said.
ssh-keygen -q -t ed25519 -N '' -f "$work/bad_key"
"$atex" exec --ssh "$SSH_TARGET" --identity "$work/bad_key" \
	--ssh-option StrictHostKeyChecking=no -- true </dev/null 2>"$work/err"
got=$?
if [ $got -eq 2 ] && grep -q "$SSH_TARGET" "$work/err" &&
	grep -q "Permission denied" "$work/err"; then
	pass "wrong key: $(head -n 1 "$work/err")"
else
	fail "wrong key: exit $got: $(cat "$work/err")"
fi

# SIGINT while the command runs: 130 within 5 s, nothing left here or
# there. The remote sleep runs under a marked name (exec -a) to find it
# by: "MARKER 300" is its command line only, not atex's, which has
# "MARKER sleep 300".
# sigint NAME PREFIX: the remote command is PREFIX, then the marked sleep.
sigint() {
	local name=$1 prefix=$2 marker=atex-sleep-$$-$1 pid got took i=0
	"$atex" exec "${ssh_args[@]}" -- bash -c "$prefix exec -a $marker sleep 300" \
		</dev/null >/dev/null 2>"$work/err" &
	pid=$!
	while ! pgrep -f "^$marker 300" >/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	start=$(date +%s)
	kill -INT $pid
	wait $pid
	got=$? took=$(($(date +%s) - start))
	sleep 0.5
	if [ $i -ge 100 ]; then
		fail "$name: the remote command never showed"
	elif [ $got -ne 130 ] || [ $took -gt 5 ]; then
		fail "$name: exit $got in ${took}s: $(cat "$work/err")"
	elif pgrep -f "^$marker 300" >/dev/null; then
		fail "$name: the remote command survived"
		pkill -f "^$marker 300"
	elif ! clean; then
		fail "$name: left something behind"
	else
		pass "$name: exit 130 in ${took}s, nothing left"
	fi
}
sigint sigint ""
# A command that ignores SIGTERM gets SIGKILL after its grace, there too.
sigint sigint-ignored "trap '' TERM INT HUP PIPE;"

# Host keys with no option of ours: the machine is in no known_hosts (a
# fresh system), its key is accepted and pinned, the user's known_hosts
# stays as it was. --ssh-strict-host-keys wants it known: refused (here
# against an empty known_hosts, not the user's).
user_kh=$(getent passwd "$(id -u)" | cut -d: -f6)/.ssh/known_hosts
kh_before=$(cat "$user_kh" 2>/dev/null)
if out=$("$atex" exec --ssh "$SSH_TARGET" --identity "$SSHD_KEY" -- echo pinned \
	</dev/null 2>"$work/err") && [ "$out" = pinned ] && clean &&
	[ "$(cat "$user_kh" 2>/dev/null)" = "$kh_before" ]; then
	pass "host key: first connect accepted and pinned"
else
	fail "host key: first connect: $out $(cat "$work/err")"
fi
"$atex" exec --ssh "$SSH_TARGET" --identity "$SSHD_KEY" --ssh-strict-host-keys \
	--ssh-option UserKnownHostsFile=/dev/null -- true </dev/null 2>"$work/err"
got=$?
if [ $got -eq 2 ] && grep -q "host key is known" "$work/err" && clean; then
	pass "host key: strict refuses an unknown host"
else
	fail "host key: strict: exit $got: $(cat "$work/err")"
fi
"$atex" exec --local 1 --ssh-strict-host-keys -- true 2>"$work/err"
got=$?
if [ $got -eq 2 ] && grep -q "needs --ssh" "$work/err"; then
	pass "host key: --ssh-strict-host-keys needs --ssh"
else
	fail "host key: strict without --ssh: exit $got"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

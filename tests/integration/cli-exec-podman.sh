#!/bin/bash
# `atex exec --podman` end to end with the test image (podman-image.sh
# builds it when missing): exit statuses, 10 MiB of binary stdin/stdout
# byte-exact, stderr apart, and SIGINT ends atex with 130 within 5 s and
# removes the container. The host's podman needs the runc runtime, the
# cgroupfs manager and lower ulimits: passed as options, as a user would.
# usage: cli-exec-podman.sh ATEX_CLI
set -u
atex=$1
here=$(dirname "$0")
work=$(mktemp -d)
failures=0
trap 'rm -rf "$work"' EXIT
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

. "$here/podman.sh"
podman_image || exit 1
podman_args=("${PODMAN_ATEX[@]}")
# Every container atex starts is named atex-*.
containers() { podman_atex_names | grep -c .; }
before=$(containers)

for want in 0 1 42; do
	"$atex" exec "${podman_args[@]}" -- sh -c "exit $want" </dev/null
	got=$?
	if [ "$got" -eq "$want" ] && [ "$(containers)" -eq "$before" ]; then
		pass "exit $want"
	else
		fail "exit: $got, want $want (containers: $(containers))"
	fi
done

head -c 10485760 /dev/urandom >"$work/in"
if "$atex" exec "${podman_args[@]}" -- cat <"$work/in" >"$work/out" \
	2>"$work/err" && cmp -s "$work/in" "$work/out" && [ ! -s "$work/err" ]
then
	pass "stdin-stdout: 10 MiB byte-exact"
else
	fail "stdin-stdout: differs ($(wc -c <"$work/out") bytes, $(cat "$work/err"))"
fi

"$atex" exec "${podman_args[@]}" -- sh -c 'echo to-out; echo to-err >&2' \
	</dev/null >"$work/out" 2>"$work/err"
if [ "$(cat "$work/out")" = to-out ] && [ "$(cat "$work/err")" = to-err ]; then
	pass "stderr: separate"
else
	fail "stderr: out='$(cat "$work/out")' err='$(cat "$work/err")'"
fi

# SIGINT while the command runs: 130 within 5 s, the container gone.
"$atex" exec "${podman_args[@]}" -- sh -c 'echo started; exec sleep 300' \
	</dev/null >"$work/out" 2>"$work/err" &
pid=$!
i=0
while ! grep -q started "$work/out" && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
start=$(date +%s)
kill -INT $pid
wait $pid
got=$? took=$(($(date +%s) - start))
if [ $got -ne 130 ] || [ $took -gt 5 ]; then
	fail "sigint: exit $got in ${took}s: $(cat "$work/err")"
elif [ "$(containers)" -ne "$before" ]; then
	fail "sigint: a container is left: $(podman_atex_names)"
else
	pass "sigint: exit 130 in ${took}s, container removed"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

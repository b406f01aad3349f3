#!/bin/bash
# Containers with systemd as init through the CLI (`--podman IMAGE
# --systemd`, the test image atex-test-systemd from podman-image.sh
# --systemd): a container is handed out with systemd running, a test that
# reboots it with tmt-reboot passes on its second start with a new init,
# the container is gone afterwards; a reboot without tmt-reboot is seen
# and the test started again; and tmt-reboot in a plain container
# (`sleep infinity` as init: nothing restarts it) fails at once with a
# message instead of waiting for a reboot that never comes.
# usage: cli-systemd-podman.sh ATEX_CLI
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
tree=$here/trees/cli-systemd
work=$(mktemp -d)
failures=0
trap 'rm -rf "$work"' EXIT
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

. "$here/podman.sh"
"$here/podman-image.sh" --systemd "${PODMAN_GLOBAL[@]}" || exit 1
prov=(--podman atex-test-systemd)
for a in "${PODMAN_GLOBAL[@]}"; do
	prov+=(--podman-arg "$a")
done
containers() { podman_atex_names | grep -c .; }
before=$(containers)

# run NAME WANT TEST ARGS...: atex test ARGS TREE TEST exits WANT; output
# in $work/NAME.*
run() {
	local name=$1 want=$2 test=$3 got
	shift 3
	"$atex" test "$@" --artifacts "$work/$name" "$tree" "$test" \
		</dev/null >"$work/$name.out" 2>"$work/$name.err"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name: exit $got, want $want: $(cat "$work/$name.out" "$work/$name.err")"
		return 1
	fi
}
output() { cat "$work/$1/${2#/}/files/output.txt" 2>/dev/null; }

if run init 0 /init "${prov[@]}" --systemd &&
	output init /init | grep -qx 'init: systemd' &&
	output init /init | grep -Eqx 'state: (running|degraded)'; then
	pass "init: systemd is PID 1 and running when the test starts"
else
	fail "init: $(output init /init)"
fi

start=$(date +%s)
if run reboot 0 /tmt-reboot "${prov[@]}" --systemd &&
	output reboot /tmt-reboot | grep -q '^before the reboot' &&
	output reboot /tmt-reboot | grep -Eq '^after the reboot 1, systemd (running|degraded)' &&
	! output reboot /tmt-reboot | grep -q 'not reached'; then
	pass "tmt-reboot: rebooted, passed on its second start ($(($(date +%s) - start)) s)"
else
	fail "tmt-reboot: $(output reboot /tmt-reboot)"
fi
if run unannounced 0 /unannounced "${prov[@]}" --systemd &&
	output unannounced /unannounced | grep -q '^started again: reboot 1' &&
	! output unannounced /unannounced | grep -q 'not reached'; then
	pass "unannounced reboot: the test started again"
else
	fail "unannounced reboot: $(output unannounced /unannounced)"
fi
if [ "$(containers)" -eq "$before" ]; then
	pass "release: no container left"
else
	fail "release: containers left: $(podman_atex_names)"
fi

# The same image without --systemd: `sleep infinity` is PID 1 and the
# container cannot reboot, though `reboot` exists there.
start=$(date +%s)
"$atex" test "${prov[@]}" --podman-run-arg=--ulimit=nofile=4096:4096 \
	--podman-run-arg=--ulimit=nproc=4096:4096 \
	--artifacts "$work/plain" "$tree" /plain-reboot \
	</dev/null >"$work/plain.out" 2>"$work/plain.err"
got=$? took=$(($(date +%s) - start))
if [ "$got" -eq 1 ] && [ "$took" -lt 60 ] &&
	output plain /plain-reboot | grep -q 'tmt-reboot: .*reboot'; then
	pass "plain container: tmt-reboot fails at once ($took s): $(output plain /plain-reboot | grep tmt-reboot:)"
else
	fail "plain container: exit $got in $took s: $(cat "$work/plain.out" "$work/plain.err"; output plain /plain-reboot)"
fi
if [ "$(containers)" -ne "$before" ]; then
	fail "plain container: containers left: $(podman_atex_names)"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi

#!/bin/bash
# restart-checks-podman.sh ATEX_CLI: tmt's restart keys and checks in
# podman containers through the CLI (the tree integration/trees/
# restart-checks, /podman), where the connection matters:
#   - restart-with-reboot in a container with systemd as init (--systemd):
#     the executor reboots it, the test starts again on a new init with
#     both counters raised;
#   - the same in a container that cannot reboot: an error saying so, at
#     once;
#   - dmesg in a container (no privileges to read the kernel ring buffer)
#     and avc (no SELinux): skipped with a note, as tmt does; the test
#     passes.
# test_restart_checks.c covers the rest over the local connection.
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
tree=$here/trees/restart-checks
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
plain=(--podman-run-arg=--ulimit=nofile=4096:4096
	--podman-run-arg=--ulimit=nproc=4096:4096)

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
results() { cat "$work/$1/${2#/}/results" 2>/dev/null; }

t=/podman/restart-reboot
want="start restart=0 reboot=0
atex: exit code 3: restarting the test (1 of 1) after a reboot
start restart=1 reboot=1
a new init"
if run reboot 0 "$t" "${prov[@]}" --systemd && [ "$(output reboot "$t")" = "$want" ]; then
	pass "restart-with-reboot: restarted on a new init"
else
	fail "restart-with-reboot: $(output reboot "$t")"
fi

start=$(date +%s)
if run refused 1 "$t" "${prov[@]}" "${plain[@]}" &&
	results refused "$t" | grep -q '"status": *"error".*restart-with-reboot: .* cannot reboot' &&
	[ $(($(date +%s) - start)) -lt 60 ]; then
	pass "restart-with-reboot without systemd: refused at once"
else
	fail "restart-with-reboot without systemd: $(results refused "$t")"
fi

t=/podman/checks
if run checks 0 "$t" "${prov[@]}" "${plain[@]}" &&
	[ "$(results checks "$t" | grep -c '"name": *"check/dmesg/[a-z-]*", *"status": *"skip".*lacks the privileges')" -eq 2 ] &&
	results checks "$t" | grep -q '"name": *"check/avc/after-test", *"status": *"skip".*SELinux is not available' &&
	[ "$(output checks "$t")" = checked ]; then
	pass "checks in a container: dmesg and avc skipped, the test passed"
else
	fail "checks in a container: $(results checks "$t")"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "3 passed, 0 failed"

#!/bin/bash
# cli-vm.sh ATEX: VMs end to end through the CLI, on real VMs of the test
# image (vm-image.sh, direct kernel boot), the tree integration/trees/cli-vm:
#   - a suite ad hoc on 2 VMs (--count 2): every result right, both VMs
#     used, at most 2 QEMU at once; a test rebooting with tmt-reboot and one
#     rebooting unannounced finish on their restart; the destructive test's
#     VM is thrown away and replaced; the accelerator QEMU runs with is the
#     one the guest sees (printed);
#   - Ctrl-C during a boot and during a test: exit 130, and within seconds
#     no QEMU process and nothing (VM directory, overlay, socket, fifo) in
#     the private $TMPDIR;
#   - a virtualization host: --vm-host root@127.0.0.1:PORT, a private sshd
#     (sshd.sh) whose sessions use a private $TMPDIR, runs a test on a VM.
# Every boot costs ~30 s of a core under TCG: 6 boots in all, at most 2 at
# once. ATEX_TEST_VM_IMAGE, _KERNEL, _INITRD, _CMDLINE name another image
# (then vm-image.sh is not run). Anything missing fails, loudly.
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
tree=$ATEX_TEST_TREES/cli-vm
work=$(mktemp -d /tmp/atex-cli-vm.XXXXXX)
failures=0
# atex's and QEMU's files (VM directories, overlays, QMP sockets, ssh
# masters) go here, so that leftovers are seen.
export TMPDIR=$work/tmp
mkdir "$TMPDIR"

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

atex_pid=
sshd_started=
cleanup() {
	# Whatever a failed check left running: our atex, then QEMU processes
	# of our directories (by pid).
	[ -n "$atex_pid" ] && kill -KILL "$atex_pid" 2>/dev/null
	for p in $(qemu_pids "$work"); do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$sshd_started" ] && sshd_stop
	rm -rf "$work"
}
trap cleanup EXIT

# qemu_pids DIR: QEMU processes whose command line names DIR.
qemu_pids() {
	pgrep -f "^[^ ]*qemu-system[^ ]* .*$1" || true
}

# leftovers DIR: what is in DIR (paths, one a line).
leftovers() {
	find "$1" -mindepth 1 2>/dev/null
}

for cmd in qemu-system-x86_64 qemu-img jq ssh ssh-keygen; do
	command -v "$cmd" >/dev/null || {
		echo "FAIL cli-vm needs $cmd"
		exit 1
	}
done
if [ -z "${ATEX_TEST_VM_IMAGE:-}" ]; then
	out=$("$here/vm-image.sh") || {
		echo "FAIL vm-image.sh could not make the test image"
		exit 1
	}
	eval "$out"
fi
for f in "${ATEX_TEST_VM_IMAGE:-}" "${ATEX_TEST_VM_KERNEL:-}" \
	"${ATEX_TEST_VM_INITRD:-}"; do
	[ -f "$f" ] || {
		echo "FAIL no image file '$f'"
		exit 1
	}
done
vm=(--vm "$ATEX_TEST_VM_IMAGE" --vm-kernel "$ATEX_TEST_VM_KERNEL"
	--vm-initrd "$ATEX_TEST_VM_INITRD" --vm-cmdline "$ATEX_TEST_VM_CMDLINE"
	--vm-key credential --vm-memory 512 --vm-boot-timeout 300)

# watch PID DIR LOG: until PID exits, appends the command lines of QEMU
# processes naming DIR to LOG (once each) and the most seen at once to
# LOG.max.
watch_qemu() {
	local pid=$1 dir=$2 log=$3 n max=0
	: >"$log"
	while kill -0 "$pid" 2>/dev/null; do
		pgrep -af "^[^ ]*qemu-system[^ ]* .*$dir" >"$log.now"
		n=$(wc -l <"$log.now")
		[ "$n" -gt "$max" ] && max=$n
		sort -u "$log" "$log.now" -o "$log"
		sleep 1
	done
	echo "$max" >"$log.max"
}

# start NAME ARGS...: atex run ARGS... into $work/NAME in the background
# (stdout, stderr kept); sets atex_pid.
start() {
	local name=$1
	shift
	"$atex" run "$@" --platform vm --results "$work/$name" "$tree" \
		>"$work/$name.out" 2>"$work/$name.err" &
	atex_pid=$!
}

# finish: waits for atex_pid; sets rc.
finish() {
	wait "$atex_pid"
	rc=$?
	atex_pid=
}

# output_of RUN TEST: the output.txt of TEST in run RUN.
output_of() {
	find "$work/$1/files" -path "*$2/output.txt" | head -n 1
}

# status_of RUN TEST: the final statuses of TEST's own results.
status_of() {
	jq -r --arg t "$2" 'select(.[2] == $t and .[3] == null) | .[1]' \
		"$work/$1/results.jsonl" | tr '\n' ' ' | sed 's/ $//'
}

# clean_after NAME DIR T0: no QEMU process naming DIR and nothing in DIR
# within 5 s of T0 (date +%s%N).
clean_after() {
	local name=$1 dir=$2 t0=$3 ms
	while [ -n "$(qemu_pids "$dir")$(leftovers "$dir")" ]; do
		ms=$((($(date +%s%N) - t0) / 1000000))
		[ "$ms" -lt 5000 ] || break
		sleep 0.1
	done
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ -n "$(qemu_pids "$dir")" ]; then
		fail "$name: QEMU still running $ms ms after: $(pgrep -af "^[^ ]*qemu-system[^ ]* .*$dir")"
	else
		pass "$name: no QEMU process left ($ms ms)"
	fi
	if [ -n "$(leftovers "$dir")" ]; then
		fail "$name: left in $dir: $(leftovers "$dir" | tr '\n' ' ')"
	else
		pass "$name: nothing left in $dir (no VM directory, socket or fifo)"
	fi
}

# --- A suite ad hoc on 2 VMs. ------------------------------------------------
echo "# booting 2 VMs of $ATEX_TEST_VM_IMAGE (then a replacement)"
t0=$(date +%s)
ATEX_LOG=info start main "${vm[@]}" --count 2
watch_qemu "$atex_pid" "$work" "$work/main.qemu" &
watcher=$!
finish
wait "$watcher"
echo "# the run took $(($(date +%s) - t0)) s"
tests="a-destructive b-reboot-tmt c-reboot-unannounced d-accel e-quick-1 e-quick-2 e-quick-3"
if [ "$rc" -eq 0 ]; then
	pass "run on 2 VMs: exit 0"
else
	fail "run on 2 VMs: exit $rc: $(grep -v ' ready$\| started on \| released$' "$work/main.err" | tail -n 8)"
fi
for t in $tests; do
	got=$(status_of main "/tests/$t")
	[ "$got" = pass ] && pass "/tests/$t: pass" ||
		fail "/tests/$t: '$got': $(tail -n 5 "$(output_of main "/tests/$t")" 2>/dev/null)"
done
systems=$(sed -n 's|^atex: run: /tests/.* started on ||p' "$work/main.err" | sort -u)
n_systems=$(echo "$systems" | grep -c .)
[ "$n_systems" -ge 2 ] && pass "tests ran on $n_systems VMs: $(echo "$systems" | tr "\n" " ")" ||
	fail "tests ran on $n_systems VMs: $(echo "$systems" | tr "\n" " ")"
max=$(cat "$work/main.qemu.max")
[ "$max" -eq 2 ] && pass "2 QEMU at once (--count 2), no more" ||
	fail "$max QEMU at once, want 2 (--count 2)"
# The reboots happened: each restart saw another boot.
for t in b-reboot-tmt c-reboot-unannounced; do
	out=$(output_of main "/tests/$t")
	if [ -n "$out" ] && grep -q "^rebooted: boot .*, then " "$out"; then
		pass "/tests/$t: $(grep '^rebooted:' "$out")"
	else
		fail "/tests/$t: no reboot in its output: $(tail -n 5 "$out" 2>/dev/null)"
	fi
done
# An unannounced reboot is told apart from a lost system by the new boot
# (docs/PROTOCOL.md): the result says so.
note=$(jq -r 'select(.[2] == "/tests/c-reboot-unannounced" and .[3] == null) | .[5] // ""' \
	"$work/main/results.jsonl")
case $note in
*"rebooted without tmt-reboot"*) pass "unannounced reboot noted: $note" ;;
*) fail "unannounced reboot: note '$note'" ;;
esac
# The destructive test's VM ran nothing after it, and another one was made
# for the tests left.
dsys=$(sed -n 's|^atex: run: /tests/a-destructive started on ||p' "$work/main.err")
next=$(grep -F "$dsys" "$work/main.err" | grep -A1 -F "/tests/a-destructive started" |
	sed -n 2p)
if [ -n "$dsys" ] && [ "$next" = "atex: run: system $dsys released" ]; then
	pass "destructive: $dsys released right after the test"
else
	fail "destructive: on '$dsys', then '$next'"
fi
n_ready=$(grep -c '^atex: run: system .* ready$' "$work/main.err")
[ "$n_ready" -ge 3 ] && pass "destructive: a fresh VM replaced it ($n_ready VMs in all)" ||
	fail "destructive: $n_ready VMs ready, want a third one for the tests left"
# The accelerator: what QEMU was told, and what the guest saw.
accel=$(grep -o -e '-accel [a-z]*' -e 'accel=[a-z]*' "$work/main.qemu" |
	sed 's/.*[ =]//' | sort -u)
virt=$(sed -n 's/^virt: //p' "$(output_of main /tests/d-accel)" 2>/dev/null)
case $accel/$virt in
tcg/qemu | kvm/kvm)
	pass "accelerator: $accel (QEMU's command line; systemd-detect-virt in the guest: $virt)"
	;;
*)
	fail "accelerator: '$accel' on QEMU's command line, '$virt' in the guest"
	accel=tcg
	;;
esac
grep -i 'accel\|kvm\|tcg' "$work/main.err" | sed 's/^/# /' | head -n 5
clean_after "run on 2 VMs" "$TMPDIR" "$(date +%s%N)"

# --- Ctrl-C while a VM boots. ------------------------------------------------
start boot-int "${vm[@]}" --vm-accel "$accel" --test e-quick-1
for _ in $(seq 1 600); do
	[ -n "$(qemu_pids "$TMPDIR")" ] && break
	sleep 0.1
done
sleep 3
n_files=$(leftovers "$TMPDIR" | wc -l)
n_sock=$(find "$TMPDIR" -type s -o -type p | wc -l)
if [ -n "$(qemu_pids "$TMPDIR")" ] && [ "$n_files" -gt 0 ] &&
	! grep -q ' ready$' "$work/boot-int.err"; then
	pass "Ctrl-C in a boot: QEMU booting, $n_files files ($n_sock sockets/fifos)"
else
	fail "Ctrl-C in a boot: no VM booting before Ctrl-C ($n_files files): $(tail -n 3 "$work/boot-int.err")"
fi
t0=$(date +%s%N)
kill -INT "$atex_pid"
finish
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" -eq 130 ] && [ "$ms" -lt 5000 ] && pass "Ctrl-C in a boot: exit 130 after $ms ms" ||
	fail "Ctrl-C in a boot: exit $rc after $ms ms: $(tail -n 3 "$work/boot-int.err")"
clean_after "Ctrl-C in a boot" "$TMPDIR" "$t0"

# --- Ctrl-C during a test. ---------------------------------------------------
endless="300.$$"
start test-int "${vm[@]}" --vm-accel "$accel" --context mode=interrupt \
	--test endless --env "ENDLESS=$endless"
for _ in $(seq 1 3000); do
	grep -q "/tests/endless started" "$work/test-int.err" 2>/dev/null && break
	kill -0 "$atex_pid" 2>/dev/null || break
	sleep 0.1
done
sleep 2
if grep -q "/tests/endless started" "$work/test-int.err" &&
	[ -n "$(qemu_pids "$TMPDIR")" ]; then
	pass "Ctrl-C in a test: the endless test runs on a VM"
else
	fail "Ctrl-C in a test: the endless test did not start: $(tail -n 3 "$work/test-int.err")"
fi
t0=$(date +%s%N)
kill -INT "$atex_pid" 2>/dev/null
finish
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" -eq 130 ] && [ "$ms" -lt 5000 ] && pass "Ctrl-C in a test: exit 130 after $ms ms" ||
	fail "Ctrl-C in a test: exit $rc after $ms ms: $(tail -n 3 "$work/test-int.err")"
clean_after "Ctrl-C in a test" "$TMPDIR" "$t0"

# --- A virtualization host: QEMU run over ssh. ------------------------------
# shellcheck source=sshd.sh
. "$here/sshd.sh"
hosttmp=$work/hosttmp
mkdir "$hosttmp"
# The host's sessions (where QEMU runs) keep their files apart from ours.
SSHD_EXTRA_CONFIG="SetEnv TMPDIR=$hosttmp"
sshd_start || {
	echo "FAIL cli-vm: no sshd"
	exit 1
}
sshd_started=1
# One key: the host's login and the VM's.
start host "${vm[@]}" --vm-accel "$accel" --vm-host "$SSH_TARGET" \
	--identity "$SSHD_KEY" --test e-quick-1
watch_qemu "$atex_pid" "$hosttmp" "$work/host.qemu" &
watcher=$!
finish
wait "$watcher"
if [ "$rc" -eq 0 ] && [ "$(status_of host /tests/e-quick-1)" = pass ]; then
	pass "--vm-host $SSH_TARGET: the test passed on $(sed -n 's|^atex: run: /tests/e-quick-1 started on ||p' "$work/host.err")"
else
	fail "--vm-host: exit $rc: $(tail -n 5 "$work/host.err")"
fi
[ "$(cat "$work/host.qemu.max")" -eq 1 ] && pass "--vm-host: QEMU ran in the host's session (its TMPDIR)" ||
	fail "--vm-host: no QEMU seen with the host's TMPDIR $hosttmp"
clean_after "--vm-host" "$hosttmp" "$(date +%s%N)"
clean_after "--vm-host (here)" "$TMPDIR" "$(date +%s%N)"

if [ "$failures" -ne 0 ]; then
	echo "$failures failures"
	exit 1
fi
echo "all VM checks passed"

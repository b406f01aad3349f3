#!/bin/bash
# The baseline of bench/vm: N bare QEMU boots, no atex. Each VM gets its own
# qcow2 overlay of IMAGE and the ssh key as a systemd credential, as the QEMU
# provisioner does; all are started at once, then `ssh ... true` is tried on
# each until it works. Prints the seconds from the first overlay to the last
# VM answering, then quits every QEMU and removes its files.
#
# usage: vm-bare.sh N IMAGE KERNEL INITRD CMDLINE KEY [MEMORY_MIB] [ACCEL]
#   KEY is a private key file whose .pub goes in; ACCEL: tcg (default) or kvm.
# Environment: ATEX_BENCH_VM_TIMEOUT (seconds per run, default 300).
set -euo pipefail

[ $# -ge 6 ] || {
	echo "usage: $0 N IMAGE KERNEL INITRD CMDLINE KEY [MEMORY_MIB] [ACCEL]" >&2
	exit 2
}
n=$1 image=$2 kernel=$3 initrd=$4 cmdline=$5 key=$6
memory=${7:-1024} accel=${8:-tcg}
timeout=${ATEX_BENCH_VM_TIMEOUT:-300}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/atex-bench-bare.XXXXXX")
pids=()
ports=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# A port nothing listens on (QEMU fails to start on a taken one; two runs
# at once are not expected).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Hltn "sport = :$p")" ] && break
	done
	echo "$p"
}

now() { date +%s.%N; }

ssh_ok() {
	ssh -q -i "$key" -p "$1" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 \
		root@127.0.0.1 true </dev/null 2>/dev/null
}

# The provisioner's QEMU arguments (src/provisioner/qemu.c), but the
# fixed port: the provisioner asks for port 0 and reads it back over QMP.
if [ "$accel" = kvm ]; then
	accel_args=(-accel kvm -cpu host)
else
	accel_args=(-accel "tcg,thread=multi")
fi
pub=$(cut -d' ' -f1,2 "$key.pub")
start=$(now)
for ((i = 0; i < n; i++)); do
	qemu-img create -q -f qcow2 -b "$(realpath "$image")" -F qcow2 \
		"$work/vm$i.qcow2"
	port=$(free_port)
	ports+=("$port")
	qemu-system-x86_64 -name "atex-bench-bare-$i" -nodefaults \
		-display none "${accel_args[@]}" -m "$memory" -smp 1 \
		-serial "file:$work/console$i.log" \
		-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
		-drive "if=virtio,format=qcow2,discard=unmap,file=$work/vm$i.qcow2" \
		-nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
		-device virtio-rng-pci \
		-smbios "type=11,value=io.systemd.credential:ssh.authorized_keys.root=$pub" \
		</dev/null >"$work/qemu$i.log" 2>&1 &
	pids+=($!)
done
for ((i = 0; i < n; i++)); do
	until ssh_ok "${ports[$i]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			echo "vm-bare.sh: QEMU $i exited:" >&2
			cat "$work/qemu$i.log" >&2
			exit 1
		fi
		if (($(printf '%.0f' "$(echo "$(now) - $start" | bc)") > timeout)); then
			echo "vm-bare.sh: VM $i did not answer ssh in $timeout s;" \
				"its console ends:" >&2
			tail -n 20 "$work/console$i.log" >&2
			exit 1
		fi
		sleep 0.2
	done
done
echo "$(now) - $start" | bc

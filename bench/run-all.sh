#!/bin/bash
# Runs every benchmark with the servers they need started here: a private
# sshd on 127.0.0.1 (tests/integration/sshd.sh) and a container of the
# test image (tests/integration/podman-image.sh); bench/vm boots the VM
# image of tests/integration/vm-image.sh. `make bench` calls it.
# usage: bench/run-all.sh BUILD_DIR
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
global=(--runtime runc --cgroup-manager cgroupfs)
. "$top/tests/integration/sshd.sh"
container=atex-bench-$$
cleanup() {
	sshd_stop
	podman "${global[@]}" rm -f -t 0 "$container" >/dev/null 2>&1
}
trap cleanup EXIT
sshd_start || exit 1
"$top/tests/integration/podman-image.sh" "${global[@]}" || exit 1
podman "${global[@]}" run -d --rm --name "$container" --network none \
	--ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
	atex-test-minbase sleep infinity >/dev/null || exit 1
export ATEX_BENCH_SSH_HOST=127.0.0.1 ATEX_BENCH_SSH_PORT=$SSHD_PORT
export ATEX_BENCH_SSH_USER=root ATEX_BENCH_SSH_KEY=$SSHD_KEY
export ATEX_BENCH_PODMAN_CONTAINER=$container
export ATEX_BENCH_PODMAN_ARGS="${global[*]}"
# The VM image's paths, as bench/vm reads them (it skips without them).
if vm_env=$("$top/tests/integration/vm-image.sh"); then
	eval "$(sed 's/^ATEX_TEST_/export ATEX_BENCH_/' <<<"$vm_env")"
fi
echo "== fmf-discover"
"$build/bench/fmf-discover"
echo "== schedule"
"$build/bench/schedule"
echo "== schedule: history (declared durations vs measured, 50 systems)"
"$build/bench/schedule" --systems 50 --seeds 100 | tail -9
echo "== connection"
"$build/bench/connection"
echo "== executor"
"$build/bench/executor"
echo "== vm"
"$build/bench/vm"
echo "== run"
"$top/bench/run.sh" "$build"
echo "== history-run"
"$top/bench/history-run.sh" "$build"
echo "== python"
/usr/bin/python3 "$top/bench/python.py" "$build"

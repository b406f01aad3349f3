# podman.sh - the podman setup shell tests share: sourced, not run.
# PODMAN_GLOBAL holds the global arguments podman needs on this kind of
# machine (runc, cgroupfs), PODMAN_ATEX the atex provisioner options for a
# container of the test image (with the lower ulimits such a host allows).
# podman_image builds or imports the image when missing; podman_atex_names
# lists the containers atex made (atex-*).

PODMAN_GLOBAL=(--runtime runc --cgroup-manager cgroupfs)
PODMAN_ATEX=(--podman atex-test-minbase)
for podman_a in "${PODMAN_GLOBAL[@]}"; do
	PODMAN_ATEX+=(--podman-arg "$podman_a")
done
PODMAN_ATEX+=(--podman-run-arg=--ulimit=nofile=4096:4096
	--podman-run-arg=--ulimit=nproc=4096:4096)

podman_image() {
	"$(dirname "${BASH_SOURCE[0]}")/podman-image.sh" "${PODMAN_GLOBAL[@]}"
}

podman_atex_names() {
	podman "${PODMAN_GLOBAL[@]}" ps -a --format '{{.Names}}' | grep '^atex-'
}

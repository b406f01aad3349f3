#!/bin/bash
# Makes sure the podman image the podman test suite runs (atex-test-minbase)
# exists, building it only when it does not.
#
# The image is a Debian minbase (bash, coreutils, util-linux, tar: all atex
# needs on a system under test, plus rsync) made with debootstrap and
# imported into podman. debootstrap takes minutes, so its result is kept as
# a tarball outside the repository (ATEX_TEST_CACHE, default
# /var/cache/atex-test): a fresh clone or a `podman system reset` on the
# same machine imports the tarball again in seconds instead of rebuilding.
# A lock serialises concurrent runs (two build trees testing at once).
#
# With --systemd first, the image is atex-test-systemd instead: the same
# minbase plus systemd-sysv (/sbin/init is systemd), for containers run with
# systemd as their init (reboot tests), from its own cached tarball.
#
# Usage: podman-image.sh [--systemd] [PODMAN GLOBAL ARGS...]
#   the arguments go before every podman subcommand ("--runtime runc").
# Environment: ATEX_TEST_IMAGE (image name), ATEX_TEST_CACHE (cache dir),
#   ATEX_DEBIAN_MIRROR (default: the first URI of the apt sources).
set -euo pipefail

cache="${ATEX_TEST_CACHE:-/var/cache/atex-test}"
suite=bookworm
if [ "${1:-}" = --systemd ]; then
	shift
	image="${ATEX_TEST_IMAGE:-atex-test-systemd}"
	tarball="$cache/systemd.tar"
	include=rsync,systemd-sysv
	# The image's command, for `podman run IMAGE` without one.
	cmd='CMD ["/sbin/init"]'
else
	image="${ATEX_TEST_IMAGE:-atex-test-minbase}"
	tarball="$cache/minbase.tar"
	include=rsync
	cmd='CMD ["/bin/bash"]'
fi

die() {
	echo "podman-image.sh: $*" >&2
	exit 1
}

# mirror: the Debian mirror to debootstrap from.
# shellcheck source=debian-mirror.sh
. "$(dirname "$0")/debian-mirror.sh"

build_tarball() {
	local dir
	command -v debootstrap >/dev/null || die "debootstrap is not installed"
	dir=$(mktemp -d "$cache/rootfs.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$dir'" EXIT
	echo "podman-image.sh: debootstrap $suite from $(mirror)" >&2
	debootstrap --variant=minbase --include="$include" "$suite" "$dir" \
		"$(mirror)" >"$tarball.log" 2>&1 ||
		die "debootstrap failed, see $tarball.log"
	# apt caches are dead weight in a test image.
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
	tar -C "$dir" -cf "$tarball.tmp" . || die "cannot write $tarball.tmp"
	# Atomic: a killed build never leaves a truncated cache behind.
	mv "$tarball.tmp" "$tarball"
	rm -rf "$dir"
	trap - EXIT
}

command -v podman >/dev/null || die "podman is not installed"
if podman "$@" image exists "$image"; then
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
# Another run may have built it while we waited for the lock.
if podman "$@" image exists "$image"; then
	exit 0
fi
[ -s "$tarball" ] || build_tarball
podman "$@" import -q --change "$cmd" "$tarball" "$image" \
	>/dev/null || die "podman import of $tarball failed"
echo "podman-image.sh: imported $image from $tarball" >&2

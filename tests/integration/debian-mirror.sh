#!/bin/bash
# Sourced by the image scripts (podman-image.sh, vm-image.sh): mirror
# prints the Debian mirror debootstrap uses. The one apt already uses: on
# a machine that reaches only its package mirror, that is the one
# debootstrap must use too. ATEX_DEBIAN_MIRROR overrides it.
mirror() {
	local f=/etc/apt/sources.list.d/debian.sources uri=""
	if [ -n "${ATEX_DEBIAN_MIRROR:-}" ]; then
		echo "$ATEX_DEBIAN_MIRROR"
		return
	fi
	if [ -r "$f" ]; then
		uri=$(awk '$1 == "URIs:" { print $2; exit }' "$f")
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

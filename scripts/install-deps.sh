#!/bin/sh
# Installs the Debian packages atex needs to build and test, skipping those
# already present, so `make demo` and `make check` work on a fresh machine.
set -eu

packages="build-essential meson ninja-build pkgconf git
clang libclang-rt-14-dev valgrind
libyaml-dev libjansson-dev libpcre2-dev libcmocka-dev
zlib1g-dev liblzma-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev curl xz-utils gzip chromium
jq libxml2-utils
podman runc conmon uidmap slirp4netns netavark aardvark-dns fuse-overlayfs
catatonit containernetworking-plugins iptables debootstrap
openssh-server openssh-client rsync
python3 python3-dev python3-pytest python3-yaml python3-jsonschema
ansible-core
qemu-system-x86 qemu-utils genisoimage ovmf
locales"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing

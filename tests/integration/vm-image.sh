#!/bin/bash
# Makes sure the minimal bootable Debian VM image the VM tests and bench/vm
# boot exists, building it only when it does not, and prints where it is.
#
# The image is a Debian minbase with systemd as init, sshd, the cloud kernel
# and what tests need (bash, coreutils, util-linux, tar, rsync), made with
# debootstrap, put on an ext4 file system with `mkfs.ext4 -d` (no loop
# device, no mount) and converted to qcow2. The kernel and initrd are copied
# out for direct kernel boot (-kernel/-initrd/-append: no boot loader, no
# firmware wait). No ssh key is inside: the provisioner passes one at boot
# as a systemd credential (ssh.authorized_keys.root through SMBIOS type 11,
# which systemd 252's tmpfiles.d/provision.conf writes to
# /root/.ssh/authorized_keys). The root password stays locked.
#
# Everything every VM of the image shares is fixed at build time on purpose
# (host keys, machine-id): a first-boot key generation would cost seconds of
# TCG time on every boot of every VM.
#
# The result lives outside the repository in $ATEX_TEST_CACHE/vm-HASH/
# (disk.qcow2, vmlinuz, initrd.img, cmdline), HASH being a hash of the
# package list and of the build functions of this script: changing either
# builds a new image, keeping the old one for trees still using it. A lock
# serialises concurrent runs; the directory appears atomically when
# complete, so a killed build never leaves a half image behind.
#
# Usage: eval "$(vm-image.sh)"
#   prints ATEX_TEST_VM_IMAGE= ATEX_TEST_VM_KERNEL= ATEX_TEST_VM_INITRD=
#   ATEX_TEST_VM_CMDLINE= assignments (shell-quoted) on stdout; progress
#   and errors on stderr.
# Environment: ATEX_TEST_CACHE (cache dir, default /var/cache/atex-test),
#   ATEX_DEBIAN_MIRROR (default: the first URI of the apt sources).
set -euo pipefail

cache="${ATEX_TEST_CACHE:-/var/cache/atex-test}"
suite=bookworm
disk_size=2G
hostname=atex-vm
# udev: the kernel's devices (virtio disk, NIC names en*); iproute2, procps:
# what tests of a real system expect; dbus: systemctl/hostnamectl/logind as on
# any real system.
packages=systemd-sysv,udev,dbus,openssh-server,linux-image-cloud-amd64,rsync,iproute2,procps
cmdline="root=/dev/vda rw console=ttyS0"

die() {
	echo "vm-image.sh: $*" >&2
	exit 1
}

# mirror: the Debian mirror to debootstrap from.
# shellcheck source=debian-mirror.sh
. "$(dirname "$0")/debian-mirror.sh"

# The rootfs made a VM: root on the virtio disk, DHCP on the user-mode NIC,
# nothing that waits for a network or a timer during boot.
configure_rootfs() {
	local root=$1
	printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' >"$root/etc/fstab"
	echo "$hostname" >"$root/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' \
		"$hostname" >"$root/etc/hosts"
	mkdir -p "$root/etc/systemd/network"
	printf '[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n' \
		>"$root/etc/systemd/network/20-dhcp.network"
	systemctl --root="$root" enable systemd-networkd.service >/dev/null 2>&1
	# The network is QEMU's user mode: DHCP answers at once, nothing needs
	# to wait for it, and apt timers would only wake a throw-away VM.
	systemctl --root="$root" mask systemd-networkd-wait-online.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
		e2scrub_reap.service >/dev/null 2>&1
	# Debian's default, written so that nothing else changes it: keys only.
	mkdir -p "$root/etc/ssh/sshd_config.d"
	printf 'PermitRootLogin prohibit-password\nUseDNS no\n' \
		>"$root/etc/ssh/sshd_config.d/atex.conf"
	# Keep the kernel's messages off the serial console during tests;
	# the console file still gets the boot log and the getty.
	printf 'kernel.printk = 4 4 1 7\n' >"$root/etc/sysctl.d/10-atex.conf"
	# apt caches are dead weight in a test image.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

build_image() {
	local out=$1 root=$1/rootfs kernel initrd
	echo "vm-image.sh: debootstrap $suite from $(mirror)" >&2
	debootstrap --variant=minbase --include="$packages" "$suite" "$root" \
		"$(mirror)" >"$out/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $out/debootstrap.log"
	configure_rootfs "$root"
	kernel=$(find "$root/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
	initrd=$(find "$root/boot" -name 'initrd.img-*' | sort -V | tail -n 1)
	[ -n "$kernel" ] && [ -n "$initrd" ] ||
		die "no kernel or initrd in $root/boot"
	cp "$kernel" "$out/vmlinuz"
	cp "$initrd" "$out/initrd.img"
	echo "$cmdline" >"$out/cmdline"
	# Sparse raw file, filled from the directory without mounting it.
	mkfs.ext4 -q -F -L atex-root -d "$root" "$out/raw.img" "$disk_size" \
		>&2 ||
		die "mkfs.ext4 -d failed"
	rm -rf "$root"
	# Uncompressed: compressed clusters cost decompression on every read of
	# every boot under TCG, for a smaller cache file only.
	qemu-img convert -O qcow2 "$out/raw.img" "$out/disk.qcow2" ||
		die "qemu-img convert failed"
	rm -f "$out/raw.img"
}

command -v debootstrap >/dev/null || die "debootstrap is not installed"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 (e2fsprogs) is not installed"
command -v qemu-img >/dev/null || die "qemu-img is not installed"

# The key: what goes in the image and how it is made (the bodies of the
# build functions as bash prints them, without comments).
key=$({
	echo "$suite $disk_size $hostname $packages $cmdline"
	declare -f configure_rootfs build_image
} | sha256sum | cut -c1-16)
dir="$cache/vm-$key"

print() {
	printf 'ATEX_TEST_VM_IMAGE=%q\n' "$dir/disk.qcow2"
	printf 'ATEX_TEST_VM_KERNEL=%q\n' "$dir/vmlinuz"
	printf 'ATEX_TEST_VM_INITRD=%q\n' "$dir/initrd.img"
	printf 'ATEX_TEST_VM_CMDLINE=%q\n' "$(cat "$dir/cmdline")"
}

if [ -s "$dir/disk.qcow2" ]; then
	print
	exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
# Another run may have built it while we waited for the lock.
if [ ! -s "$dir/disk.qcow2" ]; then
	tmp=$(mktemp -d "$cache/vm-$key.tmp.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	start=$(date +%s)
	build_image "$tmp"
	mv "$tmp/debootstrap.log" "$cache/vm-debootstrap.log"
	# mktemp made it 0700: QEMU may run as another user.
	chmod 755 "$tmp"
	mv "$tmp" "$dir"
	trap - EXIT
	echo "vm-image.sh: built $dir in $(($(date +%s) - start)) s" >&2
fi
print

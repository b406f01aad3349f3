#!/bin/bash
# atex's OS cleaning for a machine reserved from Testing Farm, run once as
# root over ssh (bash reading this on stdin) before the machine is handed
# out. It undoes only what the reservation pipeline (Testing Farm's reserve
# test, restraint, Beaker's harness) is known to leave on a fresh system,
# so that tests see the OS as its compose ships it. Each step checks
# before it acts: running it twice changes nothing more, and every change
# is logged on stdout. Any unexpected failure ends it with non-zero status
# (the machine is then not used). docs/TESTINGFARM.md lists the steps.
set -e -u -o pipefail

say() { echo "atex-cleaning: $*"; }

remove() {
	local f
	for f in "$@"; do
		if [[ -e $f || -L $f ]]; then
			rm -rf -- "$f" && say "removed $f"
		fi
	done
}

# 1. Helper commands of tmt, restraint and the Beaker harness (tests run
#    through atex bring their own).
shopt -s nullglob
remove /usr/local/bin/tmt-* /usr/local/bin/rstrnt-* /usr/local/bin/rhts-*

# 2. The reservation test's own timers, scripts and banners: the machine
#    stays until atex cancels its request (or the pipeline timeout).
if [[ ! -e /var/tmp/.testing-farm-keep ]]; then
	touch /var/tmp/.testing-farm-keep && say "created /var/tmp/.testing-farm-keep"
fi
remove /root/.reserved-until /root/bin
for f in /etc/motd /etc/profile.d/sh.local; do
	if [[ -s $f ]] && grep -qiE 'testing.?farm|reserv' "$f"; then
		: >"$f" && say "emptied $f (reservation notice)"
	fi
done

# 3. Package repositories of the Beaker harness and Testing Farm's tag
#    repositories (they are not the compose's).
remove /etc/yum.repos.d/tag-repository*.repo \
	/etc/yum.repos.d/*beakerlib*.repo \
	/etc/yum.repos.d/beaker-harness.repo \
	/etc/yum.repos.d/beaker-client.repo \
	/etc/yum.repos.d/beaker-tasks.repo \
	/etc/yum.repos.d/rcmtools.repo /etc/yum.repos.d/rcm-tools.repo \
	/etc/yum.repos.d/qa-tools.repo

# 4. Beaker's scratch mount points and restraint's rule that makes them
#    again at boot.
for m in /mnt/testarea /mnt/scratchspace; do
	if mountpoint -q "$m" 2>/dev/null; then
		umount -f "$m" && say "unmounted $m"
	fi
	if [[ -d $m ]] && rmdir -- "$m" 2>/dev/null; then
		say "removed $m"
	fi
	if grep -qE "^[^#[:space:]]+[[:space:]]+$m[[:space:]]" /etc/fstab 2>/dev/null; then
		sed -i -E "\\|^[^#[:space:]]+[[:space:]]+$m[[:space:]]|d" /etc/fstab &&
			say "removed $m from /etc/fstab"
	fi
done
if [[ -s /etc/tmpfiles.d/restraint.conf ]]; then
	: >/etc/tmpfiles.d/restraint.conf && say "emptied /etc/tmpfiles.d/restraint.conf"
fi

say "done"

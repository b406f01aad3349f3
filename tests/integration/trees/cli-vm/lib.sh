# Sourced by the tests of this tree (tests/integration/cli-vm.sh): every
# test first makes sure that no destructive test ran on its system before
# it, then says which boot of which system it runs on.
marker=/var/tmp/cli-vm-destroyed
if [ -e "$marker" ]; then
	echo "dirty system: a destructive test ran here before ($(cat "$marker"))"
	exit 9
fi
boot_id=$(cat /proc/sys/kernel/random/boot_id)
echo "boot $boot_id reboot-count ${TMT_REBOOT_COUNT:-unset}"

# reboot_check FILE: on the restart after a reboot, the boot differs from
# the one FILE recorded before it, and TMT_REBOOT_COUNT is 1.
reboot_check() {
	old=$(cat "$1") || exit 5
	if [ "$old" = "$boot_id" ]; then
		echo "restarted without a reboot: still boot $old"
		exit 6
	fi
	echo "rebooted: boot $old, then $boot_id"
}

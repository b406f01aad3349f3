# shellcheck shell=bash
# lib.sh - sourced by the tests of this tree.
# sshd_ancestor: the pid of the sshd process that serves this test's
# connection: the first sshd (sshd-session on OpenSSH 9.8 and later) among
# our ancestors.
sshd_ancestor() {
	local pid=$$ comm
	while [ "$pid" -gt 1 ]; do
		read -r comm <"/proc/$pid/comm" || return 1
		case $comm in
		sshd | sshd-session)
			echo "$pid"
			return 0
			;;
		esac
		pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status")
		[ -n "$pid" ] || return 1
	done
	return 1
}

#!/bin/bash
# Runs a test program against one kind of system, setting up what it needs
# first. For tests/integration/test_executor.c (ATEX_EXECUTOR_CONNECTION
# tells it which kind; meson sets it).
#
# usage: with-server.sh local|ssh|podman PROGRAM [ARGS...]
#
#   local   runs PROGRAM as it is.
#   ssh     starts a private sshd on 127.0.0.1 (sshd.sh), runs PROGRAM with
#           ATEX_TEST_SSH_HOST, _PORT, _USER and _KEY set, stops sshd at
#           exit. The server puts ATEX_TEST_SSH_BIN, an empty directory of
#           ours, first on the PATH of every session (SetEnv), so that the
#           program can put commands there that only its sessions see (a
#           logging apt-get).
#   podman  makes sure the image exists (podman-image.sh, with the podman
#           arguments this machine needs); the program starts and removes
#           its own container. ATEX_TEST_PODMAN_IMAGE names another image
#           (then nothing is built).
# Exits with PROGRAM's status.
set -u
if [ $# -lt 2 ]; then
	echo "usage: with-server.sh local|ssh|podman PROGRAM [ARGS...]" >&2
	exit 2
fi
kind=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
# A private $TMPDIR (atex's staging, ssh masters): runs side by side
# (make check runs the ssh and podman ones at once) do not see each
# other's leftovers.
if [ "$kind" != local ]; then
	TMPDIR=$(mktemp -d /tmp/atex-with-server-XXXXXX) || exit 1
	export TMPDIR
	with_server_tmp=$TMPDIR
fi

case $kind in
local)
	exec "$@"
	;;
ssh)
	# shellcheck source=sshd.sh
	. "$here/sshd.sh"
	bin=$(mktemp -d /tmp/atex-ssh-bin-XXXXXX) || exit 1
	trap 'sshd_stop; rm -rf "$bin" "$with_server_tmp"' EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	# sshd's own PATH for root, with our directory first. (A login shell
	# may still put directories of its own in front.)
	SSHD_EXTRA_CONFIG="SetEnv PATH=$bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	sshd_start || exit 1
	export ATEX_TEST_SSH_HOST=127.0.0.1
	export ATEX_TEST_SSH_PORT=$SSHD_PORT
	export ATEX_TEST_SSH_USER=root
	export ATEX_TEST_SSH_KEY=$SSHD_KEY
	export ATEX_TEST_SSH_BIN=$bin
	"$@"
	exit $?
	;;
podman)
	if [ -z "${ATEX_TEST_PODMAN_IMAGE:-}" ]; then
		"$here/podman-image.sh" --runtime runc --cgroup-manager cgroupfs ||
			exit 1
	fi
	"$@"
	rc=$?
	rm -rf "$with_server_tmp"
	exit $rc
	;;
*)
	echo "with-server.sh: unknown kind '$kind' (local, ssh or podman)" >&2
	exit 2
	;;
esac

# wrapper.sh - runs one test on the system under test for the atex fmf
# executor. Embedded into libatex at build time, uploaded next to the
# tests tree (WORKDIR/atex/wrapper.sh), run with bash. Needs only bash,
# coreutils and util-linux (setsid, script).
#
#   bash wrapper.sh test SENTINEL    run one test (below)
#   bash wrapper.sh install [--recommend] PKG...
#                                    install what is missing (dnf, yum or
#                                    apt-get); --recommend skips what
#                                    cannot be installed
#
# `test` reads its setup from stdin: bash code written by the executor
# (variables ATEX_*, two functions exporting the environment), ended by a
# line equal to SENTINEL (random per run). stdin then stays open for the
# whole test: end-of-file there means the connection is gone, and the test
# is killed (bash has no parent-death signal and sshd sends no SIGHUP to a
# session without a terminal). A line "disconnect" on stdin means the test
# is about to reboot the system: the control channel is closed (the test's
# next write fails) and the test goes on to reboot.
#
# With checks in the setup (ATEX_CHECKS), checks.sh snapshots the system
# before the test and after it, sending each check's result.
#
# The test runs in a new session (setsid), with stdout and stderr on the
# wrapper's stderr (the executor stores it as the test's output) and the
# control channel on descriptor ATEX_TEST_CONTROL, a pipe to a `cat` that
# copies it to the wrapper's stdout: killing that cat is how the channel is
# closed under a running test. When the test ends, leftovers of its
# process group are killed and "exitcode N TOKEN" follows on the channel
# (TOKEN: ATEX_EXIT_TOKEN of the setup, not exported). The wrapper exits
# 0; 71 when the test did not run and the wrapper's own result says why
# (required packages, an invalid plan-environment file); anything else is
# an infrastructure failure.

set -u
shopt -s extglob

atex_die() {
	printf 'atex wrapper: %s\n' "$*" >&2
	exit 70
}

# JSON, the channel, the plan-environment file: shared with tmt's helpers.
# shellcheck source=lib.sh
. "${BASH_SOURCE[0]%/*}/lib.sh" || atex_die "cannot read lib.sh"
# tmt's test checks (avc, dmesg), run in this process.
# shellcheck source=checks.sh
. "${BASH_SOURCE[0]%/*}/checks.sh" || atex_die "cannot read checks.sh"

# ---------------------------------------------------------------------------
# Packages

atex_pkg_tool() {
	local t
	for t in dnf yum apt-get; do
		if command -v "$t" >/dev/null 2>&1; then
			echo "$t"
			return 0
		fi
	done
	return 1
}

atex_pkg_installed() {
	case $1 in
	apt-get) dpkg-query -W -f '${Status}' "$2" 2>/dev/null |
		grep -q 'ok installed' ;;
	*) rpm -q --whatprovides "$2" >/dev/null 2>&1 ;;
	esac
}

atex_pkg_install() {
	local tool=$1
	shift
	case $tool in
	apt-get) DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" ;;
	*) "$tool" install -y "$@" ;;
	esac
}

# install [--recommend] PKG...: installs the packages not yet installed;
# without --recommend any failure fails, with it each package is tried
# alone and failures are only reported.
atex_install() {
	local recommend= tool pkg missing=()
	if [[ ${1:-} == --recommend ]]; then
		recommend=1
		shift
	fi
	[[ $# -eq 0 ]] && return 0
	tool=$(atex_pkg_tool) || {
		echo "atex: no dnf, yum or apt-get to install: $*" >&2
		return 1
	}
	for pkg in "$@"; do
		atex_pkg_installed "$tool" "$pkg" || missing+=("$pkg")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	if [[ -z $recommend ]]; then
		atex_pkg_install "$tool" "${missing[@]}" >&2
		return
	fi
	for pkg in "${missing[@]}"; do
		atex_pkg_install "$tool" "$pkg" >&2 ||
			echo "atex: recommended package $pkg not installed" >&2
	done
	return 0
}

# ---------------------------------------------------------------------------
# The control channel, for the wrapper's own reports.

# $1 as a JSON string for a note: as it is when UTF-8, escaped otherwise
# (package managers print what they like), in REPLY.
atex_json_text() {
	if atex_is_utf8 "$1"; then
		atex_json_str "$1"
	else
		atex_shown "$1"
		atex_json_str "$REPLY"
	fi
}

# report STATUS NOTE [FILE NAME]: a result for the test itself, with FILE
# sent as its file NAME.
atex_report() {
	local status note size
	atex_json_str "$1"
	status=$REPLY
	atex_json_text "$2"
	note=$REPLY
	if (($# < 4)); then
		atex_send "{\"status\": $status, \"note\": $note}" >&"$ATEX_FD"
		return
	fi
	size=$(stat -c %s -- "$3") || size=0
	atex_json_str "$4"
	atex_send "{\"status\": $status, \"note\": $note, \"files\": [{\"name\": $REPLY, \"length\": $size}]}" \
		"$3" "$size" >&"$ATEX_FD"
}

# ---------------------------------------------------------------------------
# One test.

atex_read_setup() {
	local end=$1 line setup=
	while IFS= read -r line; do
		if [[ $line == "$end" ]]; then
			eval "$setup" || atex_die "bad setup"
			return 0
		fi
		setup+=$line$'\n'
	done
	atex_die "setup ended early"
}

# What the test left in its TMT_TEST_DATA directory (ATEX_DATA_DIR, one
# per run of a test): sent as files of its own result, "data/PATH" (a
# partial result: the status still comes from the test), then removed
# with the directory, so that a process left running that still writes
# there does not reach the next test. Nothing there, no process started.
# Each file is sent with the length it had when listed, whatever happens
# to it meanwhile (a logger left running still appends). A name that is
# not UTF-8 cannot be carried (JSON): that file is left out, reported by
# a "warn" result (atex_refuse_name). Many files go in several results of
# at most ATEX_DATA_BATCH bytes of JSON each (the executor refuses a
# result over 1 MiB); they all join the test's own result.
ATEX_DATA_BATCH=262144
atex_submit_data() {
	# Bytes: in a UTF-8 locale, bash's read -d '' takes a name's last
	# byte that starts a sequence (Latin-1 "caf\xe9") together with the
	# NUL after it, losing that name and the next.
	local LC_ALL=C
	local d=$ATEX_DATA_DIR entries rec path size
	local json= sep= send=()
	shopt -s nullglob dotglob
	entries=("$d"/*)
	shopt -u nullglob dotglob
	if ((${#entries[@]} == 0)); then
		rmdir -- "$d" 2>/dev/null
		return 0
	fi
	while IFS= read -r -d '' rec; do
		size=${rec%% *} path=${rec#* }
		if ! atex_is_utf8 "$path"; then
			atex_refuse_name file "data/$path" >&"$ATEX_FD" 2>/dev/null
			continue
		fi
		atex_json_str "data/$path"
		json+="$sep{\"name\": $REPLY, \"length\": $size}"
		sep=", "
		send+=("$d/$path" "$size")
		if ((${#json} >= ATEX_DATA_BATCH)); then
			atex_send "{\"partial\": true, \"files\": [$json]}" \
				"${send[@]}" >&"$ATEX_FD" 2>/dev/null
			json= sep= send=()
		fi
	done < <(find "$d" -type f -printf '%s %P\0' 2>/dev/null)
	if ((${#send[@]})); then
		atex_send "{\"partial\": true, \"files\": [$json]}" "${send[@]}" \
			>&"$ATEX_FD" 2>/dev/null
	fi
	rm -rf -- "$d"
}

# Installs the test's require (all or nothing) and recommend (what can
# be) packages. What the package manager says goes to the file
# packages.txt of the test's own result, not into the test's output (tmt
# installs requirements in a step of their own). A required package that
# cannot be installed is the system's fault (infra), with the end of what
# the package manager said; the test does not run and there is no exit
# code: 71 tells the executor why. Nothing to install, no file.
atex_packages() {
	local log=${ATEX_PLAN_ENV_FILE%/plan-env}/packages.txt size
	((${#ATEX_REQUIRE[@]} + ${#ATEX_RECOMMEND[@]})) || return 0
	if ! atex_install ${ATEX_REQUIRE[@]+"${ATEX_REQUIRE[@]}"} >"$log" 2>&1; then
		atex_report infra "required packages not installed (${ATEX_REQUIRE[*]}), see packages.txt: $(tail -n 5 -- "$log")" \
			"$log" packages.txt
		rm -f -- "$log"
		atex_channel_close "$relay"
		exit 71
	fi
	atex_install --recommend ${ATEX_RECOMMEND[@]+"${ATEX_RECOMMEND[@]}"} >>"$log" 2>&1
	if [[ -s $log ]]; then
		size=$(stat -c %s -- "$log") || size=0
		atex_send "{\"partial\": true, \"files\": [{\"name\": \"packages.txt\", \"length\": $size}]}" \
			"$log" "$size" >&"$ATEX_FD"
	fi
	rm -f -- "$log"
}

# Closes the channel and waits until the relay has copied everything out:
# podman ends an exec session with its first process, dropping what its
# children still had to write. (A leftover process holding the channel
# keeps the relay, and us, here; the executor kills both after its grace.)
# bash before 5.1 cannot wait for a process substitution: look instead.
atex_channel_close() {
	eval "exec $ATEX_FD>&-"
	wait "$1" 2>/dev/null
	while kill -0 "$1" 2>/dev/null; do
		sleep 0.05
	done
}

# Whether exit code $1 asks for a restart (ATEX_RESTART_CODES).
atex_restarting() {
	local code
	for code in ${ATEX_RESTART_CODES[@]+"${ATEX_RESTART_CODES[@]}"}; do
		[[ $code == "$1" ]] && return 0
	done
	return 1
}

atex_test() {
	local pgid rc relay watcher
	[[ $# -eq 1 ]] || atex_die "usage: wrapper.sh test SENTINEL"
	# The setup sets them when the test has checks.
	ATEX_CHECKS=() ATEX_RESTART_CODES=()
	# Bytes, not characters, whatever the system's locale.
	LC_ALL=C atex_read_setup "$1"
	: "${ATEX_FD:?}" "${ATEX_PLAN_ENV_FILE:?}" "${ATEX_DATA_DIR:?}"
	# Messages on the channel, whole (lib.sh atex_locked): the test's
	# helpers take it too.
	export ATEX_CHANNEL_LOCK=$ATEX_DATA_DIR.lock
	# Kept across the starts of one run (reboots).
	mkdir -p -- "$ATEX_DATA_DIR" || atex_die "cannot make $ATEX_DATA_DIR"

	# The control channel: a pipe to a copy onto our stdout.
	eval "exec $ATEX_FD> >(exec cat)"
	relay=$!
	# Our stdin, kept on descriptor 4: a background job's own stdin
	# is /dev/null.
	exec 4<&0

	printf '%s\n' "$ATEX_METADATA" >"$ATEX_METADATA_FILE" ||
		atex_die "cannot write $ATEX_METADATA_FILE"
	atex_packages
	# Before the test's environment applies: the checks' commands are
	# the system's, not the test's.
	atex_checks before-test

	# The plan-environment file is read as tmt reads it, never run; a
	# file tmt would refuse fails the test before it starts ("error").
	atex_env_plan
	if ! atex_plan_env_load "$ATEX_PLAN_ENV_FILE"; then
		atex_report error "TMT_PLAN_ENVIRONMENT_FILE: $REPLY (tmt reads it as NAME=VALUE words, see docs/PROTOCOL.md); the test did not run"
		atex_channel_close "$relay"
		exit 71
	fi
	atex_env_test
	export PATH="$ATEX_BIN:$PATH"
	# tmt's `framework: beakerlib` (beakerlib.sh); the shell framework
	# reads nothing more.
	if [[ ${ATEX_FRAMEWORK:-} == beakerlib ]]; then
		# shellcheck source=beakerlib.sh
		. "${BASH_SOURCE[0]%/*}/beakerlib.sh" ||
			atex_die "cannot read beakerlib.sh"
		atex_bl_prepare
	fi
	cd "$ATEX_TEST_DIR" || atex_die "cannot enter $ATEX_TEST_DIR"

	# The test, in its own session; not a process group leader (no job
	# control here), so setsid does not fork and $! is the group.
	# --norc: with SSH_CLIENT set and a low SHLVL, bash sources ~/.bashrc
	# even for -c, which can cost more than the test itself.
	# tmt runs a shell-framework test under `set -eo pipefail`, a
	# BeakerLib one as it is: its asserts report failures, a failing
	# command does not end it.
	local shopts='-e -o pipefail'
	[[ ${ATEX_FRAMEWORK:-} == beakerlib ]] && shopts=''
	if [[ $ATEX_TTY == 1 ]]; then
		export TERM=vt100
		ATEX_TEST_SCRIPT=$ATEX_TEST_SCRIPT setsid script -qefc "stty rows 24 cols 80 2>/dev/null; exec bash --norc $shopts -c \"\$ATEX_TEST_SCRIPT\"" /dev/null \
			</dev/null >&2 4<&- &
	else
		# shellcheck disable=SC2086 # $shopts: words or none
		setsid bash --norc $shopts -c "$ATEX_TEST_SCRIPT" \
			</dev/null >&2 4<&- &
	fi
	pgid=$!

	# The watcher: "disconnect" closes the channel under the test (its
	# next write fails; it goes on to reboot the system); the end of
	# stdin kills the test, also after a disconnect (the system is going
	# down then, or the executor has given up waiting for it).
	{
		eval "exec $ATEX_FD>&-"
		while IFS= read -r line; do
			if [[ $line == disconnect ]]; then
				kill -KILL "$relay" 2>/dev/null
			fi
		done
		kill -KILL -- "-$pgid" 2>/dev/null
		kill -KILL "$relay" 2>/dev/null
	} <&4 >/dev/null &
	watcher=$!
	exec 4<&-
	trap 'kill -KILL -- "-$pgid" 2>/dev/null; kill -KILL "$relay" 2>/dev/null; exit 1' HUP PIPE

	# A trapped signal interrupts wait: wait again while the test runs.
	while :; do
		wait "$pgid" 2>/dev/null
		rc=$?
		kill -0 "$pgid" 2>/dev/null || break
	done
	# ATEX_NO_BG_KILL, ATEX_NO_EXITCODE: Python ATEX's debug switches
	# (the executor's compat_python_atex).
	[[ ${ATEX_NO_BG_KILL:-0} == 1 ]] || kill -KILL -- "-$pgid" 2>/dev/null
	kill "$watcher" 2>/dev/null
	atex_checks after-test "$rc"
	# A start the executor will restart (restart-on-exit-code) is not
	# the test's end: its journal goes on in the next start.
	[[ ${ATEX_FRAMEWORK:-} == beakerlib ]] && ! atex_restarting "$rc" &&
		atex_bl_finish
	atex_submit_data
	# With the executor's token, which the test never sees: a test that
	# writes "exitcode" itself does not end by it.
	# No lock file: no sender has begun a message (opening it makes it),
	# and the line is one write, whole in the pipe. A plain test pays no
	# flock.
	if [[ ${ATEX_NO_EXITCODE:-0} == 1 ]]; then
		:
	elif [[ -e $ATEX_CHANNEL_LOCK ]]; then
		atex_locked printf 'exitcode %d %s\n' "$rc" "$ATEX_EXIT_TOKEN" >&"$ATEX_FD" 2>/dev/null
	else
		printf 'exitcode %d %s\n' "$rc" "$ATEX_EXIT_TOKEN" >&"$ATEX_FD" 2>/dev/null
	fi
	atex_channel_close "$relay"
	[[ -e $ATEX_CHANNEL_LOCK ]] && rm -f -- "$ATEX_CHANNEL_LOCK"
	exit 0
}

case ${1:-} in
test)
	shift
	atex_test "$@"
	;;
install)
	shift
	atex_install "$@"
	;;
*)
	atex_die "usage: wrapper.sh test SENTINEL | install [--recommend] PKG..."
	;;
esac

# checks.sh - tmt's test checks (the `check` key: avc, dmesg) on the
# system under test, sourced by wrapper.sh. Embedded into libatex at build
# time, uploaded next to the wrapper.
#
# The wrapper calls atex_checks before-test before the test starts and
# atex_checks after-test when it has ended, in its own process (no extra
# command over the connection). ATEX_CHECKS (setup) lists the enabled
# checks, known ones only (the executor refuses others). Each check
# reports what tmt reports: a result named check/HOW/EVENT with status
# pass, fail, error or skip, keys "check" (HOW) and "event" (EVENT), its
# note and its log files; the executor reads those back to make the
# test's own result (the `result` key of the check: respect, xfail, info).
#
# State kept on the system, in WORKDIR/checks/: the last kernel ring
# buffer line seen (dmesg: tmt clears the buffer with `dmesg -c`; atex
# leaves it as it is and reads what came after that line) and the
# ausearch checkpoint of the test start (avc).
#
# The checks' patterns (tmt's failure-pattern of dmesg, ignore-pattern of
# avc) come as ATEX_CHECK_PATTERNS_dmesg and ATEX_CHECK_PATTERNS_avc when
# the test sets them; tmt's defaults otherwise.
#
# Hooks for the test suite, never set by the executor: ATEX_CHECK_SELINUX
# (the file whose presence means SELinux is there).

ATEX_CHECK_TYPES=AVC,USER_AVC,SELINUX_ERR

# grep [-v] FILE PATTERN...: the lines of FILE that match one of the
# patterns (-v: none of them). tmt's patterns are Python's regular
# expressions, searched anywhere in the line: grep -P (Perl's) is the
# closest; where grep has no -P, -E.
atex_check_grep() {
	local invert= file one all= sep= rc
	if [[ $1 == -v ]]; then
		invert=-v
		shift
	fi
	file=$1
	shift
	for one in "$@"; do
		all+="$sep(?:$one)"
		sep='|'
	done
	grep $invert -P -e "$all" -- "$file" 2>/dev/null
	rc=$?
	((rc == 2)) || return "$rc"
	local args=()
	for one in "$@"; do
		args+=(-e "$one")
	done
	grep $invert -E "${args[@]}" -- "$file"
}

# result HOW EVENT STATUS NOTE [FILE NAME]...: one check result.
atex_check_result() {
	local how=$1 event=$2 status=$3 note=$4 json files= sep= size send=()
	shift 4
	while (($# >= 2)); do
		size=$(stat -c %s -- "$1" 2>/dev/null) || size=0
		atex_json_str "$2"
		files+="$sep{\"name\": $REPLY, \"length\": $size}"
		sep=", "
		send+=("$1" "$size")
		shift 2
	done
	json="{\"name\": \"check/$how/$event\", \"status\": \"$status\""
	json+=", \"check\": \"$how\", \"event\": \"$event\""
	if [[ -n $note ]]; then
		atex_json_text "$note"
		json+=", \"note\": $REPLY"
	fi
	[[ -n $files ]] && json+=", \"files\": [$files]"
	atex_send "$json}" ${send[@]+"${send[@]}"} >&"$ATEX_FD" 2>/dev/null
}

# ---------------------------------------------------------------------------
# dmesg: the kernel ring buffer before and after the test; a line matching
# tmt's failure patterns fails the check.

atex_check_dmesg() {
	local event=$1 dir=$2 out rc last new file failures
	file=$dir/dmesg-$event.txt
	out=$(LC_ALL=C dmesg 2>&1)
	rc=$?
	if ((rc != 0)); then
		if [[ $out == *"ermission denied"* || $out == *"not permitted"* ]]; then
			atex_check_result dmesg "$event" skip "dmesg: saving of the kernel ring buffer was skipped: the account atex runs tests as lacks the privileges to read it (see man 2 syslog): $out"
			return
		fi
		printf '%s\n' "$out" >"$file"
		atex_check_result dmesg "$event" error "dmesg: exited with $rc: $out" \
			"$file" "dmesg-$event.txt"
		return
	fi
	# What came after the last line seen (all of it when that line is
	# gone from the buffer).
	new=$out
	if [[ -s $dir/../dmesg-last ]]; then
		last=$(<"$dir/../dmesg-last")
		if [[ -n $last && $out == *"$last"* ]]; then
			new=${out##*"$last"}
			new=${new#$'\n'}
		fi
	fi
	[[ -n $out ]] && printf '%s\n' "${out##*$'\n'}" >"$dir/../dmesg-last"
	if [[ -n $new ]]; then
		printf '%s\n' "$new" >"$file"
	else
		: >"$file"
	fi
	# tmt's defaults, unless the check's failure-pattern.
	if [[ -v ATEX_CHECK_PATTERNS_dmesg ]]; then
		failures=$(atex_check_grep "$file" "${ATEX_CHECK_PATTERNS_dmesg[@]}")
	else
		failures=$(atex_check_grep "$file" 'Call Trace:' '\ssegfault\s')
	fi
	if [[ -n $failures ]]; then
		printf '%s\n' "$failures" >"$dir/dmesg-$event-failures.txt"
		atex_check_result dmesg "$event" fail "" \
			"$file" "dmesg-$event.txt" \
			"$dir/dmesg-$event-failures.txt" "failures.txt"
		return
	fi
	atex_check_result dmesg "$event" pass "" "$file" "dmesg-$event.txt"
}

# ---------------------------------------------------------------------------
# avc: SELinux denials from the audit log since the test started
# (ausearch's checkpoint, tmt's default); skipped without SELinux.

atex_check_avc() {
	local event=$1 dir=$2 mark=$2/../avc-mark report out rc denials ok=1
	if [[ ! -e ${ATEX_CHECK_SELINUX:-/sys/fs/selinux/enforce} ]]; then
		[[ $event == after-test ]] &&
			atex_check_result avc "$event" skip "avc: the detection of AVC denials was skipped: SELinux is not available on the system"
		return
	fi
	if [[ $event == before-test ]]; then
		rm -f -- "$mark"
		LC_ALL=C ausearch --input-logs --checkpoint "$mark" \
			-m "$ATEX_CHECK_TYPES" >/dev/null 2>&1
		return
	fi
	report=$dir/avc.txt
	: >"$report"
	out=$(LC_ALL=C sestatus 2>&1) || ok=
	printf '# sestatus\n%s\n\n' "$out" >>"$report"
	out=$(LC_ALL=C rpm -q audit selinux-policy 2>&1) || ok=
	printf '# rpm -q audit selinux-policy\n%s\n\n' "$out" >>"$report"
	out=$(LC_ALL=C ausearch --input-logs --checkpoint "$mark" \
		-m "$ATEX_CHECK_TYPES" -i -ts checkpoint 2>"$dir/ausearch.err")
	rc=$?
	printf '# ausearch\n%s\n%s\n' "$out" "$(<"$dir/ausearch.err")" >>"$report"
	# ausearch exits 1 saying "<no matches>" when there is nothing.
	if ((rc != 0)) && ! { ((rc == 1)) && grep -q '<no matches>' "$dir/ausearch.err"; }; then
		ok=
	fi
	printf '%s\n' "$out" | grep -E '^type=(AVC|USER_AVC|SELINUX_ERR)\b' >"$dir/avc-all"
	# tmt's default, unless the check's ignore-pattern.
	if [[ -v ATEX_CHECK_PATTERNS_avc ]]; then
		denials=$(atex_check_grep -v "$dir/avc-all" "${ATEX_CHECK_PATTERNS_avc[@]}")
	else
		denials=$(atex_check_grep -v "$dir/avc-all" 'type=USER_AVC.*received policyload notice')
	fi
	if [[ -z $ok ]]; then
		atex_check_result avc "$event" error "avc: sestatus, rpm or ausearch failed, see avc.txt" \
			"$report" avc.txt
	elif [[ -n $denials ]]; then
		printf '%s\n' "$denials" >"$dir/avc-failures.txt"
		atex_check_result avc "$event" fail "" "$report" avc.txt \
			"$dir/avc-failures.txt" failures.txt
	else
		atex_check_result avc "$event" pass "" "$report" avc.txt
	fi
}

# checks EVENT [EXITCODE]: every enabled check for before-test or
# after-test. After a test whose exit code asks for a restart
# (ATEX_RESTART_CODES), the system is not deemed healthy: skipped, as tmt
# skips them.
atex_checks() {
	local event=$1 dir how code
	((${#ATEX_CHECKS[@]})) || return 0
	if [[ $event == after-test ]]; then
		for code in ${ATEX_RESTART_CODES[@]+"${ATEX_RESTART_CODES[@]}"}; do
			[[ $code == "${2:-}" ]] || continue
			for how in "${ATEX_CHECKS[@]}"; do
				atex_check_result "$how" "$event" skip "$how: skipped: the test asked for a restart (exit code $code), the system is not deemed healthy"
			done
			return 0
		done
	fi
	dir=${ATEX_PLAN_ENV_FILE%/plan-env}/checks/$event
	rm -rf -- "$dir"
	mkdir -p -- "$dir" || return 0
	for how in "${ATEX_CHECKS[@]}"; do
		case $how in
		dmesg) atex_check_dmesg "$event" "$dir" ;;
		avc) atex_check_avc "$event" "$dir" ;;
		esac
	done
	rm -rf -- "$dir"
}

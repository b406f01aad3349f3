# beakerlib.sh - a FAKE BeakerLib, a test fixture of atex only (BeakerLib
# is no Debian package). Tests point BeakerLib's own variable BEAKERLIB at
# this directory and source "$BEAKERLIB/beakerlib.sh". Written for atex
# after the behaviour of BeakerLib's src/journal.sh, logging.sh,
# testing.sh and libraries.sh (github.com/beakerlib/beakerlib, 2025):
# BEAKERLIB_DIR (or one from TESTID), journal.txt lines
# ":: [ HH:MM:SS ] :: [   PASS   ] :: message", phase heads and feet,
# TestResults as VAR=VALUE lines (TESTRESULT_STATE started/incomplete/
# complete, TESTRESULT_RESULT_STRING the worst phase result), the state
# kept in PersistentData across reboots, rlReport calling
# BEAKERLIB_COMMAND_REPORT_RESULT "name" RESULT LOGFILE SCORE from each
# rlPhaseEnd (the phase's part of journal.txt as the log, the name with
# non-alphanumerics as single dashes), rlFileSubmit and rlJournalEnd
# calling BEAKERLIB_COMMAND_SUBMIT_LOG -l FILE, rlImport's search. No code
# of BeakerLib is in it; journal.xml is a small stand-in of the real one.

__bl_ts() { printf -v "$1" '%(%H:%M:%S)T' -1; }

# A journal line: with a priority, BeakerLib's prefix, centred in 10.
__bl_text() {
	local msg=$1 prio=${2:-} ts left
	if [[ -n $prio ]]; then
		__bl_ts ts
		left=$(((10 + ${#prio}) / 2))
		printf -v msg ':: [ %s ] :: [%*s%*s] :: %s' "$ts" "$left" "$prio" \
			"$((10 - left))" '' "$msg"
	fi
	echo -e "$msg" >>"$BEAKERLIB_DIR/journal.txt"
	echo -e "$msg" >&2
}

__bl_save() {
	declare -p __bl_start __bl_phases_passed __bl_phases_failed \
		__bl_worst __bl_asserts_failed __bl_phase_open __bl_phase_name \
		__bl_phase_type __bl_phase_passed __bl_phase_failed \
		__bl_phase_txtstart __bl_phase_starttime |
		sed 's/^declare/declare -g/' >"$BEAKERLIB_DIR/PersistentData"
}

__bl_load() {
	[[ -r $BEAKERLIB_DIR/PersistentData ]] && . "$BEAKERLIB_DIR/PersistentData"
	return 0
}

__bl_results() {
	local state=${1:-incomplete} ecode=30
	case $__bl_worst in
	PASS) ecode=0 ;;
	WARN) ecode=10 ;;
	FAIL) ecode=20 ;;
	esac
	cat >"$BEAKERLIB_DIR/TestResults" <<EOT
# This is a result file of the test in a 'sourceable' form.
# Description of individual variables can be found in beakerlib man page.
TESTRESULT_STATE=$state
TESTRESULT_RESULT_STRING=$__bl_worst
TESTRESULT_RESULT_ECODE=$ecode
TESTRESULT_PHASES_PASSED=$__bl_phases_passed
TESTRESULT_PHASES_FAILED=$__bl_phases_failed
TESTRESULT_PHASES_SKIPPED=0
TESTRESULT_ASSERTS_FAILED=$__bl_asserts_failed
TESTRESULT_STARTTIME=$__bl_start
TESTRESULT_ENDTIME=${__bl_end:-}
TESTRESULT_DURATION=$((${__bl_end:-$__bl_start} - __bl_start))
TESTRESULT_BEAKERLIB_DIR=$BEAKERLIB_DIR
TESTRESULT_PHASES_FINGERPRINT=$(md5sum <"$BEAKERLIB_DIR/PHASE_STATUSES" | cut -d' ' -f1)
TESTRESULT_ASSERTS_FINGERPRINT=$(md5sum <"$BEAKERLIB_DIR/ASSERT_STATUSES" | cut -d' ' -f1)

EOT
}

__bl_head() {
	__bl_text "\n::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::"
	__bl_text "::   $1"
	__bl_text "::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::\n"
}

__bl_foot() {
	__bl_text "::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::::"
	__bl_text "::   Duration: $(($2 - $1))s"
	__bl_text "::   $3: $4 good, $5 bad"
	__bl_text "::   ${7:+$7 }RESULT: $6${8:+ $8}"
	__bl_text ''
}

rlJournalStart() {
	if [[ -z ${BEAKERLIB_DIR:-} ]]; then
		if [[ -n ${TESTID:-} ]]; then
			export BEAKERLIB_DIR=/var/tmp/beakerlib-$TESTID
		else
			export BEAKERLIB_DIR=$(mktemp -d /var/tmp/beakerlib-XXXXXXX)
		fi
	fi
	mkdir -p "$BEAKERLIB_DIR" || exit 1
	__bl_start=$EPOCHSECONDS __bl_end=
	__bl_phases_passed=0 __bl_phases_failed=0 __bl_worst=PASS
	__bl_asserts_failed=0 __bl_phase_open=0 __bl_phase_name=
	__bl_phase_type= __bl_phase_passed=0 __bl_phase_failed=0
	__bl_phase_txtstart=0 __bl_phase_starttime=0
	: >"$BEAKERLIB_DIR/PHASE_STATUSES"
	: >"$BEAKERLIB_DIR/ASSERT_STATUSES"
	# After a reboot: the state as the last start left it.
	__bl_load
	if [[ ! -e $BEAKERLIB_DIR/journal.meta ]]; then
		: >"$BEAKERLIB_DIR/journal.meta"
		__bl_head "TEST PROTOCOL"
		__bl_text "    Test name     : ${TMT_TEST_NAME:-unknown}"
		__bl_text "    Test started  : $(date '+%Y-%m-%d %H:%M:%S %Z')"
	fi
	__bl_save
	__bl_results started
}

rlJournalEnd() {
	__bl_end=$EPOCHSECONDS
	__bl_head "${TMT_TEST_NAME:-unknown}"
	__bl_foot "$__bl_start" "$__bl_end" Phases "$__bl_phases_passed" \
		"$__bl_phases_failed" "$__bl_worst" OVERALL "(${TMT_TEST_NAME:-unknown})"
	{
		echo '<?xml version="1.0" encoding="utf-8"?>'
		echo "<BEAKER_TEST><test_id>${TESTID:-}</test_id><log/></BEAKER_TEST>"
	} >"$BEAKERLIB_DIR/journal.xml"
	echo "#End of metafile" >>"$BEAKERLIB_DIR/journal.meta"
	if [[ -n ${TESTID:-} ]]; then
		${BEAKERLIB_COMMAND_SUBMIT_LOG:-true} -l "$BEAKERLIB_DIR/journal.xml" ||
			rlLogError "rlJournalEnd: Submit wasn't successful"
	fi
	__bl_save
	__bl_results complete
}

rlJournalPrintText() { cat "$BEAKERLIB_DIR/journal.txt"; }

rlLog() { __bl_text "$1" LOG; }
rlLogInfo() { __bl_text "$1" INFO; }
rlLogWarning() { __bl_text "$1" WARNING; }
rlLogError() { __bl_text "$1" ERROR; }

rlPhaseStart() {
	[[ $1 == FAIL || $1 == WARN ]] || {
		rlLogError "rlPhaseStart: Unknown phase type: $1"
		return 1
	}
	__bl_load
	__bl_phase_txtstart=$(wc -l <"$BEAKERLIB_DIR/journal.txt")
	__bl_head "${2:-Phase of $1 type}"
	__bl_phase_type=$1 __bl_phase_name=${2:-Phase of $1 type}
	__bl_phase_passed=0 __bl_phase_failed=0 __bl_phase_open=1
	__bl_phase_starttime=$EPOCHSECONDS
	__bl_save
}
rlPhaseStartSetup() { rlPhaseStart WARN "${1:-Setup}"; }
rlPhaseStartTest() { rlPhaseStart FAIL "${1:-Test}"; }
rlPhaseStartCleanup() { rlPhaseStart WARN "${1:-Cleanup}"; }

rlPhaseEnd() {
	local result score log name
	__bl_load
	((__bl_phase_open)) || {
		rlLogError "nothing to close - no open phase"
		return 1
	}
	score=$__bl_phase_failed
	if ((score == 0)); then
		result=PASS
		((__bl_phases_passed++))
	else
		result=$__bl_phase_type
		((__bl_phases_failed++))
	fi
	case "$__bl_worst:$result" in
	PASS:WARN | PASS:FAIL | WARN:FAIL) __bl_worst=$result ;;
	esac
	echo "$result" >>"$BEAKERLIB_DIR/PHASE_STATUSES"
	__bl_foot "$__bl_phase_starttime" "$EPOCHSECONDS" Assertions \
		"$__bl_phase_passed" "$__bl_phase_failed" "$result" '' \
		"($__bl_phase_name)"
	log=$(mktemp)
	tail -n +$((__bl_phase_txtstart + 1)) "$BEAKERLIB_DIR/journal.txt" >"$log"
	name=${__bl_phase_name//[^[:alnum:]]/-}
	name=$(sed -r 's/-+/-/g;s/^-//;s/-$//' <<<"$name")
	rlReport "$name" "$result" "$score" "$log"
	rm -f "$log"
	__bl_phase_open=0
	__bl_save
	__bl_results
}

# One assert: journal line, counters.
__bl_assert() {
	__bl_load
	__bl_text "$1" "$2"
	echo "$2" >>"$BEAKERLIB_DIR/ASSERT_STATUSES"
	if [[ $2 == PASS ]]; then
		((__bl_phase_passed++))
	else
		((__bl_phase_failed++, __bl_asserts_failed++))
	fi
	__bl_save
	[[ $2 == PASS ]]
}

rlPass() { __bl_assert "$1" PASS; }
rlFail() { __bl_assert "$1" FAIL; }
rlAssert0() {
	local r=FAIL
	[[ $2 == 0 ]] && r=PASS
	__bl_assert "$1 (Assert: expected 0, got $2)" "$r"
}
rlAssertEquals() {
	local r=FAIL
	[[ $2 == "$3" ]] && r=PASS
	__bl_assert "$1 (Assert: '$2' should equal '$3')" "$r"
}

rlRun() {
	local cmd=$1 expected=${2:-0} comment=${3:-"Command '$1'"} rc ok=FAIL e
	__bl_text "Running '$cmd'" BEGIN
	eval "$cmd"
	rc=$?
	for e in ${expected//,/ }; do
		if [[ $e == *-* ]]; then
			((rc >= ${e%-*} && rc <= ${e#*-})) && ok=PASS
		elif ((rc == e)); then
			ok=PASS
		fi
	done
	__bl_assert "$comment (Expected $expected, got $rc)" "$ok"
	return $rc
}

rlReport() {
	local name=$1 result=${2^^} score=${3:-} log=${4:-${OUTPUTFILE:-}}
	case $result in
	PASS | PASSED | PASSING) result=PASS ;;
	FAIL | FAILED | FAILING) result=FAIL ;;
	WARN | WARNED | WARNING) result=WARN ;;
	SKIP | SKIPPED | SKIPPING) result=SKIP ;;
	*)
		rlLogWarning "rlReport: Only PASS/WARN/FAIL/SKIP results are possible."
		result=WARN
		;;
	esac
	if [[ -n ${TESTID:-} ]]; then
		${BEAKERLIB_COMMAND_REPORT_RESULT:-true} "$name" "$result" "$log" "$score" ||
			rlLogError "rlReport: Failed to report the result"
	fi
}

# rlFileSubmit [-s SEP] FILE [ALIAS]: sent as ALIAS, else its path with
# slashes as SEP (a relative ./ or ../ path made absolute first).
rlFileSubmit() {
	local sep=- file alias tmp rc=255
	if [[ ${1:-} == -s ]]; then
		sep=$2
		shift 2
	fi
	file=$1
	[[ -f $file ]] || return 255
	if [[ -n ${2:-} ]]; then
		alias=$2
	else
		alias=$file
		[[ $file =~ ^\.(\.)?/ ]] && alias=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
		alias=$(tr / "$sep" <<<"$alias" | sed "s/^${sep}*//")
	fi
	rlLogInfo "Sending $file as $alias"
	tmp=$(mktemp -d)
	ln -s "$(readlink -f "$file")" "$tmp/$alias"
	${BEAKERLIB_COMMAND_SUBMIT_LOG:-true} -l "$tmp/$alias"
	rc=$?
	rm -rf "$tmp"
	return $rc
}

# rlImport LIBRARY...: COMPONENT/NAME searched in BEAKERLIB_LIBRARY_PATH
# (colon-separated), then /mnt/tests, then
# /usr/share/beakerlib-libraries, in the places BeakerLib looks.
__bl_lib_in() {
	local dir=$1 comp name c
	[[ $2 =~ ^(.*/)?([^/]+)$ ]]
	comp=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]}
	for c in "$dir/${comp}Library/$name/lib.sh" "$dir/$comp$name/lib.sh" \
		"$dir/libs/$comp$name/lib.sh" "$dir"/*/"${comp}Library/$name/lib.sh" \
		"$dir"/*/"$comp$name/lib.sh" "$dir"/libs/*/"${comp}Library/$name/lib.sh" \
		"$dir"/libs/*/"$comp$name/lib.sh"; do
		if [[ -f $c ]]; then
			REPLY=$c
			return 0
		fi
	done
	return 1
}

rlImport() {
	local lib dir found prefix rc=0
	for lib in "$@"; do
		found=
		IFS=: read -ra dirs <<<"${BEAKERLIB_LIBRARY_PATH:-}"
		for dir in "${dirs[@]}" /mnt/tests /usr/share/beakerlib-libraries; do
			[[ -n $dir ]] && __bl_lib_in "$dir" "$lib" && found=$REPLY && break
		done
		if [[ -z $found ]]; then
			rlLogError "rlImport: Could not import library $lib"
			rc=1
			continue
		fi
		rlLogInfo "rlImport: Found '$lib' in $dir"
		# As BeakerLib (libraries.sh): a library names its prefix in a
		# '#   library-prefix = PREFIX' header and defines
		# PREFIXLibraryLoaded, which must succeed.
		prefix=$(sed -n 's/.*library-prefix = \([a-zA-Z_][a-zA-Z0-9_]*\).*/\1/p' "$found" | head -n 1)
		if [[ -z $prefix ]]; then
			rlLogError "rlImport: Could not extract prefix from library $lib"
			rc=1
			continue
		fi
		# shellcheck disable=SC1090
		. "$found" || rc=1
		if ! declare -F "${prefix}LibraryLoaded" >/dev/null ||
			! "${prefix}LibraryLoaded"; then
			rlLogError "rlImport: Import of library $lib was not successful (callback failed)"
			rc=1
		fi
	done
	return $rc
}

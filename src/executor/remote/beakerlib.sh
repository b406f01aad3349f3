# beakerlib.sh - tmt's `framework: beakerlib` on the system under test,
# sourced by wrapper.sh only for such tests (the plain shell path reads
# nothing more). Embedded into libatex at build time, uploaded as
# WORKDIR/atex/beakerlib.sh. Uses the wrapper's atex_install, atex_report
# and atex_send, and its variables relay and ATEX_FD.
#
# The setup (setup.c) exports what tmt exports: BEAKERLIB_DIR (one per run
# of the test, kept across its reboots), TESTID, BEAKERLIB_COMMAND_SUBMIT_LOG
# (tmt-file-submit) and BEAKERLIB_COMMAND_REPORT_RESULT (rhts-report-result:
# each rlPhaseEnd reports its phase as a subtest with the phase's part of
# journal.txt as its log). Before the test, atex_bl_prepare makes sure
# BeakerLib is there; after it, atex_bl_finish reads the result from
# BEAKERLIB_DIR/TestResults as tmt does and sends it as the test's own.

ATEX_BL_DEFAULT=/usr/share/beakerlib

# Refuses to run the test: an "error" result saying why (with FILE as
# NAME, when given); exit 71 tells the executor the test did not run.
# shellcheck disable=SC2154 # relay: the wrapper's
atex_bl_refuse() {
	atex_report error "framework beakerlib: $1; the test did not run" "${@:2}"
	atex_channel_close "$relay"
	exit 71
}

# BeakerLib's own variable BEAKERLIB (the directory of beakerlib.sh), when
# the test's environment sets it, must hold BeakerLib; else the package's
# directory, with the package `beakerlib` installed when it is missing (as
# tmt requires it for such tests). What the package manager said goes to
# the result when the install fails.
atex_bl_prepare() {
	local log=${ATEX_PLAN_ENV_FILE%/plan-env}/beakerlib-install.txt
	if [[ -n ${BEAKERLIB:-} ]]; then
		[[ -r $BEAKERLIB/beakerlib.sh ]] ||
			atex_bl_refuse "BEAKERLIB is $BEAKERLIB, which has no readable beakerlib.sh"
	elif [[ ! -r $ATEX_BL_DEFAULT/beakerlib.sh ]]; then
		if ! atex_install beakerlib >"$log" 2>&1 ||
			[[ ! -r $ATEX_BL_DEFAULT/beakerlib.sh ]]; then
			atex_bl_refuse "BeakerLib is not installed ($ATEX_BL_DEFAULT/beakerlib.sh) and the package beakerlib could not be installed: $(tail -n 3 -- "$log")" \
				"$log" beakerlib-install.txt
		fi
		rm -f -- "$log"
	fi
	mkdir -p -- "$BEAKERLIB_DIR" ||
		atex_bl_refuse "cannot make BEAKERLIB_DIR $BEAKERLIB_DIR"
}

# The test's result from TestResults, as tmt reads it: the first
# TESTRESULT_RESULT_STRING= (to the end of its line) and TESTRESULT_STATE=
# (a word, maybe quoted). No file, or either missing: "error"; a state
# other than "complete" (rlJournalEnd not reached): "error" naming it;
# else the result string in lower case (PASS, WARN, FAIL, SKIP, ...). Sent
# as the test's own result (closed: the exit code no longer decides),
# with journal.txt and TestResults (journal.xml too when the journal was
# not ended: rlJournalEnd submits it itself) and the output as output.txt.
# $1 cut to 200 bytes ("..." after), in REPLY: a value quoted in a note
# must not make the result too big to send (the journal would go with it).
atex_bl_cut() {
	REPLY=$1
	((${#REPLY} <= 200)) || REPLY="${REPLY:0:200}..."
}

atex_bl_finish() {
	local LC_ALL=C d=$BEAKERLIB_DIR text= result= state= status=error note
	local json sep= files= send=() f size
	local re_result=$'TESTRESULT_RESULT_STRING=([^\n]*)'
	local re_state='TESTRESULT_STATE="?([A-Za-z0-9_]+)'
	if [[ ! -r $d/TestResults ]]; then
		note="beakerlib: TestResults FileError"
	else
		IFS= read -r -d '' text <"$d/TestResults"
		[[ $text =~ $re_result ]] &&
			result=${BASH_REMATCH[1]}
		[[ $text =~ $re_state ]] &&
			state=${BASH_REMATCH[1]}
		if [[ $text != *TESTRESULT_RESULT_STRING=* || -z $state ]]; then
			note="beakerlib: Result/State missing"
		elif [[ $state != complete ]]; then
			atex_bl_cut "$state"
			note="beakerlib: State '$REPLY'"
		else
			status=${result,,} note=
			case $status in
			pass | fail | warn | info | skip | error) ;;
			*)
				atex_bl_cut "$result"
				atex_shown "$REPLY"
				note="beakerlib: unknown result '$REPLY'"
				status=error
				;;
			esac
		fi
	fi
	for f in journal.txt TestResults journal.xml; do
		[[ -f $d/$f ]] || continue
		[[ $f == journal.xml && $state == complete ]] && continue
		size=$(stat -c %s -- "$d/$f") || continue
		files+="$sep{\"name\": \"$f\", \"length\": $size}" sep=", "
		send+=("$d/$f" "$size")
	done
	json="{\"status\": \"$status\""
	if [[ -n $note ]]; then
		atex_json_text "$note"
		json+=", \"note\": $REPLY"
	fi
	[[ -n $files ]] && json+=", \"files\": [$files]"
	# The test's output, as the executor's own fallback result has it.
	json+=", \"testout\": \"output.txt\""
	atex_send "$json}" ${send[@]+"${send[@]}"} >&"$ATEX_FD" 2>/dev/null
}

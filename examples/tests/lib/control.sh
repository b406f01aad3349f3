# control.sh - reporting results on the atex control channel from a bash
# test, by hand (docs/PROTOCOL.md, sections 1 and 2). Sourced by the tests
# of this tree, which run in their own directory one level below tests/:
#
#   . ../lib/control.sh
#   report '{"status": "pass", "name": "parse/empty"}'
#   report '{"status": "info", "name": "logs"}' build.log summary.json
#
# tmt's helpers (tmt-report-result, tmt-file-submit) do the same for tests
# written for tmt; tests/results/tmt-helpers.sh shows them.

[[ -n ${ATEX_TEST_CONTROL:-} ]] || {
	echo "ATEX_TEST_CONTROL is not set: run this under atex" >&2
	exit 2
}

# report JSON [FILE...]: sends the result JSON (one object, ASCII, without
# a "files" key), with the FILEs attached under their base names: the
# "files" array of names and lengths is added to the object, and the
# contents follow the JSON on the channel, in the same order.
report() {
	local json=$1 files="" f size
	shift
	for f in "$@"; do
		size=$(stat -L -c %s -- "$f")
		files+="${files:+, }{\"name\": \"${f##*/}\", \"length\": $size}"
	done
	[[ -z $files ]] || json="${json%\}}, \"files\": [$files]}"
	{
		printf 'result %d\n%s' "${#json}" "$json"
		for f in "$@"; do
			cat -- "$f"
		done
	} >&"$ATEX_TEST_CONTROL"
}

# scratch: a private directory for the test's files, removed on exit. Tests
# run several at a time on one system, so nothing goes to a fixed path.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

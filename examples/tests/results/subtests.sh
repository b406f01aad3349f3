#!/bin/bash
# Four small checks of coreutils, each reported as a subtest as soon as it
# is done; the test's own result comes last and counts them.
set -e -o pipefail
. ../lib/control.sh

passed=0
check() {
	local name=$1
	shift
	sleep 0.3
	if "$@"; then
		report "{\"status\": \"pass\", \"name\": \"$name\"}"
		passed=$((passed + 1))
	else
		report "{\"status\": \"fail\", \"name\": \"$name\"}"
	fi
}

check parse/empty test -z "$(printf '' | wc -w | tr -d ' 0')"
check parse/words test "$(echo one two three | wc -w)" -eq 3
check io/roundtrip bash -c "echo atex | base64 | base64 -d | grep -qx atex"
check io/large bash -c "head -c 1048576 /dev/zero | wc -c | grep -qx 1048576"
echo "$passed of 4 checks passed"
if [[ $passed -eq 4 ]]; then
	report '{"status": "pass", "testout": "output.txt", "note": "4 of 4 checks passed"}'
else
	report "{\"status\": \"fail\", \"testout\": \"output.txt\", \"note\": \"$passed of 4 checks passed\"}"
	exit 1
fi

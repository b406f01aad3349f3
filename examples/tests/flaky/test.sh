#!/bin/bash
# A flaky test on purpose: fails on attempt 1, passes on any later one.
set -e -o pipefail
. ../lib/control.sh

attempt=${ATEX_TEST_ATTEMPT:-1}
echo "attempt $attempt"
sleep 1
if [[ $attempt -le 1 ]]; then
	report '{"status": "fail", "testout": "output.txt", "note": "flaky on purpose: the first attempt fails, a re-run passes"}'
	exit 1
fi
report "{\"status\": \"pass\", \"testout\": \"output.txt\", \"note\": \"passed on attempt $attempt\"}"

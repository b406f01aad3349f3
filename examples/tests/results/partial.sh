#!/bin/bash
# One result opened early with "partial": true and completed as the test
# goes: later results of the same name are merged into it (new keys added,
# arrays appended, files appended), and the last one, without "partial",
# closes it. If the test died half way, what was merged so far would stay.
set -e -o pipefail
. ../lib/control.sh

report '{"status": "pass", "partial": true, "name": "stages", "done": []}'
for stage in fetch unpack build check install; do
	echo "stage $stage"
	echo "$(date +%T.%N) $stage" >"$scratch/stages.log"
	sleep 0.6
	report "{\"partial\": true, \"name\": \"stages\", \"done\": [\"$stage\"]}" \
		"$scratch/stages.log"
done
report '{"name": "stages", "note": "5 stages"}'

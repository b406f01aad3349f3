#!/bin/bash
# Makes two log files and attaches them to its own result; they end up in
# the test's artifacts as files/build.log and files/summary.json.
set -e -o pipefail
. ../lib/control.sh

for i in $(seq 1 200); do
	echo "[$i] compiling unit-$i.c"
done >"$scratch/build.log"
sleep 0.5
lines=$(wc -l <"$scratch/build.log")
printf '{"units": %d, "warnings": 0}\n' "$lines" >"$scratch/summary.json"
sleep 0.3
report "{\"status\": \"pass\", \"testout\": \"output.txt\", \"note\": \"$lines units built\"}" \
	"$scratch/build.log" "$scratch/summary.json"

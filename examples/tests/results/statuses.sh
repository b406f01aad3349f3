#!/bin/bash
# Not every subtest passes or fails: "info" records a fact, "skip" says a
# check did not apply here. Neither makes the test fail.
set -e -o pipefail
. ../lib/control.sh

report "{\"status\": \"info\", \"name\": \"kernel\", \"note\": \"$(uname -sr)\"}"
sleep 0.3
if [[ -e /sys/firmware/efi ]]; then
	report '{"status": "pass", "name": "efi"}'
else
	report '{"status": "skip", "name": "efi", "note": "not booted with EFI"}'
fi
sleep 0.3
report '{"status": "skip", "name": "gpu", "note": "no GPU on test systems"}'
report '{"status": "pass", "name": "shell", "custom": {"bash": "'"${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"'"}}'

#!/bin/bash
# Fails deterministically: the expectation of the second check is wrong on
# purpose, so that the demo has one failing test to show.
set -e -o pipefail
. ../lib/control.sh

printf '%s\n' 10 9 100 >"$scratch/numbers"
got=$(sort -n "$scratch/numbers" | tr '\n' ' ')
echo "sort -n: $got"
if [[ $got == "9 10 100 " ]]; then
	report '{"status": "pass", "name": "numeric-order"}'
else
	report '{"status": "fail", "name": "numeric-order"}'
fi

sleep 0.5
got=$(sort "$scratch/numbers" | tr '\n' ' ')
echo "sort: $got (the test expects numeric order here: known bug)"
if [[ $got == "9 10 100 " ]]; then
	report '{"status": "pass", "name": "default-order"}'
	exit 0
fi
report '{"status": "fail", "name": "default-order", "note": "plain sort is lexical"}' \
	"$scratch/numbers"
report '{"status": "fail", "testout": "output.txt", "note": "known bug: the test expects sort(1) to sort numerically without -n"}'
exit 1

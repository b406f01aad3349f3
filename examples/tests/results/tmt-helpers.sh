#!/bin/bash
# Written for tmt: the helpers that atex puts on the test's PATH turn these
# calls into control-channel results. tmt-report-result reports a subtest
# (here with its log), tmt-file-submit attaches a file to the test's own
# result, whose status then comes from the exit code.
set -e -o pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "checking gzip" | tee "$work/gzip.log"
seq 1 5000 >"$work/data"
gzip -c "$work/data" | gzip -dc | cmp - "$work/data" >>"$work/gzip.log"
tmt-report-result -o "$work/gzip.log" /compression/gzip PASS
sleep 0.4

echo "checking tar" | tee "$work/tar.log"
tar -C "$work" -cf "$work/data.tar" data
tar -tf "$work/data.tar" | grep -qx data
tmt-report-result -o "$work/tar.log" /compression/tar PASS
sleep 0.4

du -b "$work"/* >"$work/sizes.txt"
tmt-file-submit -l "$work/sizes.txt"

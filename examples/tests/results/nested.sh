#!/bin/bash
# Subtest names may contain slashes: a report groups them as a tree
# (cpu/count, memory/total...). The test's own result is left to the
# executor's fallback: pass, since the script exits 0.
set -e -o pipefail
. ../lib/control.sh

cpus=$(nproc)
echo "cpus: $cpus"
report "{\"status\": \"pass\", \"name\": \"cpu/count\", \"cpus\": $cpus}"
sleep 0.4
grep -q . /proc/cpuinfo
report '{"status": "pass", "name": "cpu/info-readable"}'
sleep 0.3
total=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
echo "memory: $total kB"
report "{\"status\": \"pass\", \"name\": \"memory/total\", \"kB\": $total}"
sleep 0.3
df -P . >"$scratch/df.txt"
report '{"status": "pass", "name": "disk/test-dir"}' "$scratch/df.txt"

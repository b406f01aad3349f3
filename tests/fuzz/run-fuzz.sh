#!/bin/sh
# Runs one libFuzzer target for a while. New inputs go to a corpus in the
# build directory; the seeds in the source tree are only read.
# usage: run-fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
set -eu
fuzzer=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work"
exec "$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 "$work" "$seeds"

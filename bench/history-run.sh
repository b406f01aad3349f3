#!/bin/bash
# bench/history-run.sh - issue 14's real run: `atex run --local 100` of 400
# tests that sleep 1 to 5 s (seeded, no `duration` key: tmt's default 5m
# for all, so longest-duration-first knows nothing), twice: the first in
# fmf order, the second with --history of the first. Target: the second
# within 5% of max(longest test, total/100) plus the pool's setup time.
#
# What is measured, from each run's results.sqlite (the attempts'
# started/ended/duration/system) and the wall clock around `atex run`:
#   makespan   launch of `atex run` to the last attempt's end (the wall
#              time to exit is printed too: it adds releasing 100 systems
#              and writing the report)
#   longest, total   of the attempts' measured durations in that run
#   setup      the pool's setup: for each system, its first attempt's
#              start minus the launch (the system's arrival, including
#              atex's start-up and discovery), averaged over the
#              systems. A system arriving at a_i can only work after
#              a_i, so (total + sum a_i)/M = total/M + mean arrival
#              bounds any schedule (bench/schedule's arrival-aware
#              bound); the first arrival + longest bounds it too.
#   bound      max(longest + first arrival, total/M + mean arrival)
#   setup run  the issue's measure: the wall time of `atex run --local M`
#              of M tests of `true` (start-up, discovery, M systems set
#              up, one trivial test each, released, the report), run
#              first; the issue's bound is max(longest, total/M) + that.
#              The arrival bound above is the stricter one (it only
#              counts each system's own arrival), and both are printed.
#
# --runs K (default 2) makes K runs, each with --history of all the
# runs before it (more attempts per test: the median settles).
#
# usage: bench/history-run.sh [BUILD_DIR] [--seed S] [--tests N]
#                             [--systems M] [--runs K]
set -u -o pipefail
build=build
seed=1 tests=400 systems=100 runs=2
if [[ $# -gt 0 && $1 != --* ]]; then
	build=$1
	shift
fi
while [[ $# -gt 0 ]]; do
	if [[ $# -lt 2 ]]; then
		echo "bench/history-run.sh: $1 needs a value" >&2
		exit 2
	fi
	case $1 in
	--seed) seed=$2 ;;
	--tests) tests=$2 ;;
	--systems) systems=$2 ;;
	--runs) runs=$2 ;;
	*) echo "usage: bench/history-run.sh [BUILD_DIR] [--seed S] [--tests N] [--systems M] [--runs K]" >&2
		exit 2 ;;
	esac
	shift 2
done
atex=$build/cli/atex
help=$("$atex" run --help 2>&1)
if [[ $help != *--history* ]]; then
	echo "bench/history-run.sh: $atex has no 'run --history'" >&2
	exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/atex-history-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work

# The tree: sleeps uniform in 1..5 s from awk's seeded rand(), tests
# named in generation order (random in length), no `duration`.
mkdir -p "$work/tree/.fmf"
echo 1 >"$work/tree/.fmf/version"
awk -v seed="$seed" -v n="$tests" 'BEGIN {
	srand(seed)
	printf "/plan:\n    discover:\n        how: fmf\n"
	printf "    execute:\n        how: tmt\n"
	for (i = 1; i <= n; i++)
		printf "/t%04d:\n    test: sleep %.2f\n", i, 1 + 4 * rand()
}' >"$work/tree/main.fmf"

# The setup run: M tests of `true`.
mkdir -p "$work/true/.fmf"
echo 1 >"$work/true/.fmf/version"
awk -v n="$systems" 'BEGIN {
	printf "/plan:\n    discover:\n        how: fmf\n"
	printf "    execute:\n        how: tmt\n"
	for (i = 1; i <= n; i++)
		printf "/t%04d:\n    test: \"true\"\n", i
}' >"$work/true/main.fmf"
setup_start=$(date -u +%s.%N)
if ! "$atex" run --local "$systems" --results "$work/true-results" \
	"$work/true" >"$work/true.log" 2>&1; then
	echo "bench/history-run.sh: the setup run failed:" >&2
	tail -20 "$work/true.log" >&2
	exit 1
fi
setup=$(awk -v a="$setup_start" -v b="$(date -u +%s.%N)" \
	'BEGIN { printf "%.2f", b - a }')

# one_run NAME ARGS...: runs, then prints the figures of its attempts.
one_run() {
	local name=$1 launch end
	shift
	launch=$(date -u +%s.%N)
	if ! "$atex" run --local "$systems" "$@" --results "$work/$name" \
		"$work/tree" >"$work/$name.log" 2>&1; then
		echo "bench/history-run.sh: atex run failed:" >&2
		tail -20 "$work/$name.log" >&2
		return 1
	fi
	end=$(date -u +%s.%N)
	/usr/bin/python3 - "$work/$name/results.sqlite" "$launch" "$end" \
		"$systems" "$name" "$setup" <<'PY'
import sqlite3, sys
from datetime import datetime
db, launch, end, m, name = sys.argv[1], float(sys.argv[2]), \
    float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
setup_run = float(sys.argv[6])
rows = sqlite3.connect(db).execute(
    "SELECT test, started, ended, duration, system FROM results"
    " WHERE subtest IS NULL AND final = 1").fetchall()
ts = lambda s: datetime.fromisoformat(s).timestamp()
first = {}
for test, started, ended, duration, system in rows:
    first[system] = min(first.get(system, 1e18), ts(started))
arrivals = sorted(t - launch for t in first.values())
total = sum(r[3] for r in rows)
longest = max(r[3] for r in rows)
last_end = max(ts(r[2]) for r in rows)
makespan = last_end - launch
setup = sum(arrivals) / len(arrivals)
bound = max(longest + arrivals[0], total / m + setup)
simple = max(longest, total / m)
print(f"{name:8} {len(rows)} tests on {len(first)} systems: makespan "
      f"{makespan:6.2f} s (exit {end - launch:6.2f} s); longest "
      f"{longest:.2f} s, total {total:.1f} s, total/{m} {total / m:.2f} s;"
      f" setup: arrivals {arrivals[0]:.2f}..{arrivals[-1]:.2f} s, "
      f"mean {setup:.2f} s")
issue = simple + setup_run
print(f"{'':8} max(longest, total/{m}) + setup run = {simple:.2f} + "
      f"{setup_run:.2f} = {issue:.2f} s: ratio {makespan / issue:.3f} "
      f"(exit {(end - launch) / issue:.3f})")
print(f"{'':8} arrival bound max(longest + first arrival, total/{m} + "
      f"mean arrival) = {bound:.2f} s: ratio {makespan / bound:.3f} "
      f"(exit {(end - launch) / bound:.3f}); without setup "
      f"{makespan / simple:.3f}")
PY
}

echo "$tests tests sleeping 1-5 s (seed $seed) on --local $systems;" \
	"setup run ($systems tests of true): $setup s"
one_run run1 || exit 1
history=(--history "$work/run1")
for ((k = 2; k <= runs; k++)); do
	one_run "run$k" "${history[@]}" || exit 1
	history+=(--history "$work/run$k")
done

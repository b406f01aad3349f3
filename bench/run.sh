#!/bin/bash
# bench/run.sh - a real `atex run --local 8` of 200 tests that sleep 0.1 to
# 3 s, against the best any schedule could do: max(longest test,
# total/8). bench/schedule simulates the same question on a virtual clock;
# this measures what the orchestrator, the executor and the local
# provisioner actually add to it.
#
# The sleeps follow bench/schedule's heavy-tailed distribution (90%
# lognormal with a median of 2 min and sigma 1, 10% Pareto from 10 min
# with alpha 1.2, clamped to 10 s..1 h), seeded, mapped linearly onto
# 0.1..3 s. Each test's `duration` key is its sleep rounded up to whole
# seconds plus a minute: a limit that never fires, and that orders the
# tests the way their sleeps do.
#
# Variants, each run --runs times (median printed):
#   fmf order    tests named in generation order, random in length
#   sorted tree  the same tests named longest first, so that fmf order
#                is longest first
#   --order longest-first   the random tree, with the longest-first policy
#
# usage: bench/run.sh [BUILD_DIR] [--runs N] [--seed S] [--tests N]
#                     [--slots N]
set -u -o pipefail
build=build
runs=3 seed=1 tests=200 slots=8
if [[ $# -gt 0 && $1 != --* ]]; then
	build=$1
	shift
fi
while [[ $# -gt 0 ]]; do
	if [[ $# -lt 2 ]]; then
		echo "bench/run.sh: $1 needs a value" >&2
		exit 2
	fi
	case $1 in
	--runs) runs=$2 ;;
	--seed) seed=$2 ;;
	--tests) tests=$2 ;;
	--slots) slots=$2 ;;
	*) echo "usage: bench/run.sh [BUILD_DIR] [--runs N] [--seed S] [--tests N] [--slots N]" >&2
		exit 2 ;;
	esac
	shift 2
done
atex=$build/cli/atex
if ! "$atex" run --help >/dev/null 2>&1; then
	echo "bench/run.sh: $atex has no 'run' command" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The sleeps, one per line, in generation order: awk's rand() seeded (the
# sequence depends on the awk, mawk or gawk, not on the run).
awk -v seed="$seed" -v n="$tests" 'BEGIN {
	srand(seed)
	for (i = 0; i < n; i++) {
		if (rand() < 0.10) {
			s = 600 / (1 - rand()) ^ (1 / 1.2)
		} else {
			u = 1 - rand(); v = rand()
			s = 120 * exp(sqrt(-2 * log(u)) * cos(2 * 3.14159265358979 * v))
		}
		if (s < 10) s = 10
		if (s > 3600) s = 3600
		printf "%.3f\n", 0.1 + (s - 10) / 3590 * 2.9
	}
}' >"$work/sleeps"

# write_tree DIR: the tree, tests named in the order of the sleeps on
# stdin.
write_tree() {
	local dir=$1 i=0 s
	mkdir -p "$dir/.fmf"
	echo 1 >"$dir/.fmf/version"
	{
		printf '/plan:\n    discover:\n        how: fmf\n'
		printf '    execute:\n        how: tmt\n'
		while read -r s; do
			i=$((i + 1))
			printf '/t%04d:\n    test: sleep %s\n' "$i" "$s"
			printf '    duration: %ds\n' $(( ${s%.*} + 61 ))
		done
	} >"$dir/main.fmf"
}
write_tree "$work/random" <"$work/sleeps"
sort -g -r "$work/sleeps" | write_tree "$work/sorted"

read -r total longest median < <(sort -g "$work/sleeps" | awk '
	{ v[NR] = $1; t += $1 }
	END { printf "%.2f %.2f %.2f\n", t, v[NR], v[int((NR + 1) / 2)] }')
bound=$(awk -v t="$total" -v l="$longest" -v m="$slots" \
	'BEGIN { b = t / m; if (l > b) b = l; printf "%.2f", b }')
echo "$tests tests on --local $slots, seed $seed: sleeps 0.1-3 s" \
	"(median $median s, longest $longest s, total $total s)"
echo "lower bound max(longest, total/$slots): $bound s"

# one_run TREE ARGS...: the wall time of one `atex run`, in seconds.
one_run() {
	local tree=$1 start end
	shift
	rm -rf "$work/results"
	start=$(date +%s.%N)
	if ! "$atex" run --local "$slots" "$@" --results "$work/results" \
		"$tree" >"$work/log" 2>&1; then
		echo "bench/run.sh: atex run failed:" >&2
		tail -20 "$work/log" >&2
		return 1
	fi
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

# variant NAME TREE ARGS...: --runs runs, their median and ratio.
variant() {
	local name=$1 tree=$2 times=() t i med
	shift 2
	for ((i = 0; i < runs; i++)); do
		t=$(one_run "$tree" "$@") || return 1
		times+=("$t")
	done
	med=$(printf '%s\n' "${times[@]}" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	printf '%-28s %-22s median %6.2f s  %5.3f x bound\n' "$name" \
		"${times[*]}" "$med" "$(awk -v a="$med" -v b="$bound" 'BEGIN { print a / b }')"
}

status=0
printf '%-28s %-22s\n' variant "wall times (s)"
variant "fmf order (random lengths)" "$work/random" || status=1
variant "tree sorted longest first" "$work/sorted" || status=1
if "$atex" run --help 2>&1 | grep -q -- '--order'; then
	variant "--order longest-first" "$work/random" \
		--order longest-first || status=1
fi
exit $status

#!/bin/bash
# compare-tmt.sh - compare the tests atex selects per plan with what tmt
# itself selects, on one tree and one context. Not run by `make check`: it
# needs a working tmt (installed, or a source checkout, see below) and
# takes about a second per plan (tmt copies the tree for each plan).
# tools/record-tmt.sh records its verdicts on our probe trees as test data.
#
#   tools/compare-tmt.sh [-c K=V]... [-k] TREE
#
# TMT   the command that runs tmt (default `tmt`); for a source checkout:
#       TMT='env PYTHONPATH=/src/tmt:/src/fmf python3 -m tmt'
# ATEX  the atex binary (default build/cli/atex next to this script)
# -k    keep the raw outputs (printed directory) instead of removing them
#
# For every plan `tmt plans ls` knows, tmt's list is what `tmt run -r
# discover -v` prints after "summary:" (names with phase prefixes, in run
# order; a plan tmt does not run, being disabled, selects nothing) and
# atex's is `atex fmf discover --plan P` (nothing when it says the node is
# not a plan). Prints one line per plan (`same N`, or both counts and a
# diff), then the totals. Exit 0 when every plan matches, 1 otherwise.
# Plans whose discover fetches a repository (url:) need the network, which
# tmt and atex are both denied here: tmt fails the whole run on them, so
# take them out of a copy of the tree first.
set -u

here=$(cd "$(dirname "$0")" && pwd)
TMT=${TMT:-tmt}
ATEX=${ATEX:-$here/../build/cli/atex}
ctx_tmt=()
ctx_atex=()
keep=0
while [ $# -gt 1 ]; do
	case $1 in
	-c)
		ctx_tmt+=(-c "$2")
		ctx_atex+=(--context "$2")
		shift 2
		;;
	-k)
		keep=1
		shift
		;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || {
	echo "usage: $0 [-c K=V]... [-k] TREE" >&2
	exit 2
}
tree=$(cd "$1" && pwd) || exit 2
work=$(mktemp -d)
[ $keep = 1 ] && echo "outputs in $work" || trap 'rm -rf "$work"' EXIT

cd "$tree" || exit 2
# shellcheck disable=SC2086
$TMT "${ctx_tmt[@]}" plans ls >"$work/plans" 2>"$work/plans.err" || {
	echo "tmt plans ls failed:" >&2
	cat "$work/plans.err" >&2
	exit 2
}
mkdir "$work/tmt" "$work/atex"
# Splits tmt's output into one file per plan: plan names start a line,
# test names follow the summary at twelve spaces.
split_tmt() {
	awk -v dir="$work/tmt" '
	NR == 1 { next }
	/^\// { plan = $0; inlist = 0; next }
	/^        summary: / { inlist = 1; next }
	inlist && /^            \// { sub(/^            /, ""); print >> (dir "/" plan_file(plan)); next }
	{ inlist = 0 }
	function plan_file(p) { gsub(/\//, "%", p); return p }
	' "$1"
}
# One run for all plans; tmt stops at the first plan that fails, so then
# each plan runs alone and a failing one is recorded as ERROR (atex must
# refuse it too).
# shellcheck disable=SC2086
if $TMT "${ctx_tmt[@]}" run -r discover -v >"$work/tmt.out" 2>&1; then
	split_tmt "$work/tmt.out"
else
	echo "note: tmt run failed, running plan by plan" >&2
	while IFS= read -r plan; do
		f=${plan//\//%}
		# shellcheck disable=SC2086
		if $TMT "${ctx_tmt[@]}" run -r discover -v plans --name "^$plan\$" \
			>"$work/tmt.$f.out" 2>&1; then
			split_tmt "$work/tmt.$f.out"
		elif ! grep -q '^No plans found' "$work/tmt.$f.out"; then
			echo ERROR >"$work/tmt/$f"
		fi
	done <"$work/plans"
fi

plans=0 same=0 ntmt=0 natex=0
while IFS= read -r plan; do
	[ -n "$plan" ] || continue
	plans=$((plans + 1))
	f=${plan//\//%}
	touch "$work/tmt/$f"
	if ! "$ATEX" fmf discover "${ctx_atex[@]}" --plan "$plan" . \
		>"$work/atex/$f" 2>"$work/atex/$f.err"; then
		if ! grep -qiE 'not a plan|disabled|enabled: false|no tests' "$work/atex/$f.err"; then
			echo "$plan: atex failed: $(head -c 300 "$work/atex/$f.err")"
			echo ERROR >"$work/atex/$f"
		else
			: >"$work/atex/$f"
		fi
	fi
	a=$(grep -v '^ERROR$' "$work/atex/$f" | wc -l)
	t=$(grep -v '^ERROR$' "$work/tmt/$f" | wc -l)
	ntmt=$((ntmt + t))
	natex=$((natex + a))
	if cmp -s "$work/tmt/$f" "$work/atex/$f"; then
		same=$((same + 1))
		echo "$plan: same $t"
	else
		echo "$plan: DIFFERENT tmt $t atex $a"
		diff "$work/tmt/$f" "$work/atex/$f" | sed 's/^/    /' | head -20
	fi
done <"$work/plans"
echo "context: ${ctx_tmt[*]:-none}; plans $plans, matching $same;" \
	"tests tmt $ntmt, atex $natex"
[ "$same" = "$plans" ]

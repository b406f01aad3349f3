#!/bin/bash
# record-tmt.sh - record what the real tmt selects, plan by plan, on the
# probe trees of tests/conformance/tmt/trees, as the expected data that
# tests/integration/tmt-selection.sh checks atex against. Not run by `make
# check` (it needs a working tmt, and takes about 20 s per tree and context);
# run it again when a tree changes or to refresh against a newer tmt, then
# update tests/conformance/PROVENANCE.md.
#
#   TMT=... tools/record-tmt.sh [TREE]...
#
# TMT    the command that runs tmt (default `tmt`); for a source checkout:
#        TMT='env PYTHONPATH=/src/tmt:/src/fmf python3 -m tmt'
# TREE   names under tests/conformance/tmt/trees (default: all of them)
# CONTEXTS  the contexts to record (default: the fixed list below)
#
# Writes expected/TREE.CONTEXT.txt for every tree and every context of the
# fixed list below (CONTEXT is `none` or K=V). For each plan `tmt plans ls`
# lists, in its order, a line `== PLAN` followed by either the names tmt's
# `run -r discover -v` prints after "summary:" (with phase prefixes, in run
# order, the same list tools/compare-tmt.sh extracts; none when it selects
# nothing), or `ERROR` (tmt refuses to run the plan), or `NOT-RUN` (tmt
# lists the plan but does not run it: disabled).
set -u

here=$(cd "$(dirname "$0")" && pwd)
conf=$here/../tests/conformance/tmt
TMT=${TMT:-tmt}
contexts=(none distro=fedora-41 distro=Fedora-41 trigger=commit arch=s390x)
# shellcheck disable=SC2206
[ -z "${CONTEXTS:-}" ] || contexts=($CONTEXTS)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Splits one `tmt run -r discover -v` output into $work/out/PLAN (the
# selected names; the file exists when tmt ran the plan): plan names start
# a line, test names follow "summary:" at twelve spaces.
split_tmt() {
	awk -v dir="$work/out" '
	NR == 1 { next }
	/^\// { plan = $0; inlist = 0; printf "" > (dir "/" pf(plan)); next }
	/^        summary: / { inlist = 1; next }
	inlist && /^            \// { sub(/^            /, ""); print >> (dir "/" pf(plan)); next }
	{ inlist = 0 }
	function pf(p) { gsub(/\//, "%", p); return p }
	' "$1"
}

# record TREE CONTEXT: writes expected/TREE.CONTEXT.txt.
record() {
	local tree=$1 ctx=$2 c=() plan f out
	[ "$ctx" = none ] || c=(-c "$ctx")
	out=$conf/expected/$tree.$ctx.txt
	rm -rf "$work/out" && mkdir "$work/out" || return 1
	cd "$conf/trees/$tree" || return 1
	# shellcheck disable=SC2086
	$TMT "${c[@]}" plans ls >"$work/plans" 2>"$work/err" || {
		echo "$tree $ctx: tmt plans ls failed:" >&2
		cat "$work/err" >&2
		return 1
	}
	# One run for all plans; tmt stops at the first plan that fails, so
	# then each plan runs alone and a failing one is an ERROR.
	# shellcheck disable=SC2086
	if $TMT "${c[@]}" run -r discover -v >"$work/run" 2>&1; then
		split_tmt "$work/run"
	else
		while IFS= read -r plan; do
			f=${plan//\//%}
			# shellcheck disable=SC2086
			if $TMT "${c[@]}" run -r discover -v plans --name "^$plan\$" \
				>"$work/run" 2>&1; then
				split_tmt "$work/run"
			elif ! grep -q '^No plans found' "$work/run"; then
				echo ERROR >"$work/out/$f"
			fi
		done <"$work/plans"
	fi
	while IFS= read -r plan; do
		[ -n "$plan" ] || continue
		f=${plan//\//%}
		echo "== $plan"
		if [ -e "$work/out/$f" ]; then
			cat "$work/out/$f"
		else
			echo NOT-RUN
		fi
	done <"$work/plans" >"$out"
	echo "$tree $ctx: $(grep -c '^== ' "$out") plans," \
		"$(grep -c '^/' "$out") tests, $(grep -c '^ERROR$' "$out") errors," \
		"$(grep -c '^NOT-RUN$' "$out") not run"
}

mkdir -p "$conf/expected" || exit 2
if [ $# -eq 0 ]; then
	# shellcheck disable=SC2046
	set -- $(cd "$conf/trees" && for t in */; do echo "${t%/}"; done)
fi
rc=0
for tree in "$@"; do
	for ctx in "${contexts[@]}"; do
		record "$tree" "$ctx" || rc=1
	done
done
exit $rc

#!/bin/bash
# The tests atex selects per plan against what the real tmt selected,
# recorded by tools/record-tmt.sh in CONF/expected/TREE.CONTEXT.txt (see
# tests/conformance/tmt/README.md): for every recorded tree, context and
# plan, `atex fmf discover [--context K=V] --plan PLAN CONF/trees/TREE`
# must list the same names in the same order (exit 0); where tmt refused
# the plan (ERROR), atex must exit 2; where tmt did not run it (NOT-RUN,
# disabled), atex must exit 2 saying it is disabled. Prints a unified diff
# per differing case, with atex's messages.
# usage: tmt-selection.sh ATEX_CLI CONF
set -u
atex=$1 conf=$2
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

cases=0 plans=0 tests=0 failures=0
for exp in "$conf"/expected/*.txt; do
	[ -e "$exp" ] || break
	base=${exp##*/}
	base=${base%.txt}
	tree=${base%%.*} ctx=${base#*.}
	c=()
	[ "$ctx" = none ] || c=(--context "$ctx")
	: >"$work/msgs"
	grep '^== ' "$exp" | cut -c4- | while IFS= read -r plan; do
		echo "== $plan"
		"$atex" fmf discover "${c[@]}" --plan "$plan" \
			"$conf/trees/$tree" >"$work/out" 2>"$work/err"
		rc=$?
		[ -s "$work/err" ] && sed "s|^|    $plan: |" "$work/err" >>"$work/msgs"
		if [ $rc = 0 ]; then
			cat "$work/out"
		elif [ $rc = 2 ] && grep -q ' is disabled ' "$work/err"; then
			echo NOT-RUN
		elif [ $rc = 2 ]; then
			echo ERROR
		else
			echo "EXIT $rc"
		fi
	done >"$work/got"
	cases=$((cases + 1))
	plans=$((plans + $(grep -c '^== ' "$exp")))
	tests=$((tests + $(grep -c '^/' "$exp")))
	if diff -u --label "tmt $tree $ctx" --label "atex $tree $ctx" \
		"$exp" "$work/got" >"$work/diff"; then
		echo "ok   $tree $ctx"
	else
		failures=$((failures + 1))
		echo "FAIL $tree $ctx (tree $conf/trees/$tree):"
		sed 's/^/  /' "$work/diff"
		if [ -s "$work/msgs" ]; then
			echo "  atex said:"
			cat "$work/msgs"
		fi
	fi
done
echo "$cases cases (tree x context), $plans plans, $tests tests selected" \
	"by tmt; $failures cases differ"
if [ $cases = 0 ]; then
	echo "FAIL: no expected data in $conf/expected"
	exit 1
fi
[ $failures = 0 ]

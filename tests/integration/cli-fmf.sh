#!/bin/sh
# `atex fmf discover` on the bundled example tree: what it lists, in which
# order, with plans, contexts and filters, options before or after the
# tree, and the --json form.
# usage: cli-fmf.sh ATEX_CLI EXAMPLES_DIR
set -u
atex=$1 examples=$2
failures=0

# check NAME WANT ARGS...: stdout of atex ARGS must equal WANT (a list
# separated by spaces), and the exit status be 0.
check() {
	name=$1 want=$2
	shift 2
	got=$("$atex" "$@" | tr '\n' ' ' | sed 's/ $//')
	status=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL $name:"; echo "  want: $want"; echo "  got:  $got"
		failures=$((failures + 1))
	else
		echo "ok   $name"
	fi
}

# Every test of the tree, in name order; /tests/manual (manual: true) is
# never listed.
slow="/tests/slow/sleep-long /tests/slow/sleep-short"
rest="/tests/basic/echo /tests/basic/env /tests/basic/known-bug /tests/basic/true
/tests/flaky/retry-once /tests/network/disabled-on-rhel7 /tests/network/loopback
/tests/results/logs /tests/results/nested /tests/results/partial
/tests/results/statuses /tests/results/subtests /tests/results/tmt-helpers
/tests/system/critical-path /tests/system/health /tests/system/reconfigure
/tests/workload/archive /tests/workload/base64 /tests/workload/checksum
/tests/workload/compress /tests/workload/cut /tests/workload/dd-copy
/tests/workload/primes /tests/workload/search /tests/workload/sort
/tests/workload/split /tests/workload/uniq /tests/workload/wordcount"
rest=$(echo $rest)
all=$(printf '%s\n' $slow $rest | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
check whole-tree "$all" fmf discover "$examples"
check options-after-tree "/tests/basic/echo /tests/basic/env /tests/basic/true" \
	fmf discover "$examples" --filter 'tier: 1'
check plan-filter "/tests/basic/echo /tests/basic/env /tests/basic/true" \
	fmf discover --plan /plans/smoke "$examples"
# Each section's tests are named under the section: slow first, then the
# others.
sections=$(printf '/slow%s ' $slow; printf '/rest%s ' $rest)
check plan-sections "${sections% }" \
	fmf discover --plan /plans/full "$examples"
check adjust-disables "/tests/network/loopback" \
	fmf discover --context distro=rhel-7 --filter 'tag: network' "$examples"
check adjust-adds-tag "/tests/basic/echo /tests/basic/env /tests/basic/true" \
	fmf discover --context distro=fedora-40 --filter 'tag: fedora & tier: 1' "$examples"

json=$("$atex" fmf discover --plan /plans/smoke --json "$examples")
for want in '"plan": "/plans/smoke"' '"EXAMPLE_PLAN": "smoke"' \
	'"name": "/tests/basic/env"' '"dir": "tests/basic"' '"how": "install"'; do
	if printf '%s' "$json" | grep -qF "$want"; then
		echo "ok   json has $want"
	else
		echo "FAIL json lacks $want"; failures=$((failures + 1))
	fi
done

if "$atex" fmf --help >/dev/null && "$atex" --version | grep -q '^atex '; then
	echo "ok   help and version"
else
	echo "FAIL help or version"; failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all cli-fmf checks passed"

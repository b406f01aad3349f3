#!/bin/sh
# `atex fmf discover` on the bundled example tree: what it lists, in which
# order, with plans, contexts and filters, options before or after the
# tree, and the --json form; --test/--exclude, a test listed twice, and a
# selection of nothing through `atex run` and `atex test` (--local).
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

# --test and --exclude: regular expressions searched in test names.
check test-regex "/tests/basic/echo /tests/basic/env /tests/workload/search" \
	fmf discover --test 'e[cn][hv]' --test 'search$' "$examples"
check exclude-regex "/tests/basic/echo /tests/basic/true" \
	fmf discover --plan /plans/smoke --exclude 'env' "$examples"

# Selection as tmt does it, on a tree of our own: a plan listing a test
# twice runs it twice, `order` sorts, a story with `test` is a test.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/t/.fmf"
echo 1 >"$work/t/.fmf/version"
cat >"$work/t/main.fmf" <<'EOF'
/plan:
  discover: {how: fmf, test: [/tests/a, /tests/b, /tests/a]}
  execute: {how: tmt}
/tests:
  /a:
    test: echo run-a
  /b:
    test: echo run-b
  /c:
    story: As a user I want c.
    test: echo run-c
    order: 10
EOF
check repeats "/tests/a /tests/b /tests/a" fmf discover --plan /plan "$work/t"
check order-story "/tests/c /tests/a /tests/b" fmf discover "$work/t"

# expect NAME STATUS PATTERN ARGS...: atex ARGS exits STATUS with stderr
# matching PATTERN (when not empty).
expect() {
	name=$1 want=$2 pattern=$3
	shift 3
	"$atex" "$@" >"$work/out" 2>"$work/err" </dev/null
	status=$?
	if [ "$status" -ne "$want" ] ||
		{ [ -n "$pattern" ] && ! grep -Eq -e "$pattern" "$work/err"; }; then
		echo "FAIL $name: exit $status (want $want): $(cat "$work/err")"
		failures=$((failures + 1))
	else
		echo "ok   $name"
	fi
}
# A selection of nothing is an error naming the plan and the filters.
expect run-selects-nothing 2 \
	"no test selected in .* plan /plan, --filter 'tag: typo'" \
	run --local 1 --results "$work/res" --plan /plan --filter 'tag: typo' "$work/t"
expect test-selects-nothing 2 "no test selected in .*--test 'nope'" \
	test --local 1 --artifacts "$work/art" --test nope "$work/t"
if [ -e "$work/res/results.jsonl" ]; then
	echo "FAIL run-selects-nothing wrote results"; failures=$((failures + 1))
fi
# A test listed twice runs twice and keeps both results: atex test
# (without TEST_NAME, every selected test) into NAME and NAME~2, atex run
# into two result lines.
expect test-twice 0 "" test --local 1 --artifacts "$work/art" --test /tests/a "$work/t"
if [ "$(grep -c '^pass  */tests/a$' "$work/out")" -eq 1 ] &&
	[ "$(grep -c '^pass  */tests/a~2$' "$work/out")" -eq 1 ] &&
	grep -q run-a "$work/art/tests/a/files/output.txt" &&
	grep -q run-a "$work/art/tests/a~2/files/output.txt"; then
	echo "ok   test-twice: two results, two artifacts directories"
else
	echo "FAIL test-twice: $(cat "$work/out")"; failures=$((failures + 1))
fi
expect run-twice 0 "" run --local 2 --results "$work/res" "$work/t"
# ... and the second entry under NAME~2, with files of its own (the second
# run's files did overwrite the first's under one name).
if [ "$(grep -c '"/tests/a"' "$work/res/results.jsonl")" -eq 1 ] &&
	[ "$(grep -c '"/tests/a~2"' "$work/res/results.jsonl")" -eq 1 ] &&
	grep -q run-a "$work/res/files/local/tests/a/output.txt" &&
	grep -q run-a "$work/res/files/local/tests/a~2/output.txt"; then
	echo "ok   run-twice: both results of /tests/a kept, files apart"
else
	echo "FAIL run-twice: $(cat "$work/res/results.jsonl")"
	failures=$((failures + 1))
fi

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

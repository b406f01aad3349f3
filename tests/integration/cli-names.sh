#!/bin/bash
# cli-names.sh ATEX: names from tests and trees are shown escaped wherever
# the atex tool prints them (`atex fmf discover`, the log lines and results
# of `atex run`, `atex report --summary`, error messages): a test name with
# a newline or an escape sequence must neither forge a line nor drive the
# terminal. Every line printed is checked for raw control characters, and
# the escaped form (\n, \x1b, \\ for a backslash) must be there.
set -u
atex=$1
work=$(mktemp -d /tmp/atex-cli-names.XXXXXX)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
failures=0

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

# clean NAME FILE: FILE has no control character but newline (and tab).
clean() {
	if LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$2" ||
		LC_ALL=C grep -q "$(printf '\302[\200-\237]')" "$2"; then
		fail "$1: raw control characters in $2:"
		od -c "$2" | sed 's/^/    /'
	else
		pass "$1: no control characters"
	fi
}

# lines NAME FILE PATTERN N: exactly N lines of FILE match the fixed
# string PATTERN (a forged line would make more).
lines() {
	local n
	n=$(grep -cF -e "$3" "$2")
	if [ "$n" -eq "$4" ]; then
		pass "$1: $n line(s) with '$3'"
	else
		fail "$1: $n lines with '$3', want $4:"
		sed 's/^/    /' "$2"
	fi
}

# The hostile name: a newline that starts a line reading like a result,
# an ESC sequence that clears the screen, a C1 CSI.
tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
printf '%s\n' \
	'"/t\nfail  /forged\e[2J\u009b1m":' \
	'  test: "false"' \
	'/ok:' \
	'  test: "true"' >"$tree/main.fmf"
shown='/t\nfail  /forged\x1b[2J\xc2\x9b1m'

"$atex" fmf discover "$tree" >"$work/discover" 2>&1
clean discover "$work/discover"
lines discover "$work/discover" "$shown" 1
lines discover-count "$work/discover" / 2

"$atex" run --local 1 --results "$work/r" "$tree" >"$work/run.out" \
	2>"$work/run.err"
rc=$?
[ "$rc" -eq 1 ] && pass "run: exit 1" || fail "run: exit $rc, want 1"
clean run-stdout "$work/run.out"
clean run-stderr "$work/run.err"
lines run-result "$work/run.out" "$shown" 1
lines run-forged "$work/run.out" "fail  /forged" 1
lines run-started "$work/run.err" "$shown started on local:1" 1

"$atex" report --summary "$work/r" >"$work/summary" 2>&1
clean summary "$work/summary"
# Once under Failures:, once under Slowest tests: (issue 14).
lines summary-failure "$work/summary" "$shown" 2
lines summary-failure-line "$work/summary" "fail  $shown" 1

# Every text of a result as a test may give it.
printf '%s\n' \
	'["p\u001b[1m", "fail\r", "/a\nb", "sub\u0007", [], "note\nforged"]' \
	'["p", "pass", "/ok", null, [], null]' >"$work/hostile.jsonl"
"$atex" report --summary "$work/hostile.jsonl" >"$work/summary2" 2>&1
clean summary-fields "$work/summary2"
lines summary-fields "$work/summary2" 'fail\r  p\x1b[1m  /a\nb/sub\x07  note\nforged' 1

# Errors quote names too.
"$atex" test --local 1 --artifacts "$work/a" "$tree" \
	"$(printf '/x\n\033[2J')" >"$work/test.out" 2>"$work/test.err"
rc=$?
[ "$rc" -eq 2 ] && pass "test error: exit 2" || fail "test error: exit $rc"
clean test-error "$work/test.err"
lines test-error "$work/test.err" "no test named '/x\n\x1b[2J'" 1

# A backslash is shown doubled: a name holding the two characters '\' 'n'
# and one holding a newline must not look alike.
tree2=$work/tree2
mkdir -p "$tree2/.fmf"
echo 1 >"$tree2/.fmf/version"
printf '%s\n' \
	'"/a\nb":' \
	'  test: "true"' \
	'"/a\\nb":' \
	'  test: "true"' >"$tree2/main.fmf"
"$atex" fmf discover "$tree2" >"$work/discover2" 2>&1
lines discover-newline "$work/discover2" '/a\nb' 1
lines discover-backslash "$work/discover2" '/a\\nb' 1
"$atex" run --local 1 --results "$work/r2" "$tree2" >"$work/run2.out" \
	2>"$work/run2.err"
lines run-newline "$work/run2.out" 'pass  /a\nb' 1
lines run-backslash "$work/run2.out" 'pass  /a\\nb' 1
"$atex" test --local 1 --artifacts "$work/a2" "$tree2" '/a\nb' \
	>"$work/test2.out" 2>&1
lines test-backslash "$work/test2.out" 'pass  /a\\nb' 1
lines test-backslash-only "$work/test2.out" 'pass  /a\nb' 0

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all cli-names checks passed"

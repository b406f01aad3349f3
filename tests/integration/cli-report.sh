#!/bin/sh
# `atex report` end to end on fixtures made here: exit statuses, the
# summary, JUnit XML that parses, compressed files cut short by a killed
# run, a SQLite database, and the HTML page opened in headless Chromium
# (Debian's chromium, from scripts/install-deps.sh) with its filters given
# in the URL: the table renders and a filter leaves only its rows
# visible. Chromium runs on file:// URLs with a private profile and HOME,
# and never touches the network.
# usage: cli-report.sh ATEX_CLI
set -u
atex=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok   $1"; }
fail() {
	echo "FAIL $1"
	failures=$((failures + 1))
}

# run NAME WANT_STATUS ARGS...: atex ARGS, stdout in $work/out, stderr in
# $work/err; checks the exit status.
run() {
	name=$1 want=$2
	shift 2
	"$atex" "$@" >"$work/out" 2>"$work/err"
	status=$?
	if [ "$status" -eq "$want" ]; then
		pass "$name: exit $status"
	else
		fail "$name: exit status $status, want $want"
		sed 's/^/    /' "$work/err"
	fi
}

# has NAME FILE PATTERN: FILE matches the fixed string PATTERN.
has() {
	if grep -qF -e "$3" "$2"; then
		pass "$1"
	else
		fail "$1: '$3' not in $2:"
		sed 's/^/    /' "$2"
	fi
}

# ---- fixtures ----
run_dir=$work/run
mkdir -p "$run_dir/old" "$run_dir/files/p1/unit/a" "$run_dir/files/p1/unit/b/connect"
echo output >"$run_dir/files/p1/unit/a/out.txt"
echo log >"$run_dir/files/p1/unit/b/connect/test log.txt"
printf '%s\n' \
	'["p1", "pass", "/unit/a", null, ["out.txt"], null]' \
	'["p1", "fail", "/unit/b", "connect", ["test log.txt"], "Got ECONNABORTED"]' \
	'["p1", "pass", "/net/c", null, [], null]' \
	'["p2", "fail", "/net/c", null, [], "bad <script>alert(1)</script>"]' \
	>"$run_dir/part1"
printf '%s\n' '["p2", "skip", "/unit/d", null, [], null]' >"$run_dir/part2"
cat "$run_dir/part1" "$run_dir/part2" >"$run_dir/results.jsonl"
printf '%s\n' \
	'["p1", "fail", "/unit/a", null, [], "flaky"]' \
	'["p1", "error", "/unit/a", null, [], "flakier"]' \
	>"$run_dir/old/results.jsonl"
printf '%s\n' '["p", "pass", "/a", null, [], null]' \
	'["p", "warn", "/b", null, [], "hm"]' >"$work/ok.jsonl"

# ---- exit statuses ----
run no-output 2 report "$run_dir/results.jsonl"
has no-output-message "$work/err" "no output"
run no-results 2 report --summary
run two-results 2 report --summary "$work/ok.jsonl" "$work/ok.jsonl"
run unknown-option 2 report --bogus --summary "$work/ok.jsonl"
run help 0 report --help
has help-text "$work/out" "--junit FILE"
run missing-file 2 report --summary "$work/nothing.jsonl"
has missing-file-named "$work/err" "$work/nothing.jsonl"
printf '%s\n' '["p", "pass", "/a", null, [], null]' '[1, 2]' >"$work/bad.jsonl"
# A damaged line costs only itself: the others are reported, the line is
# named (file:line) in every output and on stderr, and the status is 3.
printf '%s\n' '["p", "pass", "/b", null, [], null]' >>"$work/bad.jsonl"
run malformed 3 report --summary --junit "$work/bad.xml" --html "$work/bad.html" "$work/bad.jsonl"
has malformed-line "$work/err" "$work/bad.jsonl:2:"
has malformed-summary "$work/out" "$work/bad.jsonl:2"
has malformed-summary-others "$work/out" "p              2      0"
has malformed-junit "$work/bad.xml" "$work/bad.jsonl:2"
has malformed-junit-others "$work/bad.xml" 'name="/b"'
has malformed-html "$work/bad.html" "$work/bad.jsonl:2"
run malformed-exit-code 3 report --exit-code --summary "$work/bad.jsonl"
run unwritable 2 report --html "$work/no/such/dir/r.html" "$work/ok.jsonl"
has unwritable-named "$work/err" "$work/no/such/dir/r.html"
run passing 0 report --summary "$work/ok.jsonl"
has passing-summary "$work/out" "No failures."
run passing-exit-code 0 report --exit-code --summary "$work/ok.jsonl"

# ---- summary ----
run failing 0 report --summary "$run_dir/results.jsonl"
has summary-header "$work/out" "PLATFORM   pass   fail  error  infra   warn   info   skip  total"
has summary-p1 "$work/out" "p1            2      1      0      0      0      0      0      3"
has summary-p2 "$work/out" "p2            0      1      0      0      0      0      1      2"
has summary-total "$work/out" "total         2      2      0      0      0      0      1      5"
has summary-failures "$work/out" "Failures:"
has summary-failure-1 "$work/out" "fail  p1  /unit/b/connect  Got ECONNABORTED"
has summary-failure-2 "$work/out" "fail  p2  /net/c           bad <script>alert(1)</script>"
has summary-earlier "$work/out" "2 earlier attempts"
# --exit-code: 1 for failed results, with every output still written.
rm -f "$work/junit-x.xml"
run failing-exit-code 1 report --exit-code --summary --junit "$work/junit-x.xml" "$run_dir/results.jsonl"
has failing-exit-code-summary "$work/out" "Failures:"
has failing-exit-code-junit "$work/junit-x.xml" "<testsuites"

# ---- JUnit ----
run junit 0 report --junit "$work/junit.xml" "$run_dir/results.jsonl"
if command -v python3 >/dev/null 2>&1; then
	validate() { python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$1"; }
elif command -v xmllint >/dev/null 2>&1; then
	validate() { xmllint --noout "$1"; }
else
	validate() { echo "no python3 nor xmllint to check XML" >&2; return 1; }
fi
if validate "$work/junit.xml"; then
	pass "junit-well-formed"
else
	fail "junit-well-formed"
fi
has junit-counts "$work/junit.xml" '<testsuites name="atex" tests="5" failures="2" errors="0" skipped="1">'
has junit-escaped "$work/junit.xml" 'message="bad &lt;script&gt;alert(1)&lt;/script&gt;"'
has junit-case "$work/junit.xml" '<testcase classname="/unit/b" name="connect">'

# ---- compressed, and cut short by a killed run ----
gzip -c "$run_dir/results.jsonl" >"$work/whole.jsonl.gz"
run gzip 0 report --summary "$work/whole.jsonl.gz"
has gzip-total "$work/out" "total         2      2      0      0      0      0      1      5"
xz -c "$run_dir/results.jsonl" >"$work/whole.jsonl.xz"
run xz 0 report --summary "$work/whole.jsonl.xz"
has xz-total "$work/out" "total         2      2      0      0      0      0      1      5"

# Two ingests flushed, the third cut in the middle of its member/stream.
gzip -c "$run_dir/part1" >"$work/cut.jsonl.gz"
gzip -c "$run_dir/part2" | head -c 20 >>"$work/cut.jsonl.gz"
run gzip-truncated 0 report --summary "$work/cut.jsonl.gz"
has gzip-truncated-warning "$work/err" "$work/cut.jsonl.gz"
has gzip-truncated-kept "$work/out" "total         2      2      0      0      0      0      0      4"
xz -c "$run_dir/part1" >"$work/cut.jsonl.xz"
xz -c "$run_dir/part2" | head -c 30 >>"$work/cut.jsonl.xz"
run xz-truncated 0 report --summary "$work/cut.jsonl.xz"
has xz-truncated-warning "$work/err" "$work/cut.jsonl.xz"
has xz-truncated-kept "$work/out" "total         2      2      0      0      0      0      0      4"
# A last line cut short in a plain file.
{ cat "$run_dir/part1"; printf '["p2", "skip", "/un'; } >"$work/cut.jsonl"
run plain-truncated 0 report --summary "$work/cut.jsonl"
has plain-truncated-warning "$work/err" "$work/cut.jsonl"
has plain-truncated-kept "$work/out" "total         2      2      0      0      0      0      0      4"

# ---- SQLite ----
sqlite3 "$work/results.sqlite" <<'EOF'
CREATE TABLE results(id INTEGER PRIMARY KEY, platform TEXT NOT NULL,
  status TEXT NOT NULL, test TEXT NOT NULL, subtest TEXT, note TEXT,
  files TEXT NOT NULL, ingested REAL NOT NULL, attempt INTEGER NOT NULL,
  final INTEGER NOT NULL);
INSERT INTO results VALUES
  (1, 'p', 'fail', '/a', NULL, 'first try', '[]', 1.0, 1, 0),
  (2, 'p', 'pass', '/a', NULL, NULL, '["a.txt"]', 2.0, 2, 1),
  (3, 'p', 'info', '/b', 'x', NULL, '[]', 3.0, 1, 1);
EOF
run sqlite 0 report --summary --junit "$work/sqlite.xml" "$work/results.sqlite"
has sqlite-summary "$work/out" "p             1      0      0      0      0      1      0      2"
has sqlite-earlier "$work/out" "1 earlier attempt"
has sqlite-junit "$work/sqlite.xml" 'tests="2" failures="0"'

# ---- HTML ----
mkdir -p "$work/pages"
run html 0 report --html "$work/pages/report.html" --title "Run <1>" "$run_dir/results.jsonl"
html=$work/pages/report.html
if grep -Eq 'https?://|<link|src=' "$html"; then
	fail "html-self-contained: an external reference:"
	grep -Eo '.{0,30}(https?://|<link|src=).{0,30}' "$html" | sed 's/^/    /'
else
	pass "html-self-contained"
fi
has html-title "$html" "<title>Run &lt;1&gt;</title>"
has html-link "$html" 'href="../run/files/p1/unit/b/connect/test%20log.txt"'
if [ -f "$work/pages/../run/files/p1/unit/b/connect/test log.txt" ]; then
	pass "html-link-target-exists"
else
	fail "html-link-target-exists"
fi
has html-escaped "$html" "bad &lt;script&gt;alert(1)&lt;/script&gt;"

if ! command -v chromium >/dev/null 2>&1; then
	fail "chromium is not installed (scripts/install-deps.sh installs it)"
	echo "$failures failure(s)"
	exit 1
fi
mkdir -p "$work/home"

# dom NAME QUERY: the page as headless Chromium has it after its script
# ran, with QUERY ("?status=fail", "#platform=p2") after the URL, into
# $work/NAME.dom; one line per row (the page puts each <tr> on its own).
dom() {
	HOME=$work/home XDG_CONFIG_HOME=$work/home XDG_CACHE_HOME=$work/home \
		timeout 120 chromium --headless --no-sandbox --disable-gpu \
		--no-first-run --no-default-browser-check \
		--disable-background-networking --disable-component-update \
		--disable-sync --disable-extensions \
		--user-data-dir="$work/chrome" --virtual-time-budget=5000 \
		--dump-dom "file://$html$2" >"$work/$1.dom" 2>"$work/$1.chromium"
	grep '^<tr ' "$work/$1.dom" >"$work/$1.rows"
	grep -v ' hidden=' "$work/$1.rows" >"$work/$1.visible"
}

# rows NAME WANT_ALL WANT_VISIBLE [ATTRIBUTE]: the page of `dom NAME` has
# WANT_ALL rows, WANT_VISIBLE of them visible, and every visible row has
# ATTRIBUTE (data-status="fail"...).
rows() {
	all=$(wc -l <"$work/$1.rows")
	visible=$(wc -l <"$work/$1.visible")
	if [ "$all" -ne "$2" ] || [ "$visible" -ne "$3" ]; then
		fail "chromium-$1: $all rows, $visible visible; want $2, $3"
		tail -n 5 "$work/$1.chromium" | sed 's/^/    /'
		return
	fi
	if [ $# -ge 4 ] && grep -vqF -e "$4" "$work/$1.visible"; then
		fail "chromium-$1: a visible row without $4:"
		grep -vF -e "$4" "$work/$1.visible" | sed 's/^/    /'
		return
	fi
	pass "chromium-$1: $visible of $all rows visible${4:+, all $4}"
}

# 5 final results and 2 earlier attempts (/unit/a on p1).
dom plain ""
rows plain 7 7
has chromium-shown "$work/plain.dom" "7 of 7 rows shown"
has chromium-earlier-marked "$work/plain.dom" 'data-final="0"'
dom status-query "?status=fail"
rows status-query 7 3 'data-status="fail"'
has chromium-status-checkbox "$work/status-query.dom" '3 of 7 rows shown'
dom status-fragment "#status=fail"
rows status-fragment 7 3 'data-status="fail"'
dom two-statuses "#status=pass,skip"
rows two-statuses 7 3
dom platform "#platform=p2"
rows platform 7 2 'data-platform="p2"'
dom name "#test=net"
rows name 7 2 'data-test="/net/c"'
# The name as atex prints it: TEST/SUBTEST.
dom subtest "#test=b/connect"
rows subtest 7 1 'data-subtest="connect"'
dom combined "?status=fail&platform=p2&test=net"
rows combined 7 1 'data-platform="p2" data-test="/net/c"'
dom final-only "#earlier=0"
rows final-only 7 5 'data-final="1"'

# The SQLite database renders the same way.
run html-sqlite 0 report --html "$work/pages/report.html" "$work/results.sqlite"
dom sqlite "#status=pass"
rows sqlite 3 1 'data-status="pass"'

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "all passed"

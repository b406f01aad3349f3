#!/bin/bash
# cli-report-fixes.sh ATEX: issue 14 follow-ups in `atex report` and
# `atex run`, end to end.
#  - `atex report --tmt FILE` where FILE's folder is a symlink to a
#    folder of another depth: every log and data-path resolves from the
#    real folder (as tmt opens Path(workdir) / log).
#  - The earlier attempts of re-run tests counted as attempts (not result
#    rows, subtests included) in the summary and the HTML page.
#  - `atex run --results M` with M read-only (run as nobody when root):
#    rm's complaint said once, readably (its first line and how many
#    more), exit 2.
set -u
atex=$1
py=/usr/bin/python3
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
failures=0

pass() { echo "ok   $1"; }
fail() {
	echo "FAIL $1"
	failures=$((failures + 1))
}

# check NAME COMMAND...: COMMAND succeeds (its output shown when not).
check() {
	local name=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then
		pass "$name"
	else
		fail "$name:"
		sed 's/^/    /' "$work/check.out"
	fi
}

# ---- a run: two tests, /a with a subtest and an earlier attempt ----
run=$work/run
mkdir -p "$run/old" "$run/files/local/a/s1" "$run/files/local/b"
echo out >"$run/files/local/a/out.txt"
echo sub >"$run/files/local/a/s1/s.log"
echo b >"$run/files/local/b/output.txt"
cat >"$run/results.jsonl" <<'JSON'
["local", "pass", "/a", null, ["out.txt"], null]
["local", "fail", "/a", "s1", ["s.log"], null]
["local", "pass", "/b", null, ["output.txt"], null]
JSON
cat >"$run/old/results.jsonl" <<'JSON'
["local", "fail", "/a", null, [], null]
["local", "fail", "/a", "s1", [], null]
["local", "pass", "/a", "s2", [], null]
["local", "error", "/a", null, [], null]
["local", "fail", "/a", "s1", [], null]
JSON

# ---- 1. --tmt into a symlinked folder of another depth ----
mkdir -p "$work/L/a/b"
ln -s "$work/L/a/b" "$work/L/deep"
if "$atex" report --tmt "$work/L/deep/t.yaml" "$run" 2>"$work/err"; then
	pass "tmt via a symlink: exit 0"
else
	fail "tmt via a symlink: exit $?"
	cat "$work/err"
fi
cat >"$work/tmt_paths.py" <<'PY'
import os, sys, yaml
path = sys.argv[1]
workdir = os.path.dirname(path)
n = 0
bad = []
for e in yaml.safe_load(open(path)):
    items = [e] + list(e.get("subresult") or [])
    for it in items:
        for log in it.get("log") or []:
            n += 1
            if not os.path.isfile(os.path.join(workdir, log)):
                bad.append(log)
    if "data-path" in e:
        n += 1
        if not os.path.isdir(os.path.join(workdir, e["data-path"])):
            bad.append(e["data-path"])
print(f"{n} paths, broken: {bad}")
sys.exit(1 if bad or n < 4 else 0)
PY
check "tmt via a symlink: every log and data-path opens from the link" \
	"$py" "$work/tmt_paths.py" "$work/L/deep/t.yaml"
(cd "$work/L/deep" && "$atex" report --tmt t2.yaml "$run") 2>"$work/err" ||
	cat "$work/err"
check "tmt via a symlink, relative FILE: the paths open" \
	"$py" "$work/tmt_paths.py" "$work/L/deep/t2.yaml"

# ---- 3. earlier attempts: 2 (of /a), in 5 result rows ----
"$atex" report --summary "$run" >"$work/summary" 2>&1
check "summary: 2 earlier attempts (5 rows)" \
	grep -q "(and 2 earlier attempts of re-run tests" "$work/summary"
"$atex" report --html "$work/r.html" "$run" 2>"$work/err" || cat "$work/err"
check "html: 2 earlier attempts (5 rows)" \
	grep -q "[0-9]* results, 2 earlier attempts of re-run tests" \
	"$work/r.html"

# ---- 5. atex run --results into a read-only copy of a results folder ----
ro=$work/ro
mkdir -p "$ro/M/files/local/a" "$ro/tree/.fmf"
for i in 1 2 3 4; do echo x >"$ro/M/files/local/a/f$i"; done
cp "$run/results.jsonl" "$ro/M/"
echo 1 >"$ro/tree/.fmf/version"
echo 'test: "true"' >"$ro/tree/t.fmf"
chmod -R a-w "$ro/M"
chmod a+rx "$work" "$ro"
as=()
[ "$(id -u)" = 0 ] && as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
if ! { "${as[@]}" "$atex" --version && "${as[@]}" test -r "$ro/tree/t.fmf"; } \
	>/dev/null 2>&1; then
	# Needed, not optional: say so loudly (a build folder others
	# cannot read, a machine without nobody).
	fail "read-only --results: cannot run $atex as ${as[*]:-myself}"
else
	(cd "$ro" && "${as[@]}" "$atex" run --local 1 --results M tree) \
		>"$work/out" 2>"$work/err"
	rc=$?
	[ "$rc" = 2 ] && pass "read-only --results: exit 2" ||
		fail "read-only --results: exit $rc"
	cat >"$work/ro_check.py" <<'PY'
import sys
err = open(sys.argv[1]).read()
lines = err.splitlines()
print(repr(err))
assert len(lines) == 1, "one line"
assert "\\n" not in err, "no escaped newline"
assert lines[0].startswith("atex: run: cannot remove M/files: rm: "), lines[0]
assert lines[0].endswith(" (and 3 more)"), lines[0]
PY
	check "read-only --results: rm's complaint once, readably" \
		"$py" "$work/ro_check.py" "$work/err"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

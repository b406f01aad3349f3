#!/bin/bash
# cli-report-timings.sh ATEX: issue 14 in `atex report`, end to end.
#  - `atex report --tmt FILE` on a fixture run (timings, run.json, an
#    earlier attempt, infra and custom statuses): tmt's results.yaml,
#    checked key by key against what tmt/schemas/results.yaml allows (and
#    with python3-jsonschema against tmt's own schema files when
#    ATEX_TMT_SCHEMAS names a folder holding them, or tmt is installed);
#    every log path exists relative to FILE's folder.
#  - The HTML page in headless Chromium sorted from the URL
#    (#sort=-duration, #sort=test, #sort=status): rows in the right order,
#    a test's earlier attempts under it, aria-sort set.
#  - `atex report --summary`: the slowest tests and the times.
#  - The round trip: `atex run` of a tree (custom results, tmt-report-result
#    subtests, plain tests), its `atex report --tmt` replayed by a
#    `result: custom` test of a second run: the same statuses, notes and
#    logs (file contents).
set -u
atex=$1
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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

# ---- a run with timings (docs/PROTOCOL.md section 5) ----
run=$work/run
mkdir -p "$run/old" "$run/files/local/a/s1" "$run/files/local/b"
echo out >"$run/files/local/a/out.txt"
echo sub >"$run/files/local/a/s1/s.log"
echo "b's log" >"$run/files/local/b/output.txt"
cat >"$run/results.jsonl" <<'EOF'
["local", "pass", "/a", null, ["out.txt"], null]
["local", "fail", "/a", "s1", ["s.log"], "bad: \"x\"\nsecond line"]
["local", "infra", "/b", null, ["output.txt"], "lost"]
["local", "mine", "/c", null, [], null]
["local", "pass", "/d", null, [], null]
EOF
cat >"$run/old/results.jsonl" <<'EOF'
["local", "error", "/b", null, [], "first"]
EOF
line() { # test attempt start end duration system
	printf '{"platform": "local", "test": "%s", "attempt": %s, "start": "%s", "end": "%s", "duration": %s, "system": "%s", "exit_code": 0}\n' "$@"
}
{
	line /a 1 2026-12-06T22:45:01.123+00:00 2026-12-06T22:45:04.567+00:00 3.444 local-3
	line /b 2 2026-12-06T22:45:05.000+00:00 2026-12-06T22:46:10.000+00:00 65.0 local-1
	line /c 1 2026-12-06T22:45:02.000+00:00 2026-12-06T22:45:22.000+00:00 20.0 local-2
} >"$run/attempts.jsonl"
line /b 1 2026-12-06T22:44:59.500+00:00 2026-12-06T22:45:00.500+00:00 1.0 local-2 >"$run/old/attempts.jsonl"
cat >"$run/run.json" <<'EOF'
{"started": "2026-12-06T22:44:59.000+00:00", "ended": "2026-12-06T22:46:11.500+00:00",
 "atex_version": "0.1.0", "platform": "local", "provisioner": "local",
 "tree": "/abs/tree", "git_commit": null, "context": {"distro": "fedora-41"},
 "systems": 3, "history": null}
EOF

# ---- tmt's results.yaml ----
mkdir -p "$work/out"
if "$atex" report --tmt "$work/out/results.yaml" "$run" 2>"$work/err"; then
	pass "tmt: exit 0"
else
	fail "tmt: exit $?"
	sed 's/^/    /' "$work/err"
fi

# What tmt/schemas/results.yaml allows, written out here by hand, plus
# the paths. Prints what is wrong.
cat >"$work/tmt_check.py" <<'EOF'
import os, re, sys, yaml

path = sys.argv[1]
base = os.path.dirname(os.path.abspath(path))
data = yaml.safe_load(open(path))
errors = []
OUTCOMES = {"pass", "fail", "info", "warn", "error", "skip", "pending"}
TIME = re.compile(r"^\d{2,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(?:\+\d{2}:\d{2}|Z)$")
DURATION = re.compile(r"^[0-9]{2,}:[0-5][0-9]:[0-5][0-9]$")
TOP = {"guest", "name", "serial-number", "web-link", "result",
       "original-result", "context", "note", "start-time", "end-time",
       "duration", "data-path", "ids", "log", "check", "subresult"}
SUB = {"name", "result", "original-result", "note", "log", "start-time",
       "end-time", "duration", "check"}


def strings(where, v):
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        errors.append(f"{where}: not a list of strings: {v!r}")


def common(where, e, allowed):
    extra = set(e) - allowed
    if extra:
        errors.append(f"{where}: keys tmt does not allow: {sorted(extra)}")
    if not isinstance(e.get("name"), str):
        errors.append(f"{where}: no name")
    if e.get("result") not in OUTCOMES:
        errors.append(f"{where}: result {e.get('result')!r}")
    for k in ("note", "log"):
        if k in e:
            strings(f"{where}.{k}", e[k])
    for k in ("start-time", "end-time"):
        if k in e and not (isinstance(e[k], str) and TIME.match(e[k])):
            errors.append(f"{where}.{k}: {e[k]!r}")
    if "duration" in e and not (isinstance(e["duration"], str)
                                and DURATION.match(e["duration"])):
        errors.append(f"{where}.duration: {e['duration']!r}")
    if "check" in e and not isinstance(e["check"], list):
        errors.append(f"{where}.check: not a list")
    for log in e.get("log", []):
        if not os.path.isfile(os.path.join(base, log)):
            errors.append(f"{where}: log {log} does not exist")


if not isinstance(data, list):
    errors.append("not a list")
for i, e in enumerate(data or []):
    where = f"entry {i + 1}"
    if not isinstance(e, dict):
        errors.append(f"{where}: not a mapping")
        continue
    common(where, e, TOP)
    if not str(e.get("name", "")).startswith("/"):
        errors.append(f"{where}: name does not start with /")
    if not isinstance(e.get("serial-number", 0), int):
        errors.append(f"{where}: serial-number")
    g = e.get("guest", {"name": "x"})
    if not (isinstance(g, dict) and g and set(g) <= {"name", "role"}
            and all(isinstance(v, str) for v in g.values())):
        errors.append(f"{where}: guest {g!r}")
    for k, v in e.get("context", {}).items():
        if not (isinstance(v, str) or (isinstance(v, list) and all(
                isinstance(s, str) for s in v))):
            errors.append(f"{where}: context {k}: {v!r}")
    if "data-path" in e and not isinstance(e["data-path"], str):
        errors.append(f"{where}: data-path")
    if not isinstance(e.get("subresult", []), list):
        errors.append(f"{where}: subresult not a list")
    for j, s in enumerate(e.get("subresult", [])):
        if isinstance(s, dict):
            common(f"{where}.subresult {j + 1}", s, SUB)
        else:
            errors.append(f"{where}.subresult {j + 1}: not a mapping")
for err in errors:
    print(err)
sys.exit(1 if errors else 0)
EOF
check "tmt: the keys and values tmt's schema allows, logs exist" \
	"$py" "$work/tmt_check.py" "$work/out/results.yaml"

# tmt's own schema, when its files are at hand.
schemas=${ATEX_TMT_SCHEMAS:-}
if [ -z "$schemas" ]; then
	schemas=$("$py" -c 'import os, tmt; print(os.path.join(os.path.dirname(tmt.__file__), "schemas"))' 2>/dev/null)
fi
if [ -n "$schemas" ] && [ -f "$schemas/results.yaml" ] &&
	"$py" -c 'import jsonschema' 2>/dev/null; then
	cat >"$work/tmt_schema.py" <<'EOF'
import os, sys, warnings, yaml, jsonschema

warnings.simplefilter("ignore")
store = {}
for name in os.listdir(sys.argv[1]):
    if name.endswith(".yaml"):
        s = yaml.safe_load(open(os.path.join(sys.argv[1], name)))
        if isinstance(s, dict) and "$id" in s:
            store[s["$id"]] = s
schema = store["/schemas/results"]
resolver = jsonschema.RefResolver("/schemas/results", schema, store=store)
jsonschema.Draft7Validator(schema, resolver=resolver).validate(
    yaml.safe_load(open(sys.argv[2])))
EOF
	check "tmt: valid against tmt's schema ($schemas)" \
		"$py" "$work/tmt_schema.py" "$schemas" "$work/out/results.yaml"
else
	echo "skip tmt's own schema (set ATEX_TMT_SCHEMAS to tmt/schemas)"
fi

cat >"$work/tmt_values.py" <<'EOF'
import sys, yaml

d = yaml.safe_load(open(sys.argv[1]))
got = [(e["name"], e["result"], e["note"], e.get("duration"),
        e["guest"]["name"], [s["name"] for s in e["subresult"]]) for e in d]
want = [
    ("/a", "pass", [], "00:00:03", "local-3", ["/s1"]),
    ("/b", "error", ["lost", "atex status: infra (the infrastructure "
                     "failed, not the test)"], "00:01:05", "local-1", []),
    ("/c", "fail", ["atex status: mine"], "00:00:20", "local-2", []),
    ("/d", "pass", [], None, "local", []),
]
if got != want:
    print("got ", got)
    print("want", want)
    sys.exit(1)
a = d[0]
assert a["subresult"][0]["note"] == ['bad: "x"\nsecond line'], a
assert a["log"] == ["../run/files/local/a/out.txt"], a["log"]
assert a["start-time"] == "2026-12-06T22:45:01.123+00:00", a
assert a["context"] == {"distro": "fedora-41"}, a
assert a["data-path"] == "../run/files/local/a", a
assert [e["serial-number"] for e in d] == [1, 2, 3, 4]
EOF
check "tmt: outcomes, notes, durations, guests, subresults" \
	"$py" "$work/tmt_values.py" "$work/out/results.yaml"

# ---- the summary ----
"$atex" report --summary "$run" >"$work/summary" 2>&1
sed -n '/^Slowest tests:/,$p' "$work/summary" >"$work/summary.tail"
printf '%s\n' "Slowest tests:" "1m05s  /b  local-1" "20.0s  /c  local-2" \
	" 3.4s  /a  local-3" "" "Wall time 1m13s, test time 1m29s (4 attempts)" \
	>"$work/summary.want"
check "summary: the slowest tests and the times" \
	diff "$work/summary.want" "$work/summary.tail"

# ---- the HTML page sorted in Chromium ----
mkdir -p "$work/pages"
"$atex" report --html "$work/pages/report.html" "$run" 2>"$work/err" ||
	fail "html: exit $?"
# order NAME FRAGMENT WANT [PAGE]: the data-test (and data-final) of the
# rows of PAGE (default report.html) opened with FRAGMENT, in order, are
# WANT.
order() {
	HOME=$work/home XDG_CONFIG_HOME=$work/home XDG_CACHE_HOME=$work/home \
		timeout 120 chromium --headless --no-sandbox --disable-gpu \
		--no-first-run --no-default-browser-check \
		--disable-background-networking --disable-component-update \
		--disable-sync --disable-extensions \
		--user-data-dir="$work/chrome" --virtual-time-budget=5000 \
		--dump-dom "file://$work/pages/${4:-report.html}$2" \
		>"$work/$1.dom" 2>"$work/$1.chromium"
	# Moved rows lose the newlines between them: one a line again.
	got=$(sed 's/<tr /\n<tr /g' "$work/$1.dom" | grep '^<tr ' |
		sed -E 's/.* data-test="([^"]*)" data-subtest="([^"]*)".* data-final="(.)".*/\1\2:\3/' |
		tr '\n' ' ')
	if [ "$got" = "$3 " ]; then
		pass "html-sort-$1: $3"
	else
		fail "html-sort-$1: rows '$got', want '$3 '"
		tail -n 5 "$work/$1.chromium" | sed 's/^/    /'
	fi
}
if command -v chromium >/dev/null 2>&1; then
	order file "" "/a:1 /as1:1 /b:1 /b:0 /c:1 /d:1"
	# Longest first, the unknown last; /b's earlier attempt stays under it.
	order duration "#sort=-duration" "/b:1 /b:0 /c:1 /a:1 /as1:1 /d:1"
	order duration-up "#sort=duration" "/a:1 /as1:1 /c:1 /b:1 /b:0 /d:1"
	# The worst final status of a test first: infra, fail, custom, pass.
	order status "#sort=status" "/b:1 /b:0 /a:1 /as1:1 /c:1 /d:1"
	order test "?sort=-test" "/d:1 /c:1 /b:1 /b:0 /a:1 /as1:1"
	order started "#sort=started" "/a:1 /as1:1 /c:1 /b:1 /b:0 /d:1"
	# Clicks on the headers (a script after the page's own clicks them):
	# Duration once is longest first, twice shortest first.
	clicks() { # PAGE SORT...
		local page=$1 js="" col
		shift
		for col in "$@"; do
			js="$js document.querySelector('th[data-sort=$col] button').click();"
		done
		sed "s|</body>|<script>$js</script></body>|" \
			"$work/pages/report.html" >"$work/pages/$page"
	}
	clicks once.html duration
	order click-once "" "/b:1 /b:0 /c:1 /a:1 /as1:1 /d:1" once.html
	clicks twice.html duration duration
	order click-twice "" "/a:1 /as1:1 /c:1 /b:1 /b:0 /d:1" twice.html
	check "html-sort: a click sets aria-sort" grep -qF \
		'<th data-sort="duration" data-first="-" aria-sort="ascending">' \
		"$work/click-twice.dom"
	clicks other.html duration test
	order click-other "" "/a:1 /as1:1 /b:1 /b:0 /c:1 /d:1" other.html
	check "html-sort: aria-sort on the header" \
		grep -qF '<th data-sort="duration" data-first="-" aria-sort="descending">' \
		"$work/duration.dom"
	# A filter and a sort together.
	order both "#sort=-duration&status=pass" "/b:1 /b:0 /c:1 /a:1 /as1:1 /d:1"
	check "html-sort: filtered rows hidden in the sorted table" \
		grep -qF '2 of 6 rows shown' "$work/both.dom"
else
	fail "chromium is not installed (scripts/install-deps.sh installs it)"
fi

# ---- the round trip through a `result: custom` test ----
mkdir -p "$work/tree1/.fmf" "$work/tree2/.fmf"
echo 1 >"$work/tree1/.fmf/version"
echo 1 >"$work/tree2/.fmf/version"
cat >"$work/tree1/main.fmf" <<'EOF'
/plan:
    discover:
        how: fmf
    execute:
        how: tmt
/src:
    duration: 1m
    /custom:
        result: custom
        test: |
            echo "part a's log" > "$TMT_TEST_DATA/a.log"
            printf '%s\n' '- name: /' '  result: warn' '  note: own note' \
                '- name: /part-a' '  result: fail' '  note: ["a broke: x"]' \
                '  log: [a.log]' '- name: /part-b' '  result: skip' \
                '- name: /part-c' '  result: info' '  note: [one, two]' \
                > "$TMT_TEST_DATA/results.yaml"
    /reported:
        test: |
            echo "log of the first part" > first.log
            tmt-report-result -o first.log /first PASS
            tmt-report-result /second FAIL
            rm -f first.log
    /plain-fail:
        test: 'echo failing; exit 1'
    /plain-pass:
        test: 'echo fine'
EOF
cat >"$work/tree2/main.fmf" <<'EOF'
/plan:
    discover:
        how: fmf
    execute:
        how: tmt
/replay:
    duration: 1m
    result: custom
    test: 'cp -r "$REPLAY"/. "$TMT_TEST_DATA"/'
/bad-list:
    result: custom
    test: |
        printf '%s\n' '- name: /x' '  result: pass' '  subresult: 5' \
            > "$TMT_TEST_DATA/results.yaml"
/bad-sub:
    result: custom
    test: |
        printf '%s\n' '- name: /x' '  result: pass' '  subresult:' \
            '    - name: /y' '      result: great' \
            > "$TMT_TEST_DATA/results.yaml"
EOF
"$atex" run --local 2 --results "$work/r1" "$work/tree1" >"$work/r1.out" 2>&1
[ $? -eq 1 ] || fail "round trip: the first run's exit status (want 1)"
mkdir "$work/replay"
cp -r "$work/r1" "$work/replay/r1"
check "round trip: atex report --tmt into the replayed folder" \
	"$atex" report --tmt "$work/replay/results.yaml" "$work/replay/r1"
"$atex" run --local 1 --env "REPLAY=$work/replay" --results "$work/r2" \
	"$work/tree2" >"$work/r2.out" 2>&1
cat >"$work/compare.py" <<'EOF'
import json, os, sys

r1, r2 = sys.argv[1], sys.argv[2]


def load(d):
    return [json.loads(l) for l in open(os.path.join(d, "results.jsonl"))]


def contents(d, r, names):
    files = os.path.join(d, "files", r[0], r[2].lstrip("/"), *(
        [r[3]] if r[3] else []))
    return sorted((os.path.basename(n), open(os.path.join(files, n)).read())
                  for n in names)


want = {}
for r in load(r1):
    name = r[2].lstrip("/") + ("/" + r[3] if r[3] else "")
    want[name] = (r[1], r[5], contents(r1, r, r[4]))
got = {}
for r in load(r2):
    if r[3] is None:
        continue  # the replaying test's own result
    got[r[3]] = (r[1], r[5], contents(r2, r, r[4]))
ok = True
for name in sorted(set(want) | set(got)):
    if want.get(name) != got.get(name):
        print(f"{name}: first run {want.get(name)}, replayed {got.get(name)}")
        ok = False
if len(want) < 9:
    print(f"only {len(want)} results in the first run")
    ok = False
sys.exit(0 if ok else 1)
EOF
check "round trip: the same statuses, notes and logs" \
	"$py" "$work/compare.py" "$work/r1" "$work/r2"
# A subresult list that is not one: the test's error, naming file:line.
cat >"$work/bad.py" <<'EOF'
import json, sys

notes = {r[2]: (r[1], r[5]) for r in map(json.loads, open(sys.argv[1]))
         if r[3] is None}
want = {
    "/bad-list": ("error", "TMT_TEST_DATA/results.yaml:1: '/x': "
                  "'subresult' is not a list"),
    "/bad-sub": ("error", "TMT_TEST_DATA/results.yaml:4: '/y': invalid "
                 "'result' (one of pass, fail, info, warn, error, skip, "
                 "pending)"),
}
for test, w in want.items():
    if notes.get(test) != w:
        print(f"{test}: {notes.get(test)}, want {w}")
        sys.exit(1)
EOF
check "custom: a bad subresult is the test's error, naming file:line" \
	"$py" "$work/bad.py" "$work/r2/results.jsonl"

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "all passed"

#!/bin/bash
# cli-reportportal-edges.sh ATEX: `atex run --reportportal` where a strict
# ReportPortal and impatient users would find it wanting (issue 14,
# review 4), against the fake API (rp-server.py, strict about limits and
# multipart file names):
#   - output.txt with bytes that are not UTF-8 (surrogates, overlong
#     forms, above U+10FFFF), a file named with '"', a subtest and a
#     launch named over ReportPortal's limits: all uploaded;
#   - a wrong token or project: exit 2 before any test runs;
#   - a server answering 503 at the start: a warning, the run goes on,
#     the launch started in the background, everything uploaded;
#   - a server that is not there at all and Ctrl-C: exit 130 at once;
#   - Ctrl-C while the last uploads drain: says how to abandon them, the
#     second one does, the launch finished;
#   - --rp-attribute KEY: (blank value) refused; the token not in
#     /proc/PID/environ; atex report --reportportal ends the launch when
#     the run ended.
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/atex-cli-rp-edges.XXXXXX)
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
failures=0
TOKEN=rp-token-$RANDOM$RANDOM$RANDOM
PROJECT=atex_personal
export ATEX_TEST_RP_BACKOFF_MS=200

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

srv_pid=
atex_pid=
cleanup() {
	[ -n "$atex_pid" ] && kill -KILL "$atex_pid" 2>/dev/null
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

start_server() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid"
	mkdir -p "$work/srv-$1"
	RP_SERVER_TOKEN=$TOKEN /usr/bin/python3 "$here/rp-server.py" \
		--dir "$work/srv-$1" --token - --project "$PROJECT" \
		</dev/null 2>"$work/srv-$1.err" &
	srv_pid=$!
	for _ in $(seq 100); do
		[ -s "$work/srv-$1/port" ] && break
		sleep 0.1
	done
	URL=http://127.0.0.1:$(cat "$work/srv-$1/port")
}
fault() { curl -sf -X POST --data "$1" "$URL/_control/fault" >/dev/null; }
state() { curl -sf "$URL/_control/state"; }
py() { /usr/bin/python3 -c "$@"; }

# The tree: what a strict ReportPortal refuses when sent as it is.
tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
long=$(printf 'x%.0s' $(seq 1100))
cat >"$tree/main.fmf" <<FMF
/plan:
    discover:
        how: fmf
    execute:
        how: tmt
/tests:
    duration: 1m
    /surrogate:
        test: printf 'x\\xed\\xa0\\x80y\\xf4\\x90\\x80\\x80z\\xe0\\x80\\x80w\\n'
    /random:
        test: head -c 20000 /dev/urandom
    /quote:
        test: |
            f=\$(mktemp)
            echo quoted > "\$f"
            tmt-file-submit -l "\$f" --filename 'we"ird.txt'
            rm -f "\$f"
    /long:
        test: tmt-report-result /$long PASS
    /slow:
        test: sleep 0.5
FMF

# run NAME [args]: atex run of the tree in the background ($atex_pid).
run_bg() {
	local name=$1
	shift
	ATEX_REPORTPORTAL_TOKEN=${RUN_TOKEN:-$TOKEN} "$atex" run --local 2 \
		--results "$work/$name" --reportportal "$URL" \
		--rp-project "${RUN_PROJECT:-$PROJECT}" --rp-timeout 2 "$@" "$tree" \
		>"$work/$name.out" 2>"$work/$name.err" &
	atex_pid=$!
}
run_fg() {
	run_bg "$@"
	wait "$atex_pid"
	rc=$?
	atex_pid=
}
expect_rc() {
	if [ "$rc" = "$2" ]; then
		pass "$1: exit $2"
	else
		fail "$1: exit $rc, not $2"
		sed 's/^/     /' "$work/$1.err" | tail -20
	fi
}

# --- Items a strict ReportPortal refuses: all uploaded. --------------------
start_server strict
LAUNCH=$(printf 'L%.0s' $(seq 300))
run_fg strict --rp-launch "$LAUNCH"
expect_rc strict 0
if grep -q "not uploaded\|out of memory" "$work/strict.err"; then
	fail "strict: $(grep -m3 'not uploaded\|out of memory' "$work/strict.err")"
else
	pass "strict: nothing reported as not uploaded"
fi
got=$(state | py '
import json, sys
s = json.load(sys.stdin)
(la,) = s["launches"].values()
items = s["items"].values()
steps = {i["name"]: i for i in items if i["type"] == "STEP"}
bad = sorted(n[:20] for n, i in steps.items() if i["status"] != "PASSED")
inline = {i["name"]: [s["logs"][u]["message"] for u in i["logs"]
          if "file" not in s["logs"][u]] for i in steps.values()}
files = {s["logs"][u]["message"]: s["logs"][u]["file"]["name"]
         for i in steps.values() for u in i["logs"] if "file" in s["logs"][u]}
print(len(la["name"]) <= 256, la["status"], len(steps), bad,
      inline.get("/tests/surrogate"), files.get("we\"ird.txt"),
      max(len(n) for n in steps) <= 1024)')
exp="True PASSED 6 [] ['x???y????z???w\\n'] we_ird.txt True"
[ "$got" = "$exp" ] && pass "strict: every item passed, names cut, bytes as '?', safe file name" ||
	fail "strict: got $got, want $exp"

# atex report --reportportal later: the launch ends when the run ended.
sleep 1
ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" report --reportportal "$URL" \
	--rp-project "$PROJECT" --rp-launch "later" "$work/strict" \
	>"$work/later.out" 2>"$work/later.err"
rc=$?
expect_rc later 0
got=$(state | py '
import json, sys
s = json.load(sys.stdin)
ended = json.load(open(sys.argv[1]))["ended"]
(la,) = [l for l in s["launches"].values() if l["name"] == "later"]
print(la["endTime"] == ended, la["endTime"], ended)' "$work/strict/run.json")
[ "${got%% *}" = True ] && pass "later: the launch ends at the run's end" ||
	fail "later: launch end, run end: $got"

# --- Refused at the start: exit 2 before any test runs. ---------------------
for what in token project; do
	if [ $what = token ]; then
		RUN_TOKEN=wrong-$TOKEN run_fg "bad$what"
	else
		RUN_PROJECT=nope run_fg "bad$what"
	fi
	expect_rc "bad$what" 2
	want=$([ $what = token ] && echo "HTTP 401" || echo "HTTP 404")
	if grep -q "start launch: POST .*: $want after 1 try" "$work/bad$what.err" &&
		! grep -q "started" "$work/bad$what.err" &&
		[ ! -s "$work/bad$what/results.jsonl" ]; then
		pass "bad$what: $want at once, no test started"
	else
		fail "bad$what: $(tail -3 "$work/bad$what.err")"
	fi
done

# Not ReportPortal at all (a web server answering 200 with HTML): refused.
mkdir -p "$work/html"
/usr/bin/python3 -c '
import http.server, os, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html>a login page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_PUT = do_GET = do_POST
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + "/port.tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + "/port.tmp", sys.argv[1] + "/port")
ppid = os.getppid()
def watch():
    while os.getppid() == ppid:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
s.serve_forever()' "$work/html" </dev/null 2>/dev/null &
html_pid=$!
for _ in $(seq 100); do
	[ -s "$work/html/port" ] && break
	sleep 0.1
done
SAVED_URL=$URL
URL=http://127.0.0.1:$(cat "$work/html/port")
run_fg html
expect_rc html 2
grep -q "start launch.*not ReportPortal's answer" "$work/html.err" &&
	[ ! -s "$work/html/results.jsonl" ] &&
	pass "html: not ReportPortal: refused, no test started" ||
	fail "html: $(tail -3 "$work/html.err")"
kill "$html_pid" 2>/dev/null
URL=$SAVED_URL

# --- 503 at the start: a warning, the launch started in the background. ------
start_server late
fault '{"kind": "status", "status": 503, "count": 2, "match": "^POST /api/v2/[^/]+/launch$"}'
run_fg late --rp-retry-time 60
expect_rc late 0
grep -q "run: ReportPortal at $URL unreachable (.*HTTP 503.*): uploads will be retried in the background" "$work/late.err" &&
	pass "late: warned, the run went on" ||
	fail "late: $(grep -m2 ReportPortal "$work/late.err")"
got=$(state | py '
import json, sys
s = json.load(sys.stdin)
print([l["status"] for l in s["launches"].values()],
      sum(1 for i in s["items"].values() if i["type"] == "STEP"))')
[ "$got" = "['PASSED'] 6" ] && pass "late: everything uploaded after the start's retry" ||
	fail "late: launches and steps: $got"

# --- Nobody there, Ctrl-C: not held, exit 130 at once. ---------------------------
port=$(py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
run_bg gone --rp-retry-time 600
for _ in $(seq 300); do
	grep -q "uploading the last\|/tests/slow: pass\|/tests/slow.*pass" "$work/gone.err" 2>/dev/null && break
	[ -s "$work/gone/results.jsonl" ] && [ "$(wc -l <"$work/gone/results.jsonl")" -ge 6 ] && break
	sleep 0.1
done
sleep 0.5
t0=$(date +%s)
kill -INT "$atex_pid"
for _ in $(seq 100); do
	kill -0 "$atex_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$atex_pid"
rc=$?
atex_pid=
t1=$(date +%s)
expect_rc gone 130
grep -q "unreachable (.*): uploads will be retried in the background" "$work/gone.err" &&
	[ "$(wc -l <"$work/gone/results.jsonl")" -ge 6 ] && [ $((t1 - t0)) -le 5 ] &&
	pass "gone: the tests ran, the first Ctrl-C ended the wait ($((t1 - t0)) s)" ||
	fail "gone: $((t1 - t0)) s; $(tail -4 "$work/gone.err")"

# --- Ctrl-C while the last uploads drain. ------------------------------------------
start_server drain
fault '{"kind": "slow", "delay": 1, "count": 1000, "match": "^POST /api/v2/[^/]+/item/"}'
run_bg drain --rp-retry-time 60
for _ in $(seq 300); do
	grep -q "uploading the last" "$work/drain.err" 2>/dev/null && break
	sleep 0.1
done
grep -qF -- "$TOKEN" "/proc/$atex_pid/environ" &&
	fail "drain: the token is in /proc/$atex_pid/environ" ||
	pass "drain: the token is not in atex's /proc/PID/environ"
kill -INT "$atex_pid"
sleep 0.5
grep -q "run: uploading [0-9]* results\? to ReportPortal; Ctrl-C again to abandon them (the local results are complete)" "$work/drain.err" &&
	pass "drain: the first Ctrl-C says how to abandon the uploads" ||
	fail "drain: $(tail -3 "$work/drain.err")"
kill -INT "$atex_pid"
t0=$(date +%s)
wait "$atex_pid"
rc=$?
atex_pid=
t1=$(date +%s)
expect_rc drain 130
got=$(state | py '
import json, sys
s = json.load(sys.stdin)
print([l["status"] for l in s["launches"].values()])')
case $got in
"['PASSED']" | "['FAILED']") ok=1 ;;
*) ok= ;;
esac
[ -n "$ok" ] && [ $((t1 - t0)) -le 8 ] &&
	grep -q "abandoned, the launch finished with one try" "$work/drain.err" &&
	pass "drain: the second Ctrl-C abandoned them, the launch finished ($((t1 - t0)) s)" ||
	fail "drain: launch $got after $((t1 - t0)) s; $(tail -3 "$work/drain.err")"

# --- Options refused. ------------------------------------------------------------
ATEX_REPORTPORTAL_TOKEN=$TOKEN "$atex" run --local 1 --results "$work/blank" \
	--reportportal "$URL" --rp-project "$PROJECT" --rp-attribute "k:" "$tree" \
	>"$work/blank.out" 2>"$work/blank.err"
rc=$?
expect_rc blank 2
grep -q -- "--rp-attribute.*k:.*blank" "$work/blank.err" && [ ! -e "$work/blank" ] &&
	pass "blank: --rp-attribute k: refused" ||
	fail "blank: $(cat "$work/blank.err")"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

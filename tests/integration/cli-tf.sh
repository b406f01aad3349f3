#!/bin/bash
# cli-tf.sh ATEX: Testing Farm through the CLI, against the local API
# (tf-server.py, fast profile, public ranch; its sshd is every request's
# guest, reached with --ssh-option Port=N), on integration/trees/cli-tf:
#   - `atex run --testing-farm Fedora-41 --count 4`, through a 503 and two
#     429 answers: every result passes,
#     exactly 4 requests, each with the ingress rule of --tf-source, the
#     --tf-timeout and --tf-hardware given, all canceled when atex exits;
#   - a reservation that fails (request fault: error while provisioning) is
#     reported with its id and replaced; a destructive test's machine is
#     canceled and a fresh request serves the next test (--count 1);
#   - Ctrl-C mid-run and while reserving: exit 130, every request
#     canceled within 5 s;
#   - the token: nowhere in atex's output, debug log, results or private
#     files, nor in any process's arguments;
#   - `atex tf whoami`, `composes`, `cancel ID...` (exit 1 naming the id that
#     failed) and `reserve` (its ssh command logs in; Ctrl-C cancels the
#     request, exit 0, the generated key is gone; a request canceled
#     elsewhere ends it, exit 1);
#   - the public ranch without --tf-source: exit 2, no request made.
set -u
atex=$1
here=$(cd "$(dirname "$0")" && pwd)
tree=$ATEX_TEST_TREES/cli-tf
work=$(mktemp -d /tmp/atex-cli-tf.XXXXXX)
failures=0
# atex's private files (keys, ssh masters) go here: the token must not
# be in them either.
export TMPDIR=$work/tmp
mkdir "$TMPDIR"

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

for cmd in jq curl ssh ssh-keygen /usr/bin/python3 /usr/sbin/sshd; do
	command -v "$cmd" >/dev/null || {
		echo "FAIL cli-tf needs $cmd"
		exit 1
	}
done

# shellcheck source=tf-server.sh
. "$here/tf-server.sh"
atex_pid=
cleanup() {
	[ -n "$atex_pid" ] && kill -KILL "$atex_pid" 2>/dev/null
	tf_server_stop
	rm -rf "$work"
}
trap cleanup EXIT
tf_server_start || exit 1

tf=(--ssh-option "Port=$TF_SSH_PORT" --tf-poll 0.2
	--tf-source 127.0.0.1/32)

# requests FILTER: jq over the control API's request list.
requests() { tf_requests | jq -c "$1"; }

# own_statuses RUN: "TEST:STATUS" of every test's own final result, sorted.
own_statuses() {
	jq -s -r '[.[] | select(.[3] == null) | "\(.[2]):\(.[1])"] | sort |
		join(" ")' "$work/$1/results.jsonl" 2>/dev/null
}

# no_token NAME FILE...: the token in none of the files (recursively).
no_token() {
	local name=$1
	shift
	if grep -rlF -- "$TF_TOKEN" "$@" >"$work/token-hits" 2>/dev/null; then
		fail "$name: the token is in $(tr '\n' ' ' <"$work/token-hits")"
	else
		pass "$name: the token is in none of atex's files"
	fi
}

# --- A whole run on 4 machines, through a few API outages. -------------------
tf_fault '{"status": 503, "count": 1, "match": "^POST /v0.1/requests$"}'
tf_fault '{"status": 429, "count": 2, "match": "^GET /v0.1/requests/"}'
t0=$(date +%s)
ATEX_LOG=debug "$atex" run --testing-farm Fedora-41 --count 4 "${tf[@]}" \
	--tf-timeout 30 --tf-hardware '{"memory": ">= 1 GiB"}' \
	--results "$work/full" "$tree" >"$work/full.out" 2>"$work/full.err" &
atex_pid=$!
# While it runs: no process has the token in its arguments (pgrep leaves
# itself out).
sleep 3
if pgrep -f -- "$TF_TOKEN" >/dev/null; then
	fail "full run: a process has the token in its arguments"
else
	pass "full run: no process has the token in its arguments"
fi
wait "$atex_pid"
rc=$?
atex_pid=
t1=$(date +%s)
want="/tests/a:pass /tests/b:pass /tests/c:pass /tests/d:pass /tests/e:pass /tests/f:pass"
if [ "$rc" -eq 0 ] && [ "$(own_statuses full)" = "$want" ]; then
	pass "full run: exit 0, every test passed in $((t1 - t0)) s"
else
	fail "full run: exit $rc, results '$(own_statuses full)': $(tail -5 "$work/full.err")"
fi
n=$(requests 'length')
[ "$n" = 4 ] && pass "full run: 4 requests" || fail "full run: $n requests, want 4"
n=$(grep -c '"fault": "' "$TF_DIR/access.log")
[ "$n" -ge 3 ] && pass "full run: went through $n injected API errors" ||
	fail "full run: only $n of 3 injected API errors served"
bad=$(requests '[.[] | select(.deleted_at == null or
	(.state | IN("canceled", "cancel-requested") | not)) | .id]')
[ "$bad" = "[]" ] && pass "full run: every request canceled after the run" ||
	fail "full run: not canceled: $bad"
alive=$(tf_alive_count)
[ "$alive" = 0 ] || sleep 1
alive=$(tf_alive_count)
[ "$alive" = 0 ] && pass "full run: no request alive" ||
	fail "full run: $alive requests alive"
bad=$(requests '[.[] | select([.body.environments[0].settings.provisioning
	| .security_group_rules_ingress[]? | .cidr] | index("127.0.0.1/32") == null)
	| .id]')
[ "$bad" = "[]" ] && pass "full run: the ingress rule has the --tf-source CIDR" ||
	fail "full run: no ingress rule with 127.0.0.1/32 in $bad: $(requests '.[0].body.environments')"
bad=$(requests '[.[] | select(.body.settings.pipeline.timeout != 30 or
	.body.environments[0].hardware.memory != ">= 1 GiB" or
	.body.environments[0].os.compose != "Fedora-41" or
	.body.environments[0].arch != "x86_64") | .id]')
[ "$bad" = "[]" ] && pass "full run: compose, arch, --tf-timeout and --tf-hardware sent" ||
	fail "full run: wrong request bodies $bad: $(requests '.[0].body')"
no_token "full run" "$work/full.out" "$work/full.err" "$work/full" "$TMPDIR"

# --- A failed reservation retried; a destructive test's machine replaced. ---
n0=$(requests 'length')
tf_request_fault '{"error": true}'
"$atex" run --testing-farm Fedora-41 --count 1 "${tf[@]}" \
	--context mode=destructive --test '0-destructive|/a$' \
	--results "$work/destr" "$tree" >"$work/destr.out" 2>"$work/destr.err"
rc=$?
want="/tests/0-destructive:pass /tests/a:pass"
if [ "$rc" -eq 0 ] && [ "$(own_statuses destr)" = "$want" ]; then
	pass "destructive run: exit 0, both tests passed"
else
	fail "destructive run: exit $rc, results '$(own_statuses destr)': $(tail -5 "$work/destr.err")"
fi
mine=".[$n0:]"
# (cancel-requested becomes canceled half a second later.)
states=$(requests "[$mine[] | .state | sub(\"cancel-requested\"; \"canceled\")]
	| join(\" \")")
if [ "$states" = '"error canceled canceled"' ]; then
	pass "destructive run: 3 requests: failed, broken, fresh"
else
	fail "destructive run: request states $states, want error canceled canceled"
fi
failed_id=$(requests "$mine[0].id" | tr -d '"')
if [ -n "$failed_id" ] && grep -qF -- "$failed_id" "$work/destr.err"; then
	pass "destructive run: the failed request $failed_id is reported"
else
	fail "destructive run: the failed request '$failed_id' is not in stderr: $(cat "$work/destr.err")"
fi
# The fresh machine was asked for after the broken one was canceled
# (--count 1: one alive at a time).
if requests "$mine" | jq -e 'length == 3 and .[1].deleted_at != null and
	.[1].deleted_at <= .[2].history[0][1]' >/dev/null; then
	pass "destructive run: the destructive test's request canceled, a fresh one used"
else
	fail "destructive run: $(requests "[$mine[] | {id, state, deleted_at, history}]")"
fi

# --- Ctrl-C mid-run: every request canceled within 5 s. ----------------------
n0=$(requests 'length')
endless="sleep 300.$$"
"$atex" run --testing-farm Fedora-41 --count 2 "${tf[@]}" \
	--env "ENDLESS=${endless#sleep }" --context mode=interrupt \
	--test 'endless|/a$' --results "$work/int" "$tree" \
	>"$work/int.out" 2>"$work/int.err" &
atex_pid=$!
for _ in $(seq 1 600); do
	grep -q "/tests/endless started" "$work/int.err" 2>/dev/null && break
	sleep 0.1
done
sleep 1
# On a busy machine (make check runs suites side by side) its process may
# show a moment later.
for _ in $(seq 1 100); do
	pgrep -f "$endless" >/dev/null && break
	sleep 0.1
done
pgrep -f "$endless" >/dev/null && pass "interrupt: the endless test runs" ||
	fail "interrupt: no '$endless' running before Ctrl-C: $(tail -3 "$work/int.err")"
t_int=$(date +%s.%N)
kill -INT "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
[ "$rc" -eq 130 ] && pass "interrupt: exit 130" ||
	fail "interrupt: exit $rc, want 130: $(tail -5 "$work/int.err")"
late=$(requests "[.[$n0:][] | select(.deleted_at == null or
	.deleted_at > $t_int + 5) | .id]")
n=$(requests ".[$n0:] | length")
if [ "$n" -ge 1 ] && [ "$late" = "[]" ]; then
	pass "interrupt: all $n requests canceled within 5 s"
else
	fail "interrupt: $n requests, not canceled within 5 s: $late"
fi
no_token "interrupt" "$work/int.out" "$work/int.err" "$work/int" "$TMPDIR"

# Ctrl-C while more systems are wanted than --count allows (spares asked
# for, --count 2): a machine released at the signal must not make room for a
# new request (none POSTed after the signal).
n0=$(requests 'length')
"$atex" run --testing-farm Fedora-41 --count 2 --max-spares 2 "${tf[@]}" \
	--env "ENDLESS=${endless#sleep }" --context mode=interrupt \
	--test 'endless|/a$' --results "$work/int2" "$tree" \
	>"$work/int2.out" 2>"$work/int2.err" &
atex_pid=$!
for _ in $(seq 1 600); do
	grep -q "/tests/endless started" "$work/int2.err" 2>/dev/null && break
	sleep 0.1
done
sleep 1
t_int=$(date +%s.%N)
kill -INT "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
sleep 1
after=$(requests "[.[$n0:][] | select(.history[0][1] >= $t_int) | .id]")
n=$(requests ".[$n0:] | length")
if [ "$rc" -eq 130 ] && [ "$n" -eq 2 ] && [ "$after" = "[]" ]; then
	pass "interrupt with systems wanted: exit 130, no request made after the signal"
else
	fail "interrupt with systems wanted: exit $rc, $n requests, made after the signal: $after: $(tail -3 "$work/int2.err")"
fi
# Without ATEX_LOG, the provisioner's info lines show every request's id
# (what a user needs after a kill -9), and no other component's info.
missing=
for id in $(requests ".[$n0:][] | .id" | tr -d '"'); do
	grep -q "atex\[testingfarm\] info: .*: submitted request $id$" \
		"$work/int2.err" || missing="$missing $id"
done
if [ -z "$missing" ] && grep -q "canceled request" "$work/int2.err" &&
	! grep -v '^atex\[testingfarm\]' "$work/int2.err" | grep -q '^atex\[.*\] info:'; then
	pass "request ids shown by default (testingfarm info lines only)"
else
	fail "request ids shown by default: missing$missing: $(grep '^atex\[' "$work/int2.err" | head -5)"
fi

# A second signal exits at once, naming the requests that may be left
# alive and how to cancel them.
n0=$(requests 'length')
"$atex" run --testing-farm Fedora-41 --count 2 "${tf[@]}" \
	--env "ENDLESS=${endless#sleep }" --context mode=interrupt \
	--test 'endless|/a$' --results "$work/int3" "$tree" \
	>"$work/int3.out" 2>"$work/int3.err" &
atex_pid=$!
for _ in $(seq 1 600); do
	grep -q "/tests/endless started" "$work/int3.err" 2>/dev/null && break
	sleep 0.1
done
# The token is removed from atex's environment once read: none of its
# children (the ssh master, the tests' ssh) inherits it. (atex's own
# /proc/PID/environ is the environment it started with.)
heirs=
for pid in $(pgrep -P "$atex_pid"); do
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
		grep -q '^TESTING_FARM_API_TOKEN=' && heirs="$heirs $pid"
done
if [ -n "$(pgrep -P "$atex_pid")" ] && [ -z "$heirs" ]; then
	pass "no child of atex inherits the token"
else
	fail "children of atex with the token:$heirs (children: $(pgrep -P "$atex_pid" | tr '\n' ' '))"
fi
# Two different signals: two INTs sent at once may merge into one.
kill -INT "$atex_pid"
kill -TERM "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
line=$(grep -m1 'Testing Farm request.* may be left alive' "$work/int3.err")
listed=${line#*atex tf cancel}
mine=$(requests ".[$n0:][] | .id" | tr -d '"' | tr '\n' ' ')
unknown=
for id in $listed; do
	case " $mine " in *" $id "*) ;; *) unknown="$unknown $id" ;; esac
done
if [ "$rc" -eq 143 ] && [ -n "$line" ] && [ -n "${listed// /}" ] &&
	[ -z "$unknown" ]; then
	pass "second signal: exit 143 at once, naming the requests left alive"
else
	fail "second signal: exit $rc, '$line' (requests: $mine): $(tail -3 "$work/int3.err")"
fi
# The command it gives works (requests already ended count as done).
# shellcheck disable=SC2086
"$atex" tf cancel $listed >/dev/null 2>"$work/int3.cancel" ||
	fail "second signal: atex tf cancel$listed: $(cat "$work/int3.cancel")"

# Ctrl-C while the machines are still being reserved (none ready yet).
n0=$(requests 'length')
ATEX_LOG=warning "$atex" run --testing-farm Fedora-41 --count 4 "${tf[@]}" \
	--results "$work/early" "$tree" >"$work/early.out" 2>"$work/early.err" &
atex_pid=$!
for _ in $(seq 1 100); do
	[ "$(requests ".[$n0:] | length")" -ge 4 ] && break
	sleep 0.1
done
sleep 0.5
t_int=$(date +%s.%N)
kill -INT "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
late=$(requests "[.[$n0:][] | select(.deleted_at == null or
	.deleted_at > $t_int + 5) | .id]")
n=$(requests ".[$n0:] | length")
if [ "$rc" -eq 130 ] && [ "$n" -eq 4 ] && [ "$late" = "[]" ]; then
	pass "interrupt while reserving: exit 130, all 4 requests canceled within 5 s"
else
	fail "interrupt while reserving: exit $rc, $n requests, not canceled within 5 s: $late: $(tail -3 "$work/early.err")"
fi
! grep -q "submitted request" "$work/early.err" &&
	pass "ATEX_LOG=warning hides the request ids" ||
	fail "ATEX_LOG=warning: $(grep -m1 'submitted request' "$work/early.err")"

# --- atex tf whoami, composes, cancel. ---------------------------------------
if "$atex" tf whoami >"$work/whoami" 2>"$work/whoami.err" &&
	jq -e '.token.ranch == "public"' "$work/whoami" >/dev/null; then
	pass "tf whoami: the ranch"
else
	fail "tf whoami: $(cat "$work/whoami" "$work/whoami.err")"
fi
if "$atex" tf composes >"$work/composes" 2>&1 &&
	grep -qx Fedora-41 "$work/composes" &&
	grep -qx CentOS-Stream-10 "$work/composes"; then
	pass "tf composes: one name a line"
else
	fail "tf composes: $(cat "$work/composes")"
fi
TESTING_FARM_API_TOKEN='' "$atex" tf whoami >/dev/null 2>"$work/notoken.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q TESTING_FARM_API_TOKEN "$work/notoken.err" &&
	pass "tf whoami without a token: exit 2 naming the variable" ||
	fail "tf whoami without a token: exit $rc: $(cat "$work/notoken.err")"
# A request made here (the token in a header file, not an argument).
printf 'Authorization: Bearer %s\n' "$TF_TOKEN" >"$work/auth"
id=$(curl -sS -H @"$work/auth" -H 'Content-Type: application/json' \
	--data-binary '{"test": {"fmf": {"url": "u"}}, "environments":
		[{"arch": "x86_64", "os": {"compose": "Fedora-41"}}]}' \
	"$TF_URL/v0.1/requests" | jq -r .id)
rm -f "$work/auth"
"$atex" tf cancel "$id" no-such-request >"$work/cancel.out" 2>"$work/cancel.err"
rc=$?
if [ "$rc" -eq 1 ] && grep -qx "canceled $id" "$work/cancel.out" &&
	grep -q "not canceled: no-such-request$" "$work/cancel.err" &&
	[ "$(requests ".[] | select(.id == \"$id\") | .deleted_at != null")" = true ]; then
	pass "tf cancel: one canceled, exit 1 naming the other"
else
	fail "tf cancel: exit $rc: $(cat "$work/cancel.out" "$work/cancel.err")"
fi
# Canceled again (409 from the API): already ended, not a failure.
"$atex" tf cancel "$id" >"$work/cancel.out" 2>"$work/cancel.err"
rc=$?
[ "$rc" -eq 0 ] && grep -qx "already ended: $id" "$work/cancel.out" &&
	pass "tf cancel: an ended request: 'already ended', exit 0" ||
	fail "tf cancel of an ended request: exit $rc: $(cat "$work/cancel.out" "$work/cancel.err")"
"$atex" tf cancel ../whoami >/dev/null 2>"$work/cancel.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "'../whoami' is not a request id" "$work/cancel.err" &&
	pass "tf cancel: a bad id is refused" ||
	fail "tf cancel ../whoami: exit $rc: $(cat "$work/cancel.err")"

# --- atex tf reserve: a working ssh command, Ctrl-C cancels. -----------------
n0=$(requests 'length')
"$atex" tf reserve Fedora-41 "${tf[@]}" >"$work/res.out" 2>"$work/res.err" &
atex_pid=$!
for _ in $(seq 1 600); do
	grep -q '^ssh ' "$work/res.out" 2>/dev/null && break
	kill -0 "$atex_pid" 2>/dev/null || break
	sleep 0.1
done
login=$(grep -m1 '^ssh ' "$work/res.out")
key=$(awk '{print $3}' <<<"$login")
# BatchMode before the destination: what follows it is the command.
got=$(eval "ssh -o BatchMode=yes -o ConnectTimeout=10 ${login#ssh } echo reserved-ok" \
	</dev/null 2>"$work/res.ssh")
if [ "$got" = reserved-ok ]; then
	pass "tf reserve: the printed ssh command logs in"
else
	fail "tf reserve: '$login' gave '$got': $(cat "$work/res.ssh" "$work/res.err")"
fi
t_int=$(date +%s.%N)
kill -INT "$atex_pid"
wait "$atex_pid"
rc=$?
atex_pid=
late=$(requests "[.[$n0:][] | select(.deleted_at == null or
	.deleted_at > $t_int + 5) | .id]")
n=$(requests ".[$n0:] | length")
if [ "$rc" -eq 0 ] && [ "$n" = 1 ] && [ "$late" = "[]" ]; then
	pass "tf reserve: Ctrl-C canceled its request, exit 0"
else
	fail "tf reserve: exit $rc, $n requests, not canceled: $late: $(tail -3 "$work/res.err")"
fi
if [ -n "$key" ] && [ ! -e "$key" ]; then
	pass "tf reserve: the generated key is removed at exit"
else
	fail "tf reserve: key '$key' still there"
fi
no_token "tf reserve" "$work/res.out" "$work/res.err" "$TMPDIR"

# A held machine whose request ends (canceled elsewhere): exit 1, saying so.
n0=$(requests 'length')
"$atex" tf reserve Fedora-41 "${tf[@]}" >"$work/res2.out" 2>"$work/res2.err" &
atex_pid=$!
for _ in $(seq 1 600); do
	grep -q '^ssh ' "$work/res2.out" 2>/dev/null && break
	kill -0 "$atex_pid" 2>/dev/null || break
	sleep 0.1
done
id=$(requests ".[$n0].id" | tr -d '"')
"$atex" tf cancel "$id" >/dev/null
for _ in $(seq 1 50); do
	kill -0 "$atex_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$atex_pid" 2>/dev/null; then
	fail "tf reserve: still holding 5 s after its request $id was canceled"
	kill -INT "$atex_pid"
fi
wait "$atex_pid"
rc=$?
atex_pid=
if [ "$rc" -eq 1 ] && grep -q "request $id ended (state cancel" "$work/res2.err"; then
	pass "tf reserve: its request canceled elsewhere: exit 1, said so"
else
	fail "tf reserve: request canceled elsewhere: exit $rc: $(cat "$work/res2.err")"
fi

# --- The public ranch needs --tf-source. -------------------------------------
n0=$(requests 'length')
"$atex" exec --testing-farm Fedora-41 --ssh-option "Port=$TF_SSH_PORT" \
	--tf-poll 0.2 -- true >"$work/nosrc.out" 2>"$work/nosrc.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qi 'source' "$work/nosrc.err" &&
	[ "$(requests 'length')" = "$n0" ]; then
	pass "public ranch without --tf-source: exit 2, no request"
else
	fail "public ranch without --tf-source: exit $rc, $(requests 'length') requests (before: $n0): $(cat "$work/nosrc.err")"
fi

no_token "server side" "$TF_DIR/access.log"
if [ "$failures" -eq 0 ]; then
	echo "all Testing Farm CLI checks passed"
	exit 0
fi
echo "$failures check(s) failed"
exit 1

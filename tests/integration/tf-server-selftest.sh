#!/bin/bash
# The fake Testing Farm API (tf-server.py) checked with curl and ssh, so
# that the provisioner's and the CLI's tests can trust it: auth, a
# request's life and its timestamps, pipeline.log and Range, the guest's
# authorized_keys and a real ssh login, DELETE, whoami/composes, every
# HTTP fault and request fault, the pipeline timeout, a restart of the
# listener, the token never written, and no sshd left behind (stop,
# SIGKILL of the server, death of the server's parent).
# usage: tf-server-selftest.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tf-server.sh"
work=$(mktemp -d)
failures=0
trap 'tf_server_stop; rm -rf "$work"' EXIT
pass() { echo "ok   $1 [$SECONDS s]"; }
fail() { echo "FAIL $1 [$SECONDS s]"; failures=$((failures + 1)); }
check() { # NAME COMMAND...: passes when the command succeeds
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
# After a compound condition: reports it by its status.
verdict() { if [ $? = 0 ]; then pass "$1"; else fail "$1"; fi; }
py() { /usr/bin/python3 -c "$@"; }

tf_server_start --scale 0.2 || exit 1
auth=(-H "Authorization: Bearer $TF_TOKEN")

# http METHOD PATH [curl args...]: the status on stdout, the body in
# $work/body, the headers in $work/headers.
http() {
	local m=$1 p=$2
	shift 2
	curl -s -X "$m" -o "$work/body" -D "$work/headers" \
		-w '%{http_code}' --max-time 10 "$@" "$TF_URL$p"
}
# jq-like: jget EXPR [FILE]; the JSON document is `d`.
jget() {
	py "import json,sys; d=json.load(open(sys.argv[2])); print($1)" \
		"$1" "${2:-$work/body}"
}
header() { tr -d '\r' <"$work/headers" | grep -i "^$1:" | cut -d' ' -f2-; }
body_is() { [ "$(cat "$work/body")" = "$1" ]; }

keygen() { ssh-keygen -q -t ed25519 -N '' -C "atex@selftest" -f "$work/$1"; }
keygen k1
keygen k2
keygen k3
b64() { base64 -w0 "$work/$1.pub"; }
# body COMPOSE KEY [settings JSON]
body() {
	printf '{"test": {"fmf": {"url": "https://gitlab.com/testing-farm/tests", "ref": "main", "name": "/testing-farm/reserve"}}, "environments": [{"arch": "x86_64", "os": {"compose": "%s"}, "secrets": {"TF_RESERVATION_AUTHORIZED_KEYS_BASE64": "%s"}}], "settings": %s}' \
		"$1" "$(b64 "$2")" "${3:-{\}}"
}
# post COMPOSE KEY [settings]: the new request's id on stdout
post() {
	local s
	s=$(http POST /v0.1/requests "${auth[@]}" --data-binary "$(body "$@")")
	[ "$s" = 200 ] && jget 'd["id"]'
}
ctl() { # ctl ID EXPR: EXPR on the control API's entry `r` of request ID
	tf_requests >"$work/ctl"
	py "import json,sys
r=[r for r in json.load(open(sys.argv[2])) if r['id']==sys.argv[1]][0]
print($2)" "$1" "$work/ctl"
}
state() { ctl "$1" 'r["state"]'; }
wait_for() { # wait_for SECONDS COMMAND...: polls every 50 ms
	local end=$((SECONDS + $1 + 1))
	shift
	while [ $SECONDS -lt $end ]; do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
ssh_ok() { # ssh_ok KEY: logs in to the guest with KEY
	ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 \
		-p "$TF_SSH_PORT" -i "$work/$1" root@127.0.0.1 true </dev/null
}
has_key() { grep -qF "$(cut -d' ' -f1-2 "$work/$1.pub")" "$TF_DIR/authorized_keys"; }

# --- auth ---
for p in "POST /v0.1/requests" "GET /v0.1/whoami" "GET /v0.1/composes" \
	"GET /v0.2/composes/public" "DELETE /v0.1/requests/x"; do
	s=$(http $p)
	[ "$s" = 401 ] && body_is '{"message": "Not authorized"}'
	verdict "401 without a token: $p"
done
s=$(http GET /v0.1/whoami -H "Authorization: Bearer wrong")
check "401 with a wrong token" [ "$s" = 401 ]

# --- whoami, composes, 404s, 400s ---
s=$(http GET /v0.1/whoami "${auth[@]}")
[ "$s" = 200 ] && [ "$(jget 'd["token"]["ranch"], d["user"]["name"]')" = "public tester" ]
verdict "whoami"
check "whoami is JSON" [ "$(header Content-Type)" = application/json ]
want="Fedora-41 Fedora-42 CentOS-Stream-9 CentOS-Stream-10 RHEL-9.6.0-Nightly"
for p in /v0.1/composes /v0.2/composes/public; do
	s=$(http GET $p "${auth[@]}")
	[ "$s" = 200 ] && [ "$(jget '" ".join(c["name"] for c in d["composes"])')" = "$want" ]
	verdict "composes $p"
done
s=$(http GET /v0.1/requests/no-such-id)
[ "$s" = 404 ] && body_is '{"message": "no such request"}'
verdict "GET of an unknown request: 404"
s=$(http GET /nothing/here)
[ "$s" = 404 ] && [ "$(header Content-Type)" = application/json ]
verdict "unknown path: 404 JSON"
s=$(http POST /v0.1/requests "${auth[@]}" --data-binary 'not json')
check "POST of a body that is not JSON: 400" [ "$s" = 400 ]
s=$(http POST /v0.1/requests "${auth[@]}" --data-binary '{"environments": [{}]}')
check "POST without test.fmf: 400" [ "$s" = 400 ]
s=$(http POST /v0.1/requests "${auth[@]}" --data-binary '{"test": {"fmf": {"url": "u"}}, "environments": []}')
check "POST without environments: 400" [ "$s" = 400 ]
check "no request made by the bad POSTs" [ "$(tf_requests)" = "[]" ]

# --- request faults, queued before the requests they apply to ---
tf_request_fault '{"log_403": true, "log_404_s": 30}'
B=$(post Fedora-41 k2)          # log 403 while missing
tf_request_fault '{"split_lines": true, "ignore_range": true}'
C=$(post CentOS-Stream-9 k2)    # split lines, Range ignored; shares k2
tf_request_fault '{"no_key": true}'
D=$(post Fedora-42 k3)          # never gets its key
tf_request_fault '{"error": true}'
E=$(post Fedora-42 k3)          # error while provisioning
F=$(post Fedora-99 k3)          # unknown compose
G=$(post Fedora-42 k3 '{"pipeline": {"timeout": 0.05}}')  # 0.6 s scaled
# A: the log 404s 3 s (0.6 s scaled): the main request.
tf_request_fault '{"log_404_s": 3}'
s=$(http POST /v0.1/requests "${auth[@]}" --data-binary "$(body Fedora-42 k1)")
A=$(jget 'd["id"]')
[ "$s" = 200 ] &&
	[ "$(jget 'd["state"], d["run"], d["environments_requested"][0]["secrets"]')" = "new None {'TF_RESERVATION_AUTHORIZED_KEYS_BASE64': '*****'}" ] &&
	! grep -qF "$(b64 k1)" "$work/body"
verdict "POST: 200, state new, no run, secrets hidden"
[ "$(ctl "$B" 'len(r["id"])')" = 36 ] && [ -n "$G" ]
verdict "the request faults went to one request each"

# A's states as GET shows them, polled until the log exists.
states=() log404=0 artifacts= last=
end=$((SECONDS + 10))
while [ $SECONDS -lt $end ]; do
	http GET "/v0.1/requests/$A" >/dev/null
	st=$(jget 'd["state"]')
	[ "$last" != "$st" ] && states+=("$st")
	last=$st
	if [ "$st" = running ]; then
		artifacts=$(jget 'd["run"]["artifacts"]')
		s=$(http GET "/artifacts/$A/pipeline.log")
		[ "$s" = 404 ] && log404=$((log404 + 1))
		[ "$s" = 200 ] && break
	fi
	sleep 0.03
done
# The POST's reply showed "new"; on a busy machine the first GET may come
# after the scaled second of "new" (or of "queued") is over: the states
# seen are the end of the sequence, in order.
check "GET: new -> queued -> running (${states[*]})" \
	[ "${states[*]}" = "new queued running" -o "${states[*]}" = "queued running" \
	-o "${states[*]}" = "running" ]
check "run.artifacts is URL/artifacts/ID" [ "$artifacts" = "$TF_URL/artifacts/$A" ]
# (Polled every 0.03 s for a scaled second: a loaded machine sees fewer.)
[ "$log404" -ge 1 ] && [ "$s" = 200 ]
verdict "pipeline.log: 404 first ($log404 times), then 200"
check "history: new, queued, running in order, ~0.2 s apart" py "
import json,sys
r=[r for r in json.loads(sys.argv[1]) if r['id']==sys.argv[2]][0]
h=r['history']
assert [s for s,_ in h]==['new','queued','running'], h
assert all(0.15 < b[1]-a[1] < 0.6 for a,b in zip(h,h[1:])), h" "$(tf_requests)" "$A"

# pipeline.log and Range
wait_for 5 has_key k1
curl -s "$TF_URL/artifacts/$A/pipeline.log" >"$work/log"
size=$(stat -c %s "$work/log")
s=$(http GET "/artifacts/$A/pipeline.log" -H "Range: bytes=7-")
[ "$s" = 206 ] &&
	cmp -s <(tail -c +8 "$work/log" | head -c $((size - 7))) "$work/body" &&
	header Content-Range | grep -q "^bytes 7-[0-9]*/[0-9]*"
verdict "Range: bytes=7-: 206 with the rest"
check "pipeline.log is text/plain" header Content-Type | grep -q "^text/plain"
s=$(http GET "/artifacts/$A/pipeline.log" -H "Range: bytes=99999999-")
check "Range at the end: 416" [ "$s" = 416 ]
s=$(http GET "/artifacts/$A/pipeline.log")
[ "$s" = 200 ] && cmp -s <(head -c "$size" "$work/body") "$work/log"
verdict "no Range: 200, the whole file"
# HEAD: a length and no body (else the GET after it on the same connection
# would read that body as its answer).
out=$(curl -s -I -o /dev/null -D "$work/headers" -w '%{http_code} ' \
	"$TF_URL/artifacts/$A/pipeline.log" --next -s -o "$work/body" \
	-w '%{http_code} %{num_connects}' "$TF_URL/v0.1/requests/$A")
[ "$out" = "200 200 0" ] && [ "$(header Content-Length)" -gt 0 ] &&
	[ "$(jget 'd["id"]')" = "$A" ]
verdict "HEAD pipeline.log: 200, a length, no body ($out)"
check "colour codes in the log" grep -q $'\033\\[[0-9;]*m' "$work/log"
lines=$(grep -n -e '] Guest is ready: ArtemisGuest(' -e '] starting tests execution' \
	-e 'machine is reserved' "$work/log" | cut -d: -f1 | tr '\n' ' ')
check "Guest is ready, starting tests execution, machine is reserved, in order ($lines)" \
	py "import sys; l=list(map(int,sys.argv[1].split())); assert len(l)==3 and l==sorted(l)" "$lines"
check "the Guest is ready line as clients parse it" \
	grep -qE "^.*\[[0-9]{2}:[0-9]{2}:[0-9]{2}\].* \[$A\] Guest is ready: ArtemisGuest\([^,]+, root@127\.0\.0\.1, arch=x86_64, compose=Fedora-42," "$work/log"
check "key installed 2 s (scaled) after guest ready" py "
import json,sys
r=[r for r in json.loads(sys.argv[1]) if r['id']==sys.argv[2]][0]
run=[t for s,t in r['history'] if s=='running'][0]
assert 0.3 < r['guest_ready_at']-run < 0.6, r
assert 0.3 < r['key_installed_at']-r['guest_ready_at'] < 0.6, r" "$(tf_requests)" "$A"
check "A's key is in authorized_keys" has_key k1
check "ssh with A's key works" ssh_ok k1

# The other requests, now that they had their time.
sleep 1
s=$(http GET "/artifacts/$B/pipeline.log")
check "log_403: 403 while the log is missing" [ "$s" = 403 ]
[ "$(state "$F")" = error ] &&
	curl -s "$TF_URL/artifacts/$F/pipeline.log" | grep -q "Guest provisioning failed: unknown compose Fedora-99"
verdict "unknown compose: error, the log says so"
[ "$(state "$E")" = error ] &&
	curl -s "$TF_URL/artifacts/$E/pipeline.log" | grep -q "Guest provisioning failed"
verdict "error fault: error, Guest provisioning failed"
check "error requests never got their key" [ "$(ctl "$E" 'r["key_installed_at"]')" = None ]
check "no_key: running, guest ready, key never installed" \
	[ "$(ctl "$D" 'r["state"], r["guest_ready_at"] is not None, r["key_installed_at"]')" = "running True None" ]
eval '! has_key k3 && ! ssh_ok k3'
verdict "no_key: k3 not in authorized_keys, ssh refused"
[ "$(state "$G")" = complete ] &&
	curl -s "$TF_URL/artifacts/$G/pipeline.log" | grep -q "timeout reached"
verdict "pipeline timeout: complete, timeout reached"
s=$(http GET "/artifacts/$C/pipeline.log" -H "Range: bytes=5-")
[ "$s" = 200 ] && head -c 5 "$work/body" | grep -q '^.\[90m'
verdict "ignore_range: 200 with the whole file"
partial=0
for i in $(seq 60); do
	curl -s "$TF_URL/artifacts/$C/pipeline.log" >"$work/c.log"
	[ -s "$work/c.log" ] && [ "$(tail -c 1 "$work/c.log" | od -An -c | tr -d ' ')" != '\n' ] &&
		partial=$((partial + 1))
	sleep 0.013
done
[ "$partial" -ge 3 ] && [ "$partial" -le 57 ]
verdict "split_lines: partial lines seen ($partial of 60 reads)"

# --- DELETE ---
check "B and C share k2: installed once" [ "$(grep -cF "$(cut -d' ' -f2 "$work/k2.pub")" "$TF_DIR/authorized_keys")" = 1 ]
s=$(http DELETE "/v0.1/requests/$B" "${auth[@]}")
[ "$s" = 200 ] && [ "$(jget 'd["state"]')" = cancel-requested ]
verdict "DELETE B: 200 cancel-requested"
check "k2 stays while C, alive, has it" has_key k2
s=$(http DELETE "/v0.1/requests/$A" "${auth[@]}")
[ "$s" = 200 ] && [ "$(jget 'd["state"]')" = cancel-requested ]
verdict "DELETE A: 200 cancel-requested"
check "A's key removed at once" eval '! has_key k1'
check "ssh with A's key refused" eval '! ssh_ok k1'
check "A canceled 0.5 s (scaled) later" wait_for 2 eval '[ "$(state "$A")" = canceled ]'
s=$(http DELETE "/v0.1/requests/$A" "${auth[@]}")
[ "$s" = 409 ] && body_is '{"message": "request already finished"}'
verdict "second DELETE: 409"
s=$(http DELETE "/v0.1/requests/no-such-id" "${auth[@]}")
check "DELETE of an unknown request: 404" [ "$s" = 404 ]
check "delete_count 2, deleted_at set" [ "$(ctl "$A" 'r["delete_count"], r["deleted_at"] is not None')" = "2 True" ]
s=$(http DELETE "/v0.1/requests/$G" "${auth[@]}")
check "DELETE of a complete request: 409" [ "$s" = 409 ]
http DELETE "/v0.1/requests/$C" "${auth[@]}" >/dev/null
check "k2 removed with its last request" eval '! has_key k2'

# --- HTTP faults ---
tf_fault '{"status": 503, "count": 2, "match": "^GET /v0.1/whoami$"}'
s1=$(http GET /v0.1/composes "${auth[@]}")
s2=$(http GET /v0.1/whoami "${auth[@]}")
s3=$(http GET /v0.1/whoami "${auth[@]}")
s4=$(http GET /v0.1/whoami "${auth[@]}")
check "status fault: only what matches, count times ($s1 $s2 $s3 $s4)" [ "$s1 $s2 $s3 $s4" = "200 503 503 200" ]
tf_fault '{"status": 429}'
s=$(http GET "/v0.1/requests/$A")
[ "$s" = 429 ] && [ "$(header Retry-After)" = 1 ] && body_is '{"message": "injected"}'
verdict "429 with Retry-After: 1"
tf_fault '{"html": true, "status": 502}'
s=$(http POST /v0.1/requests "${auth[@]}" --data-binary "$(body Fedora-42 k1)")
[ "$s" = 502 ] &&
	header Content-Type | grep -q '^text/html' && grep -q '<html' "$work/body" &&
	[ "$(tf_requests | py 'import json,sys; print(len(json.load(sys.stdin)))')" = 7 ]
verdict "html fault: 502 text/html, no request made"
tf_fault '{"delay": 1.0}'
t0=$(date +%s.%N)
s=$(http GET /v0.1/whoami "${auth[@]}")
t=$(py "print($(date +%s.%N) - $t0)")
[ "$s" = 200 ] && py "assert 1.0 <= $t < 3"
verdict "delay fault: answered normally after 1 s ($t s)"
tf_fault '{"drop": true}'
http GET /v0.1/whoami "${auth[@]}" >/dev/null
check "drop fault: no answer at all (curl 52)" [ $? = 52 ]
tf_fault '{"not_json": true}'
s=$(http GET "/v0.1/requests/$A")
[ "$s" = 200 ] &&
	[ "$(header Content-Type)" = application/json ] && ! jget 1 >/dev/null 2>&1
verdict "not_json fault: 200, application/json, not JSON"
tf_fault '{"status": 500, "match": "whoami"}'
tf_requests >/dev/null
s=$(http GET /v0.1/whoami "${auth[@]}")
check "faults never apply to the control API" [ "$s" = 500 ]
check "keep-alive: 3 exchanges on one connection" [ "$(curl -s -o /dev/null -o /dev/null -o /dev/null \
	-w '%{num_connects}\n' "${auth[@]}" "$TF_URL/v0.1/whoami" "$TF_URL/v0.1/requests/$A" "$TF_URL/v0.1/composes" |
	tr '\n' ' ')" = "1 0 0 " ]

# --- restart ---
H=$(post Fedora-42 k1)
tf_restart 2
sleep 0.3
curl -s -o /dev/null --max-time 5 "$TF_URL/v0.1/requests/$H"
check "restart: connection refused while down (curl 7)" [ $? = 7 ]
check "restart: the same port again after 2 s" wait_for 4 eval '[ "$(http GET /v0.1/requests/$H)" = 200 ]'
check "restart: the requests survive" [ "$(tf_requests | py 'import json,sys; print(len(json.load(sys.stdin)))')" = 8 ]
check "restart: timers went on (H is running with its key)" wait_for 3 has_key k1
check "restart: H went through new, queued, running" [ "$(ctl "$H" '" ".join(s for s, _ in r["history"])')" = "new queued running" ]

# --- scale, bad control requests ---
tf_scale 10
I=$(post Fedora-42 k1)
sleep 1.2
check "scale 10: a new request is still new after 1.2 s" [ "$(state "$I")" = new ]
s=$(http DELETE "/v0.1/requests/$I" "${auth[@]}")
[ "$s" = 200 ] && [ "$(jget 'd["state"], d["run"]')" = "cancel-requested None" ]
verdict "DELETE of a new request: cancel-requested, no artifacts"
tf_scale 0.2
s=$(http POST /_control/faults --data-binary 'nope')
check "control API: 400 for a body that is not JSON" [ "$s" = 400 ]
s=$(http POST /_control/faults --data-binary '{"match": "("}')
check "control API: 400 for a bad regex" [ "$s" = 400 ]

# --- the access log ---
check "access.log: valid lines with every field" py "
import json,sys
n=0
for line in open(sys.argv[1]):
    e=json.loads(line); n+=1
    assert set(e)=={'t','method','path','status','auth','range','fault'}, e
    assert e['auth'] in ('ok','missing','bad'), e
assert n > 50, n" "$TF_DIR/access.log"
for what in '"auth": "missing"' '"auth": "bad"' '"fault": "drop"' '"fault": "delay"' \
	'"fault": "not_json"' '"fault": "html"' '"range": "bytes=7-"'; do
	check "access.log has $what" grep -qF "$what" "$TF_DIR/access.log"
done
check "the token is nowhere in the server's directory" eval '! grep -rqF "$TF_TOKEN" "$TF_DIR"'

# --- nothing left behind ---
sshd_of() { pgrep -f "sshd -D -f $1/sshd_config" | grep -v "^$$\$"; }
gone() { ! sshd_of "$1" >/dev/null; }
dir=$TF_DIR pid=$TF_PID
kill -TERM "$pid"
wait "$pid"
check "SIGTERM: the server exits 0" [ $? = 0 ]
tf_server_stop
! kill -0 $pid 2>/dev/null && gone "$dir" && [ ! -e "$dir" ]
verdict "stop: the server and its sshd are gone, DIR removed"

# SIGKILL of the server: the watchdog still stops sshd.
tf_server_start || exit 1
kill -0 "$(cat "$TF_DIR/sshd.pid")"
check "a running sshd of the server" [ $? = 0 ]
kill -KILL "$TF_PID"
check "SIGKILL of the server: sshd gone" wait_for 3 gone "$TF_DIR"
tf_server_stop

# The server's parent killed: the server exits and so does sshd.
mkdir "$work/orphan"
bash -c '/usr/bin/python3 "$1" --dir "$2" 2>/dev/null & exec sleep 60' _ "$TF_SERVER_PY" "$work/orphan" &
parent=$!
wait_for 10 test -s "$work/orphan/url"
opid=$(cat "$work/orphan/pid")
kill -KILL $parent
wait $parent 2>/dev/null
check "parent killed: the server exits" wait_for 3 eval '! kill -0 $opid 2>/dev/null'
check "parent killed: its sshd exits" wait_for 3 gone "$work/orphan"

echo "$failures failure(s)"
[ "$failures" = 0 ]

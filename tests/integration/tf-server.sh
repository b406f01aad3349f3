# tf-server.sh - the fake Testing Farm API (tf-server.py) for shell tests:
# sourced, not run. Call tf_server_start from the test's own shell (not
# inside $(...)): the server exits when its parent goes away.
#
# tf_server_start [server args...]: starts it in a new /tmp/atex-tf-XXXXXX,
#   waits for DIR/url (20 s) and exports TF_DIR, TF_URL, TF_TOKEN,
#   TF_SSH_PORT, TF_PID, TESTING_FARM_API_URL and TESTING_FARM_API_TOKEN.
#   When the test has no EXIT trap yet, it sets one calling tf_server_stop
#   (a test with its own EXIT trap calls tf_server_stop in it).
# tf_server_stop: TERMs the server (it stops its sshd), waits, removes DIR.
# tf_fault JSON, tf_request_fault JSON, tf_restart SECONDS, tf_scale F:
#   the control API.
# tf_requests: the control API's request list (JSON) on stdout.
# tf_alive_count: how many requests are new/queued/running/cancel-requested.

TF_SERVER_PY=${TF_SERVER_PY:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tf-server.py}

tf_server_start() {
	TF_DIR=$(mktemp -d /tmp/atex-tf-XXXXXX) || return 1
	TF_TOKEN=atex-test-token
	local a prev=
	for a in "$@"; do
		[ "$prev" = --token ] && TF_TOKEN=$a
		case $a in --token=*) TF_TOKEN=${a#--token=} ;; esac
		prev=$a
	done
	/usr/bin/python3 "$TF_SERVER_PY" --dir "$TF_DIR" "$@" \
		</dev/null 2>"$TF_DIR/stderr" &
	TF_PID=$!
	local i=0
	while [ ! -s "$TF_DIR/url" ]; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 "$TF_PID" 2>/dev/null; then
			echo "tf-server.sh: the server did not come up:" >&2
			cat "$TF_DIR/stderr" >&2
			tf_server_stop
			return 1
		fi
		sleep 0.1
	done
	TF_URL=$(cat "$TF_DIR/url")
	TF_SSH_PORT=$(cat "$TF_DIR/ssh-port")
	export TF_DIR TF_URL TF_TOKEN TF_SSH_PORT TF_PID
	export TESTING_FARM_API_URL=$TF_URL TESTING_FARM_API_TOKEN=$TF_TOKEN
	if [ -z "$(trap -p EXIT)" ]; then
		trap tf_server_stop EXIT
	fi
}

tf_server_stop() {
	if [ -n "${TF_PID:-}" ]; then
		kill "$TF_PID" 2>/dev/null
		wait "$TF_PID" 2>/dev/null
	fi
	# The server stops sshd itself; this is for a server that was killed.
	# Only an sshd of this DIR (a stale pid may be anyone's now).
	local pid
	if [ -n "${TF_DIR:-}" ] && [ -s "$TF_DIR/sshd.pid" ]; then
		pid=$(cat "$TF_DIR/sshd.pid")
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
			grep -qF "$TF_DIR/"; then
			kill "$pid" 2>/dev/null
		fi
	fi
	[ -n "${TF_DIR:-}" ] && rm -rf "$TF_DIR"
	TF_PID=
	TF_DIR=
}

tf_control() {
	curl -sS --fail-with-body --max-time 10 -X POST \
		-H 'Content-Type: application/json' --data-binary "$2" \
		"$TF_URL/_control/$1" >/dev/null
}

tf_fault() { tf_control faults "$1"; }
tf_request_fault() { tf_control request-faults "$1"; }
tf_restart() { tf_control restart "{\"down_s\": $1}"; }
tf_scale() { tf_control scale "{\"scale\": $1}"; }

tf_requests() {
	curl -sS --fail-with-body --max-time 10 "$TF_URL/_control/requests"
}

tf_alive_count() {
	tf_requests | /usr/bin/python3 -c '
import json, sys
alive = ("new", "queued", "running", "cancel-requested")
print(sum(r["state"] in alive for r in json.load(sys.stdin)))'
}

#!/bin/bash
# cli-ansible.sh ATEX KIND: prepare and finish with `how: ansible` through
# the CLI, on the tree integration/trees/ansible, against a system of KIND:
#   local    --local 1
#   ssh      a private sshd on 127.0.0.1 (sshd.sh): this machine, Python
#   podman   a container of the test image (podman.sh): no Python there
# Prepare's playbook creates a file from the plan environment and the
# extra-args that the test then sees; finish's reads it back after the
# test (handing it to this machine); a failing playbook fails the start
# with a message naming the plan, the phase and what the playbook said.
# Local only (the connection does not matter there): a missing playbook
# and a method atex does not run (prepare and finish: errors before any
# system), no ansible-playbook on this machine, and a playbook by URL
# (served on 127.0.0.1).
set -u
atex=$1
kind=${2:-local}
here=$(cd "$(dirname "$0")" && pwd)
tree=$ATEX_TEST_TREES/ansible
work=$(mktemp -d /tmp/atex-cli-ansible.XXXXXX)
failures=0
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
# What the playbooks and the test read (main.fmf).
export ATEX_T_TOKEN=$kind-$$ ATEX_T_KIND=$kind ATEX_T_SEEN=$work/seen
http_pid=

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

cleanup() {
	[ "$kind" = ssh ] && sshd_stop
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	rm -f "/var/tmp/atex-ansible-$ATEX_T_TOKEN"
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v ansible-playbook >/dev/null; then
	echo "FAIL ansible-playbook is not installed (Debian: ansible-core;" \
		"scripts/install-deps.sh)"
	exit 1
fi

case $kind in
local)
	prov=(--local 1)
	;;
ssh)
	# shellcheck source=sshd.sh
	. "$here/sshd.sh"
	sshd_start || exit 1
	prov=("${SSH_ATEX[@]}")
	;;
podman)
	# shellcheck source=podman.sh
	. "$here/podman.sh"
	podman_image || exit 1
	prov=("${PODMAN_ATEX[@]}")
	;;
*)
	echo "unknown kind $kind" >&2
	exit 2
	;;
esac
envs=(--env "ATEX_T_TOKEN=$ATEX_T_TOKEN" --env "ATEX_T_KIND=$kind")

# run NAME PLAN [TREE]: atex run of one plan; rc, $work/NAME.err.
run() {
	local t0=$SECONDS
	"$atex" run "${prov[@]}" "${envs[@]}" --plan "$2" \
		--results "$work/$1" "${3:-$tree}" >"$work/$1.out" \
		2>"$work/$1.err"
	rc=$?
	echo "($1: $((SECONDS - t0)) s)"
}

# try NAME PLAN [TREE]: atex test (one system, one setup, no retries).
try() {
	local t0=$SECONDS
	"$atex" test "${prov[@]}" "${envs[@]}" --plan "$2" \
		--artifacts "$work/$1" "${3:-$tree}" /test >"$work/$1.out" \
		2>"$work/$1.err"
	rc=$?
	echo "($1: $((SECONDS - t0)) s)"
}

# has NAME TEXT: $work/NAME.err has TEXT (messages escape newlines).
has() { grep -qF -- "$2" "$work/$1.err"; }

want_seen="from-plan-with-args-a b"
[ "$kind" != podman ] && want_seen="$want_seen
module from-plan"

# Prepare makes the file the test sees; finish reads it after the test.
run ok /plans/ok
if [ "$rc" -eq 0 ] && grep -q "pass  */test" "$work/ok.out"; then
	pass "prepare: the test sees what the playbook made"
else
	fail "prepare: exit $rc: $(cat "$work/ok.out" "$work/ok.err")" \
		"$(cat "$work"/ok/files/*/test/output.txt 2>/dev/null)"
fi
if [ -f "$ATEX_T_SEEN" ] && [ "$(cat "$ATEX_T_SEEN")" = "$want_seen" ]; then
	pass "finish: ran after the test, against the system"
else
	fail "finish: saw '$(cat "$ATEX_T_SEEN" 2>/dev/null)'," \
		"want '$want_seen'"
fi
if [ ! -e "/var/tmp/atex-ansible-$ATEX_T_TOKEN" ] || [ "$kind" = podman ]; then
	pass "finish: cleaned up on the system"
else
	fail "finish: /var/tmp/atex-ansible-$ATEX_T_TOKEN left"
fi
if [ -z "$(ls "$TMPDIR")" ]; then
	pass "no private directory left in \$TMPDIR"
else
	fail "left in \$TMPDIR: $(ls "$TMPDIR")"
fi

# A failing playbook fails the start, naming the plan and the phase, with
# the end of the playbook's output.
try fail /plans/fail
if [ "$rc" -eq 2 ] &&
	has fail "plan /plans/fail: prepare phase 'breaks' (how: ansible): playbook playbooks/fail.yml failed (exit status 2)" &&
	has fail broken-on-purpose && ! grep -q "^pass" "$work/fail.out" &&
	! has fail 'broken-on-purpose\n' &&
	grep "playbook playbooks/fail.yml failed (exit status 2): fatal:" "$work/fail.err" | grep -q broken-on-purpose &&
	grep -q "prepare phase 'breaks': | PLAY RECAP" "$work/fail.err"; then
	pass "a failing playbook fails the start, its output a line per warning"
else
	fail "failing playbook: exit $rc: $(cat "$work/fail.err")"
fi

if [ "$kind" != local ]; then
	[ "$failures" -eq 0 ]
	exit
fi

# A missing playbook: refused when the plan is read, before any system.
run missing /plans/missing
if [ "$rc" -eq 2 ] &&
	has missing "main.fmf: plan /plans/missing: prepare phase 'nobook' (how: ansible): playbook 'playbooks/no-such.yml' does not exist in $tree" &&
	! has missing ready; then
	pass "a missing playbook: refused before any system"
else
	fail "missing playbook: exit $rc: $(cat "$work/missing.err")"
fi

# Methods atex does not run: refused when the plan is read, before any
# system is set up.
for p in unknown:prepare:artefacts:artifact unknown-finish:finish:later:fancy; do
	IFS=: read -r plan step phase how <<<"$p"
	run "$plan" "/plans/$plan"
	if [ "$rc" -eq 2 ] &&
		has "$plan" "main.fmf: plan /plans/$plan: $step phase '$phase': unsupported method 'how: $how'" &&
		! has "$plan" ready; then
		pass "$step how: $how: refused before any system"
	else
		fail "$step how: $how: exit $rc: $(cat "$work/$plan.err")"
	fi
done

# No ansible-playbook on this machine: a PATH with everything else.
mkdir "$work/bin"
for f in /usr/bin/* /usr/sbin/*; do
	case ${f##*/} in ansible*) continue ;; esac
	ln -s "$f" "$work/bin/" 2>/dev/null
done
PATH=$work/bin try noansible /plans/ok
if [ "$rc" -eq 2 ] &&
	has noansible "plan /plans/ok: prepare phase 'first' (how: ansible): ansible-playbook is not installed on this machine"; then
	pass "no ansible-playbook: an error naming the plan and the phase"
else
	fail "no ansible-playbook: exit $rc: $(cat "$work/noansible.err")"
fi

# A playbook by URL, from a server on 127.0.0.1.
port_file=$work/port
python3 -c '
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler,
                      directory=sys.argv[1])
http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
s = http.server.HTTPServer(("127.0.0.1", 0), h)
open(sys.argv[2] + ".new", "w").write(str(s.server_port))
import os; os.rename(sys.argv[2] + ".new", sys.argv[2])
s.serve_forever()
' "$tree/playbooks" "$port_file" &
http_pid=$!
for _ in $(seq 100); do
	[ -s "$port_file" ] && break
	sleep 0.05
done
cp -r "$tree" "$work/url-tree"
sed -i "s/ATEX_T_PORT/$(cat "$port_file")/" "$work/url-tree/main.fmf"
try url /plans/url "$work/url-tree"
if [ "$rc" -eq 1 ] && grep -q "^fail */test" "$work/url.out" &&
	grep -qx "from-plan-from-url-x" "$work/url/test/files/output.txt" 2>/dev/null
then
	# (fail: this plan has no shell phase, the test checks for one.)
	pass "a playbook by URL"
else
	fail "playbook by URL: exit $rc: $(cat "$work/url.out" "$work/url.err")"
fi

[ "$failures" -eq 0 ]

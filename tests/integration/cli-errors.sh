#!/bin/sh
# Bad input through the CLI (fmf trees, provisioner values, options):
# each case must exit 2 with one clear
# message naming the culprit (file:line:column where there is one) on
# stderr, print nothing on stdout, and never crash.
# usage: cli-errors.sh ATEX_CLI
set -u
atex=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# new_tree NAME: an empty fmf tree in $work/NAME
new_tree() {
	mkdir -p "$work/$1/.fmf"
	echo 1 >"$work/$1/.fmf/version"
}

# expect NAME PATTERN ARGS...: run atex ARGS, want exit 2, empty stdout and
# stderr matching the extended regex PATTERN.
expect() {
	name=$1 pattern=$2
	shift 2
	"$atex" "$@" >"$work/out" 2>"$work/err"
	status=$?
	if [ "$status" -ne 2 ]; then
		echo "FAIL $name: exit status $status, want 2"; failures=$((failures + 1))
	elif [ -s "$work/out" ]; then
		echo "FAIL $name: output on stdout"; failures=$((failures + 1))
	elif ! grep -Eq -e "$pattern" "$work/err"; then
		echo "FAIL $name: stderr does not match '$pattern':"
		sed 's/^/    /' "$work/err"; failures=$((failures + 1))
	else
		echo "ok   $name: $(head -n 1 "$work/err")"
	fi
}

new_tree yaml
printf 'test: ./a.sh\ntag: [a, b\nsummary: x\n' >"$work/yaml/main.fmf"
expect malformed-yaml "yaml/main\.fmf:[0-9]+:[0-9]+: " fmf dump "$work/yaml"

new_tree dup
printf 'test: ./a.sh\ntest: ./b.sh\n' >"$work/dup/main.fmf"
expect duplicate-key "dup/main\.fmf:2:1: .*test" fmf dump "$work/dup"

new_tree list
printf -- '- one\n- two\n' >"$work/list/main.fmf"
expect top-level-list "list/main\.fmf:1:1: .*mapping" fmf dump "$work/list"

new_tree merge
printf 'tag: [a]\n/child:\n    tag+: x\n' >"$work/merge/main.fmf"
expect merge-type "merge/main\.fmf:3:5: .*tag\+" fmf dump "$work/merge"

new_tree minus
printf 'count: 1\n/child:\n    count-: [1]\n' >"$work/minus/main.fmf"
expect minus-type "minus/main\.fmf:3:5: .*count-" fmf dump "$work/minus"

new_tree rule
printf 'test: ./a.sh\nadjust:\n  - when: distro ==\n    tier: 2\n' >"$work/rule/main.fmf"
expect invalid-rule "rule/main\.fmf:3:5: .*distro ==" fmf dump --context distro=fedora "$work/rule"

new_tree directive
printf 'test: ./a.sh\n/:\n    inherit: maybe\n' >"$work/directive/main.fmf"
expect bad-directive "directive/main\.fmf:3:5: .*inherit" fmf dump "$work/directive"

mkdir -p "$work/noroot"
expect missing-root "noroot.*no fmf tree root" fmf dump "$work/noroot"
expect missing-dir "does-not-exist.*not a directory" fmf dump "$work/does-not-exist"

new_tree unreadable
ln -s "$work/nowhere.fmf" "$work/unreadable/broken.fmf"
expect unreadable-file "unreadable/broken\.fmf: cannot open" fmf dump "$work/unreadable"

new_tree version
echo one >"$work/version/.fmf/version"
expect bad-version "version/\.fmf/version.*version" fmf dump "$work/version"

new_tree plan
printf 'test: ./a.sh\n' >"$work/plan/main.fmf"
expect missing-plan "no plan '/plans/x'" fmf discover --plan /plans/x "$work/plan"
expect bad-filter "filter.*tag: \(" fmf discover --filter 'tag: (' "$work/plan"
expect bad-context "--context.*novalue" fmf discover --context novalue "$work/plan"
expect unknown-option "unknown option '--bogus'" fmf discover --bogus "$work/plan"

# Test names with "..", "." or empty components (fmf accepts them; `fmf
# dump` shows them): discovery refuses them, naming file, line and node,
# before anything runs or is removed. With DIR=$work/x/y/art the test's
# directory DIR/../../victim would be $work/x/victim.
new_tree escape
printf '/ok:\n    test: touch %s/ran\n/../../victim:\n    test: touch %s/ran\n' \
	"$work" "$work" >"$work/escape/main.fmf"
mkdir -p "$work/x/victim/files" "$work/x/victim/results" "$work/x/y"
echo keep >"$work/x/victim/files/keep"
echo keep >"$work/x/victim/results/keep"
listing() { find "$work/x" -path "$work/x/y/art" -prune -o -print | sort; }
listing >"$work/before"
if "$atex" fmf dump "$work/escape" 2>/dev/null | grep -q '"/\.\./\.\./victim"'; then
	echo "ok   dotdot-dump: fmf dump shows the node, as fmf does"
else
	echo "FAIL dotdot-dump: fmf dump does not show /../../victim"
	failures=$((failures + 1))
fi
expect dotdot-discover "escape/main\.fmf:3:1: test /\.\./\.\./victim: .*'\.\.'" \
	fmf discover "$work/escape"
expect dotdot-test "escape/main\.fmf:3:1: test /\.\./\.\./victim" \
	test --local 1 --artifacts "$work/x/y/art" "$work/escape" /../../victim /ok
expect dotdot-run "escape/main\.fmf:3:1: test /\.\./\.\./victim" \
	run --local 1 --results "$work/x/y/res" "$work/escape"
listing | grep -v "^$work/x/y/res" >"$work/after"
if [ -e "$work/ran" ] || ! cmp -s "$work/before" "$work/after"; then
	echo "FAIL dotdot: a test ran or something outside DIR changed:"
	diff "$work/before" "$work/after" | sed 's/^/    /'
	failures=$((failures + 1))
else
	echo "ok   dotdot: nothing ran, nothing outside DIR removed or created"
fi
new_tree dot
printf '/a:\n    /.:\n        test: "true"\n' >"$work/dot/main.fmf"
expect dot-component "dot/main\.fmf:2:5: test /a/\.: .*'\.' component" fmf discover "$work/dot"
new_tree empty
printf '/a:\n    //:\n        test: "true"\n' >"$work/empty/main.fmf"
expect empty-component "empty/main\.fmf:2:5: test /a/: .*empty component" fmf discover "$work/empty"

# Provisioner values that look like options or hold shell metacharacters
# are refused when the provisioner is made: exit 2 at once, the value
# named, nothing started (no podman run, no connection attempt).
expect podman-option-image '"--privileged"' exec --podman --privileged -- true
expect podman-spaced-image 'invalid image "a b"' exec --podman 'a b' -- true
expect podman-metachar-image 'invalid image "img;rm"' exec --podman 'img;rm' -- true
expect systemd-without-podman '--systemd needs --podman' exec --local 1 --systemd -- true
expect ssh-metachar-host 'invalid host "a;b"' exec --ssh 'root@a;b' -- true
expect ssh-subst-host 'invalid host "h\$\(id\)"' exec --ssh 'h$(id)' -- true
expect ssh-option-host "'-oProxyCommand=x'" exec --ssh -oProxyCommand=x -- true
expect ssh-bad-user 'invalid user "a\|b"' exec --ssh 'a|b@host' -- true

# --vm and its companions: bad values and companions without --vm are
# refused before any VM is made, naming the option.
expect vm-memory-word "--vm-memory: 'x' is not a number" exec --vm img --vm-memory x -- true
expect vm-memory-small "--vm-memory: '10' is not a number from 64" exec --vm img --vm-memory 10 -- true
expect vm-cpus-zero "--vm-cpus: '0' is not a number" exec --vm img --vm-cpus 0 -- true
expect vm-timeout-negative "--vm-boot-timeout: '-1' is not a number" exec --vm img --vm-boot-timeout -1 -- true
expect vm-count-zero "--count: '0' is not a number" exec --vm img --count 0 -- true
expect vm-accel-word "--vm-accel: 'hvf' is not auto, kvm or tcg" exec --vm img --vm-accel hvf -- true
expect vm-firmware-word "--vm-firmware: 'efi' is not bios or uefi" exec --vm img --vm-firmware efi -- true
expect vm-key-word "--vm-key: 'ssh' is not credential, seed or both" exec --vm img --vm-key ssh -- true
expect vm-twice "--vm given twice" exec --vm a --vm b -- true
expect vm-memory-twice "--vm-memory given twice" exec --vm a --vm-memory 512 --vm-memory 1024 -- true
expect vm-accel-twice "--vm-accel given twice" exec --vm a --vm-accel tcg --vm-accel kvm -- true
expect vm-host-twice "--vm-host given twice" exec --vm a --vm-host h --vm-host g -- true
expect vm-host-port "--vm-host: bad host 'h:70000': the port" exec --vm a --vm-host h:70000 -- true
expect vm-host-v6 "--vm-host: bad host '::1': an IPv6 address goes in brackets" exec --vm a --vm-host ::1 -- true
expect vm-host-dash "--vm-host: bad host '-oProxyCommand=x': .*'-'" exec --vm a --vm-host -oProxyCommand=x -- true
expect vm-host-user "--vm-host: bad host '@h': expected USER@HOST" exec --vm a --vm-host @h -- true
expect vm-host-empty "--vm-host: bad host 'u@': expected" exec --vm a --vm-host u@ -- true
expect vm-host-metachar '--vm-host: .*invalid host "h;x"' exec --vm a --vm-host 'h;x' -- true
expect vm-host-bad-user '--vm-host: .*invalid user "a\|b"' exec --vm a --vm-host 'a|b@h' -- true
expect vm-missing-image "image $work/none.qcow2: no readable file" exec --vm "$work/none.qcow2" -- true
expect vm-initrd-kernel "--vm-initrd needs --vm-kernel" exec --vm a --vm-initrd i -- true
expect vm-cmdline-kernel "--vm-cmdline needs --vm-kernel" exec --vm a --vm-cmdline c -- true
for companion in "--vm-host h" "--vm-memory 512" "--vm-cpus 2" "--vm-accel tcg" \
	"--vm-arg -snapshot" "--vm-kernel k" "--vm-initrd i" "--vm-cmdline c" \
	"--vm-boot-timeout 9" "--vm-firmware uefi" "--vm-key seed"; do
	# shellcheck disable=SC2086 # the option and its value, two words
	expect "alone${companion%% *}" "^atex: ${companion%% *} needs --vm\$" exec --local 1 $companion -- true
done
# With no provisioner at all, a VM option alone is a forgotten --vm.
expect vm-memory-only "^atex: --vm-memory needs --vm\$" exec --vm-memory 512 -- true
expect vm-count-alone "--count needs --podman, --vm or --testing-farm" exec --local 1 --count 2 -- true
expect vm-identity-alone "--identity needs --ssh, --vm or --testing-farm" run --local 1 --identity k --results "$work/r" "$work/plan"
expect vm-ssh-option-alone "--ssh-option needs --ssh, --vm-host or --testing-farm" test --vm a --ssh-option A=b --artifacts "$work/a" "$work/plan" /
expect vm-and-podman "choose one of --local, --ssh, --podman, --vm and --testing-farm" exec --vm a --podman b -- true

# --testing-farm and its companions: bad values, companions alone, no
# token (never an option: only TESTING_FARM_API_TOKEN); nothing contacts
# an API (the URL points at a closed port on loopback).
(
export TESTING_FARM_API_URL=http://127.0.0.1:9 TESTING_FARM_API_TOKEN=
expect tf-no-token "--testing-farm: no API token: set TESTING_FARM_API_TOKEN" exec --testing-farm Fedora-41 -- true
expect tf-no-token-run "--testing-farm: no API token" run --testing-farm Fedora-41 --results "$work/r" "$work/plan"
expect tf-token-option "unknown option '--token'" exec --testing-farm Fedora-41 --token x -- true
export TESTING_FARM_API_TOKEN=t
expect tf-empty "--testing-farm: the compose is empty" exec --testing-farm '' -- true
expect tf-twice "--testing-farm given twice" exec --testing-farm a --testing-farm b -- true
expect tf-arch-twice "--arch given twice" exec --testing-farm a --arch x86_64 --arch aarch64 -- true
expect tf-timeout-zero "--tf-timeout: '0' is not a number" exec --testing-farm a --tf-timeout 0 -- true
expect tf-timeout-word "--tf-timeout: 'an hour' is not a number" exec --testing-farm a --tf-timeout 'an hour' -- true
expect tf-count-zero "--count: '0' is not a number" test --testing-farm a --count 0 --artifacts "$work/a" "$work/plan" /
expect tf-poll-zero "--tf-poll: '0' is not a number of seconds" exec --testing-farm a --tf-poll 0 -- true
expect tf-poll-nan "--tf-poll: 'nan' is not a number of seconds" exec --testing-farm a --tf-poll nan -- true
expect tf-retries-negative "--tf-max-retries: '-1' is not a number from 0" exec --testing-farm a --tf-max-retries -1 -- true
expect tf-retries-twice "--tf-max-retries given twice" exec --testing-farm a --tf-max-retries 0 --tf-max-retries 1 -- true
expect tf-source-prefix "--tf-source: '1.2.3.4/33' is not an address" exec --testing-farm a --tf-source 1.2.3.4/33 -- true
expect tf-source-word "--tf-source: 'myhost' is not an address" exec --testing-farm a --tf-source myhost -- true
expect tf-source-v6 "--tf-source: '::1/129' is not an address" exec --testing-farm a --tf-source ::1/129 -- true
expect tf-source-empty-prefix "--tf-source: '10.0.0.1/' is not an address" exec --testing-farm a --tf-source 10.0.0.1/ -- true
expect tf-hardware-json "--tf-hardware: '\{x': .*line 1, column" exec --testing-farm a --tf-hardware '{x' -- true
expect tf-hardware-list "--tf-hardware: '\[1\]' is not a JSON object" exec --testing-farm a --tf-hardware '[1]' -- true
expect tf-hardware-file "--tf-hardware: cannot read '$work/none.json'" exec --testing-farm a --tf-hardware "@$work/none.json" -- true
printf '{"cpu": {"processors": 2}, "cpu": 1}' >"$work/dup.json"
expect tf-hardware-file-dup "--tf-hardware: '@$work/dup.json': .*duplicate" exec --testing-farm a --tf-hardware "@$work/dup.json" -- true
expect tf-and-vm "choose one of --local, --ssh, --podman, --vm and --testing-farm" exec --testing-farm a --vm b -- true
expect tf-strict-keys "--ssh-strict-host-keys needs --ssh or --vm-host" exec --testing-farm a --ssh-strict-host-keys -- true
for companion in "--arch aarch64" "--tf-pool p" "--tf-timeout 5" \
	"--tf-hardware {}" "--tf-source 10.0.0.1" "--tf-poll 1" \
	"--tf-skip-guest-setup" "--tf-os-cleaning" "--tf-max-retries 2"; do
	# shellcheck disable=SC2086
	expect "alone${companion%% *}" "^atex: ${companion%% *} needs --testing-farm\$" exec --local 1 $companion -- true
done
# atex tf: its usage errors; no token (never an option).
expect tf-none "usage: atex tf" tf
expect tf-unknown "tf: unknown subcommand 'nope'" tf nope
expect tf-whoami-extra "tf whoami: unexpected argument 'x'" tf whoami x
expect tf-reserve-none "tf reserve: no compose" tf reserve
expect tf-reserve-two "tf reserve: one compose only" tf reserve a b
expect tf-reserve-count "unknown option '--count'" tf reserve a --count 2
expect tf-reserve-poll "--tf-poll: 'x' is not a number" tf reserve a --tf-poll x
expect tf-reserve-source "--tf-source: '1.2.3' is not an address" tf reserve a --tf-source 1.2.3
expect tf-cancel-none "tf cancel: no request id" tf cancel
expect tf-cancel-bad "tf cancel: '../whoami' is not a request id" tf cancel ok-id ../whoami
export TESTING_FARM_API_TOKEN=
expect tf-whoami-token "tf whoami: no API token: set TESTING_FARM_API_TOKEN" tf whoami
expect tf-composes-token "tf composes: no API token" tf composes
expect tf-cancel-token "tf cancel: no API token" tf cancel some-id
expect tf-reserve-token "--testing-farm: no API token" tf reserve Fedora-41
exit $failures
) || failures=$((failures + $?))
for cmd in exec test run; do
	missing=
	help=$("$atex" "$cmd" --help)
	for opt in --vm --vm-host --count --identity --vm-memory --vm-cpus --vm-accel \
		--vm-arg --vm-kernel --vm-initrd --vm-cmdline --vm-boot-timeout \
		--vm-firmware --vm-key --testing-farm --arch --tf-pool --tf-timeout \
		--tf-hardware --tf-source --tf-poll --tf-skip-guest-setup \
		--tf-os-cleaning --tf-max-retries; do
		case $help in *"  $opt "*) ;; *) missing="$missing $opt" ;; esac
	done
	if [ -z "$missing" ]; then
		echo "ok   $cmd --help lists the --vm and --testing-farm options"
	else
		echo "FAIL $cmd --help lacks:$missing"; failures=$((failures + 1))
	fi
done

# Small CLI nits: once-only options, and --platform '' says what is wrong.
expect results-twice "--results given twice" run --local 1 --results "$work/r1" --results "$work/r2" "$work/plan"
expect platform-empty "--platform: the name is empty" run --local 1 --platform '' --results "$work/r" "$work/plan"
expect platform-slash "--platform 'a/b': .*'/'" run --local 1 --platform a/b --results "$work/r" "$work/plan"
expect help-unknown "help: unknown command 'nope'" help nope
expect help-too-many "help: too many arguments" help run extra
expect version-too-many "version: too many arguments" version extra
# Every option that sets one value is refused when given twice (the first
# value was silently dropped before); nothing runs, nothing is written.
expect artifacts-twice "--artifacts given twice" test --local 1 --artifacts "$work/a1" --artifacts "$work/a2" "$work/plan" /
expect plan-twice-test "--plan given twice" test --local 1 --plan /plans/a --plan /plans/b --artifacts "$work/a1" "$work/plan" /
expect plan-twice-discover "--plan given twice" fmf discover --plan /plans/a --plan /plans/b "$work/plan"
expect reruns-twice "--reruns given twice" run --local 1 --reruns 1 --reruns 2 --results "$work/r1" "$work/plan"
expect order-twice "--order given twice" run --local 1 --order fmf --order priority --results "$work/r1" "$work/plan"
expect spares-twice "--max-spares given twice" run --local 1 --max-spares 1 --max-spares 2 --results "$work/r1" "$work/plan"
expect html-twice "--html given twice" report --html "$work/h1" --html "$work/h2" "$work/r1"
expect junit-twice "--junit given twice" report --junit "$work/j1" --junit "$work/j2" "$work/r1"
expect title-twice "--title given twice" report --title a --title b --summary "$work/r1"
if [ -e "$work/a1" ] || [ -e "$work/a2" ] || [ -e "$work/r1" ] ||
	[ -e "$work/h1" ] || [ -e "$work/h2" ] || [ -e "$work/j2" ]; then
	echo "FAIL options given twice: something was written"; failures=$((failures + 1))
else
	echo "ok   options given twice: nothing written"
fi

# help and version as words; report's usage line has every option.
if "$atex" help | grep -q '^usage: atex COMMAND' &&
	"$atex" help run | grep -q '^usage: atex run' &&
	"$atex" help help | grep -q '^usage: atex COMMAND' &&
	"$atex" help version | grep -q '^usage: atex COMMAND' &&
	[ "$("$atex" version)" = "$("$atex" --version)" ] &&
	"$atex" version | grep -q '^atex [0-9]'; then
	echo "ok   help and version as words"
else
	echo "FAIL help or version as words"; failures=$((failures + 1))
fi
usage=$("$atex" report --help | sed -n '1,/RESULTS/p')
missing=
for opt in $("$atex" report --help | grep -o '^  --[a-z-]*'); do
	case $usage in *"[$opt"*) ;; *) missing="$missing $opt" ;; esac
done
if [ -z "$missing" ] && [ -n "$usage" ]; then
	echo "ok   report usage lists every option"
else
	echo "FAIL report usage lacks:$missing"; failures=$((failures + 1))
fi

# Numbers with blanks around them are refused alike (strtol would take
# a leading one); an empty --arch is named; exec and test use one system.
expect count-leading-space "--count: ' 2' is not a number" exec --podman img --count ' 2' -- true
expect count-trailing-space "--count: '2 ' is not a number" exec --podman img --count '2 ' -- true
expect local-plus "--local: '\+1' is not a number" exec --local +1 -- true
expect tf-poll-space "--tf-poll: ' 1' is not a number" exec --testing-farm F --tf-poll ' 1' -- true
expect tf-retries-space "--tf-max-retries: ' 1' is not a number" exec --testing-farm F --tf-max-retries ' 1' -- true
expect max-spares-space "--max-spares: ' 1' is not a number" run --local 1 --max-spares ' 1' --results "$work/ms" "$work/plan"
expect tf-arch-empty "--arch: empty" exec --testing-farm F --arch '' -- true
expect exec-count "exec: --count: exec uses one system" exec --podman img --count 2 -- true
expect exec-tf-count "exec: --count: exec uses one system" exec --testing-farm F --count 2 -- true
expect test-count "test: --count: test uses one system" test --vm img --count 2 --artifacts "$work/tc" "$work/plan" /

# Testing Farm's environment: an empty URL is an error, not the default
# nor a hang.
for cmd in "tf whoami" "tf composes" "tf cancel x" \
	"exec --testing-farm F --tf-source 127.0.0.1 -- true"; do
	# shellcheck disable=SC2086
	TESTING_FARM_API_URL= TESTING_FARM_API_TOKEN=t timeout 10 "$atex" $cmd \
		>"$work/out" 2>"$work/err"
	status=$?
	if [ "$status" -eq 2 ] && grep -q 'TESTING_FARM_API_URL is empty' "$work/err"; then
		echo "ok   empty TESTING_FARM_API_URL: $cmd: $(head -n 1 "$work/err")"
	else
		echo "FAIL empty TESTING_FARM_API_URL: $cmd: exit $status: $(cat "$work/err")"
		failures=$((failures + 1))
	fi
done
# An API that cannot be reached (a refused port): said at the first
# failed try, with the bound of the retries, not minutes of silence.
TESTING_FARM_API_URL=http://127.0.0.1:1 TESTING_FARM_API_TOKEN=t \
	"$atex" tf whoami >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 50); do
	grep -q 'cannot reach' "$work/err" && break
	sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if grep -q 'tf whoami: cannot reach the API: GET http://127.0.0.1:1/v0.1/whoami: .*; retrying for up to 60 s$' "$work/err"; then
	echo "ok   unreachable API: $(head -n 1 "$work/err")"
else
	echo "FAIL unreachable API: not said within 5 s: $(cat "$work/err")"
	failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures failures"
	exit 1
fi
echo "all error cases passed"

#!/bin/bash
# cli-readonly-results.sh ATEX [PYTHONPATH]: a results.sqlite is read where
# it cannot be written (an archive, another user's results, a read-only
# mount), and a reader never changes it (docs/PROTOCOL.md section 6).
#  - `atex run` leaves results.sqlite in rollback-journal mode, one file
#    (no -wal, no -shm).
#  - A copy in a folder the reader cannot write: `atex report --summary`
#    and `atex run --history` work, Python atex.report.load() too.
#  - The same with a database in WAL mode (a killed run's): opened
#    immutable; the file is the same byte for byte afterwards, no -shm
#    appears; the same on a read-only bind mount (root, unshare -m).
# As root the readers run as nobody (setpriv), else as the user with the
# folder made read-only.
set -u
atex=$1
pypath=${2:-}
py=/usr/bin/python3
# The extension of a sanitizer build needs its runtimes loaded first (as
# `make check-asan-python` does; the interpreter's own leaks are not ours).
py_env=()
if [ -n "$pypath" ] && ldd "$pypath"/atex/_atex*.so 2>/dev/null | grep -q libasan; then
	py_env=(LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/atex-ro-results.XXXXXX")
chmod 755 "$work"
# As root the readers are nobody, who must reach the folder: a private
# TMPDIR above it is left for /tmp.
if [ "$(id -u)" = 0 ] &&
	! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$work"; then
	rmdir "$work"
	work=$(mktemp -d /tmp/atex-ro-results.XXXXXX)
	chmod 755 "$work"
fi
failures=0
export TMPDIR=$work/tmp
mkdir "$TMPDIR"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

pass() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failures=$((failures + 1))
}

# as_reader CMD...: CMD as someone without write access to the copies.
if [ "$(id -u)" = 0 ]; then
	as_reader() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	if ! as_reader test -x "$atex"; then
		echo "FAIL nobody cannot run $atex (a private build folder)"
		exit 1
	fi
else
	as_reader() { "$@"; }
fi
# A scratch folder the reader owns (its TMPDIR, its run's results).
scratch=$work/scratch
mkdir -p "$scratch/tmp"
[ "$(id -u)" = 0 ] && chown -R 65534:65534 "$scratch"

tree=$work/tree
mkdir -p "$tree/.fmf"
echo 1 >"$tree/.fmf/version"
cat >"$tree/main.fmf" <<'YAML'
/a:
    test: sleep 0.1
/b:
    test: "true"
YAML
chmod -R a+rX "$tree"

# journal MODE of the database file: its header's bytes 18 and 19 are 1
# in rollback-journal mode, 2 in WAL mode.
journal() { od -An -tu1 -j18 -N2 "$1" | tr -s ' ' | sed 's/^ //'; }

"$atex" run --local 1 --results "$work/r1" "$tree" >"$work/r1.out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "run" || fail "run: exit $rc: $(tail -5 "$work/r1.out")"
db=$work/r1/results.sqlite
[ "$(journal "$db")" = "1 1" ] && pass "results.sqlite in rollback-journal mode" ||
	fail "results.sqlite journal header: $(journal "$db") (2 2: WAL)"
[ ! -e "$db-wal" ] && [ ! -e "$db-shm" ] && pass "no -wal, no -shm" ||
	fail "left: $(ls "$work/r1")"

# readonly_copy DIR: r1 copied to DIR, readable by all, writable by none
# (the reader).
readonly_copy() {
	cp -r "$work/r1" "$1"
	[ -n "${2:-}" ] && "$py" -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("PRAGMA journal_mode=WAL").fetchone()[0])
c.close()' "$1/results.sqlite" >/dev/null
	chmod -R a+rX,go-w "$1"
	[ "$(id -u)" = 0 ] || chmod -R a-w "$1"
}

# readers NAME DIR: every reader of DIR/results.sqlite works.
readers() {
	local name=$1 dir=$2 sum out
	sum=$(sha256sum <"$dir/results.sqlite")
	out=$(as_reader env TMPDIR="$scratch/tmp" "$atex" report --summary \
		"$dir/results.sqlite" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && grep -q "/a" <<<"$out"; then
		pass "$name: atex report --summary"
	else
		fail "$name: atex report --summary: exit $rc: $out"
	fi
	rm -rf "$scratch/r2"
	out=$(as_reader env TMPDIR="$scratch/tmp" "$atex" run --local 1 \
		--history "$dir/results.sqlite" --results "$scratch/r2" \
		"$tree" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && pass "$name: atex run --history" ||
		fail "$name: atex run --history: exit $rc: $(tail -5 <<<"$out")"
	if [ -n "$pypath" ]; then
		out=$(as_reader env "${py_env[@]}" PYTHONPATH="$pypath" \
			TMPDIR="$scratch/tmp" \
			PYTHONDONTWRITEBYTECODE=1 "$py" -c '
import sys, atex.report
r = atex.report.load(sys.argv[1])
print(sorted({x.test for x in r}))' "$dir/results.sqlite" 2>&1)
		rc=$?
		[ $rc -eq 0 ] && grep -q "/b" <<<"$out" &&
			pass "$name: Python atex.report.load" ||
			fail "$name: Python atex.report.load: exit $rc: $out"
	fi
	[ "$(sha256sum <"$dir/results.sqlite")" = "$sum" ] &&
		[ ! -e "$dir/results.sqlite-shm" ] &&
		[ ! -e "$dir/results.sqlite-wal" ] &&
		pass "$name: the database is unchanged" ||
		fail "$name: the database changed: $(ls -la "$dir")"
}

readonly_copy "$work/ro"
readers "read-only folder" "$work/ro"

readonly_copy "$work/wal" wal
[ "$(journal "$work/wal/results.sqlite")" = "2 2" ] &&
	pass "the copy is a WAL database" || fail "not WAL: $(journal "$work/wal/results.sqlite")"
readers "WAL database, read-only folder" "$work/wal"

# A read-only bind mount (root may not write there either), where root
# can make one (unshare -m): a WAL database read in place.
mkdir "$work/mnt"
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	readonly_copy "$work/walsrc" wal
	sum=$(sha256sum <"$work/walsrc/results.sqlite")
	out=$(unshare -m sh -c 'mount --bind "$1" "$2" &&
		mount -o remount,bind,ro "$2" &&
		"$3" report --summary "$2/results.sqlite" &&
		"$3" run --local 1 --history "$2/results.sqlite" \
			--results "$4" "$5"' sh "$work/walsrc" "$work/mnt" \
		"$atex" "$work/r3" "$tree" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && pass "WAL database on a read-only mount: report, run --history" ||
		fail "read-only mount: exit $rc: $(tail -5 <<<"$out")"
	[ "$(sha256sum <"$work/walsrc/results.sqlite")" = "$sum" ] &&
		[ ! -e "$work/walsrc/results.sqlite-shm" ] &&
		pass "read-only mount: the database is unchanged" ||
		fail "read-only mount: the database changed"
else
	fail "read-only mount: needs root and unshare -m"
fi

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
[ $failures -eq 0 ]

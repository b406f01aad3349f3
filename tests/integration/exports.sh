#!/bin/sh
# libatex.so exports exactly the functions include/atex/ declares: no
# private helper a program could interpose by defining a function of the
# same name, and no public function left out by the version script.
# usage: exports.sh LIBATEX_SO INCLUDE_ATEX_DIR
set -u
lib=$1 inc=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -ho '^[A-Za-z_][A-Za-z0-9_ *]*\<atex_[a-z0-9_]*(' "$inc"/*.h |
	grep -o 'atex_[a-z0-9_]*($' | tr -d '(' | sort -u >"$work/declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRWVi]$/ { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$work/exported"
n=$(wc -l <"$work/declared")
if [ "$n" -lt 100 ]; then
	echo "FAIL only $n declarations found in $inc"
	exit 1
fi
if cmp -s "$work/declared" "$work/exported"; then
	echo "ok   $n functions exported, all declared, nothing else"
	exit 0
fi
echo "FAIL exports differ from the declarations (< declared only, > exported only):"
diff "$work/declared" "$work/exported" | grep '^[<>]'
exit 1

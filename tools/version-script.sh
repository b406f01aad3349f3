#!/bin/sh
# version-script.sh OUTPUT HEADER... - the linker version script of
# libatex.so: the functions the public headers declare are exported, and
# nothing else. The library's private helpers (atex_buf_*, the report's
# and executor's internal functions...) would otherwise be exported too,
# and a program defining a function of the same name would silently
# replace the library's own (ELF interposition). Declarations start at
# the beginning of a line in include/atex/ (comments do not).
set -eu
out=$1
shift
{
	echo "ATEX_0 {"
	echo "global:"
	grep -ho '^[A-Za-z_][A-Za-z0-9_ *]*\<atex_[a-z0-9_]*(' "$@" |
		grep -o 'atex_[a-z0-9_]*($' | tr -d '(' | sort -u |
		sed 's/.*/	&;/'
	echo "local:"
	echo "	*;"
	echo "};"
} >"$out.tmp"
mv "$out.tmp" "$out"

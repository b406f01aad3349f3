#!/bin/bash
# One small piece of work with coreutils, chosen by $WORK and sized by
# $SIZE_KB, followed by $PAUSE seconds standing for the rest of a real
# test's run time. The nodes of main.fmf set these, so that the demo has
# tests of varied lengths. Everything happens in a private scratch
# directory; tests that set UPLOAD attach their work log to their result.
set -e -o pipefail
. ../lib/control.sh

size=$((${SIZE_KB:-64} * 1024))
log=$scratch/$WORK.log
head -c "$size" /dev/urandom >"$scratch/input"
echo "$WORK on $size bytes" | tee "$log"

case $WORK in
compress)
	gzip -c "$scratch/input" >"$scratch/input.gz"
	gzip -t "$scratch/input.gz"
	ls -l "$scratch/input.gz" >>"$log"
	;;
checksum)
	a=$(sha256sum <"$scratch/input")
	cp "$scratch/input" "$scratch/copy"
	b=$(sha256sum <"$scratch/copy")
	[[ $a == "$b" ]]
	echo "sha256 $a" >>"$log"
	;;
sort)
	od -An -tu4 -w4 "$scratch/input" >"$scratch/numbers"
	sort -n "$scratch/numbers" >"$scratch/sorted"
	sort -n -c "$scratch/sorted"
	wc -l <"$scratch/sorted" >>"$log"
	;;
search)
	base64 "$scratch/input" >"$scratch/text"
	grep -c 'a' "$scratch/text" >>"$log" || true
	;;
archive)
	mkdir "$scratch/tree"
	split -b 4096 "$scratch/input" "$scratch/tree/part-"
	tar -C "$scratch" -czf "$scratch/tree.tgz" tree
	mkdir "$scratch/out"
	tar -C "$scratch/out" -xzf "$scratch/tree.tgz"
	diff -r "$scratch/tree" "$scratch/out/tree"
	ls "$scratch/tree" | wc -l >>"$log"
	;;
primes)
	seq 1000000 1000200 | factor | awk 'NF == 2' | wc -l >>"$log"
	;;
wordcount)
	base64 "$scratch/input" | tr -c 'a-z' '\n' | grep -c . >>"$log" || true
	;;
base64)
	base64 "$scratch/input" | base64 -d | cmp - "$scratch/input"
	;;
split)
	split -n 8 "$scratch/input" "$scratch/piece-"
	cat "$scratch"/piece-* | cmp - "$scratch/input"
	;;
dd-copy)
	dd if="$scratch/input" of="$scratch/copy" bs=64k status=none
	cmp "$scratch/input" "$scratch/copy"
	;;
uniq)
	od -An -tx1 -w1 "$scratch/input" | sort | uniq -c | wc -l >>"$log"
	;;
cut)
	base64 -w 76 "$scratch/input" | cut -c 1-10 | wc -l >>"$log"
	;;
*)
	echo "unknown WORK '$WORK'" >&2
	exit 2
	;;
esac

sleep "${PAUSE:-0}"
echo "$WORK done"
if [[ -n ${UPLOAD:-} ]]; then
	report "{\"status\": \"pass\", \"testout\": \"output.txt\", \"note\": \"$WORK of $size bytes\"}" "$log"
fi

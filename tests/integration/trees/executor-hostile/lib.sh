# lib.sh - sourced by the tests of this tree: writes to the control channel.
C=$ATEX_TEST_CONTROL
# report JSON: one result, framed with its length in bytes.
report() { LC_ALL=C printf 'result %d\n%s' "${#1}" "$1" >&"$C"; }
# data FORMAT: raw bytes (printf escapes) after a result.
data() { printf "$1" >&"$C"; }
# ctl LINE: one control line.
ctl() { printf '%s\n' "$1" >&"$C"; }

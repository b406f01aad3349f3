# lib.sh - functions shared by the test wrapper (wrapper.sh), tmt's
# helpers (bin/tmt-*) and the plan's prepare and finish scripts. Embedded
# into libatex at build time, uploaded as WORKDIR/atex/lib.sh, sourced by
# bash. Needs only bash and coreutils. Functions return their text in
# REPLY: no subshell, no fork per name.

# One valid UTF-8 character (RFC 3629: no overlong forms, no surrogates,
# nothing above U+10FFFF), matched byte by byte in the C locale.
atex_utf8_char=$'([\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf][\x80-\xbf]|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]|[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]|\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf])'

# Whether $1 is valid UTF-8 (the empty string is).
atex_is_utf8() {
	local LC_ALL=C
	[[ -z $1 || $1 =~ ^${atex_utf8_char}+$ ]]
}

# $1 as a JSON string literal, in REPLY. $1 must be valid UTF-8. Every
# control character is escaped, none dropped: names that differ only in
# one must stay apart.
atex_json_str() {
	local LC_ALL=C s=$1 out= ch k
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
		for ((k = 0; k < ${#s}; k++)); do
			ch=${s:k:1}
			case $ch in
			$'\n') ch='\n' ;;
			$'\t') ch='\t' ;;
			$'\r') ch='\r' ;;
			[$'\x01'-$'\x1f']) printf -v ch '\\u%04x' "'$ch" ;;
			esac
			out+=$ch
		done
		s=$out
	fi
	REPLY="\"$s\""
}

# $1 made printable for a note, in REPLY: bytes that are not UTF-8 and
# control characters become \xHH, the rest stays.
atex_shown() {
	local LC_ALL=C s=$1 out= ch hex
	while [[ -n $s ]]; do
		if [[ $s =~ ^${atex_utf8_char}+ ]]; then
			ch=${BASH_REMATCH[0]}
			s=${s:${#ch}}
			while [[ $ch == *[$'\x01'-$'\x1f'$'\x7f']* ]]; do
				out+=${ch%%[$'\x01'-$'\x1f'$'\x7f']*}
				ch=${ch#"${ch%%[$'\x01'-$'\x1f'$'\x7f']*}"}
				printf -v hex '\\x%02X' "'${ch:0:1}"
				out+=$hex
				ch=${ch:1}
			done
			out+=$ch
		else
			printf -v hex '\\x%02X' "'${s:0:1}"
			out+=$hex
			s=${s:1}
		fi
	done
	REPLY=$out
}

# The length of $1 in bytes, in REPLY: ${#var} counts characters in a
# UTF-8 locale, and the channel counts bytes.
atex_byte_length() {
	local LC_ALL=C
	REPLY=${#1}
}

# locked CMD [ARG]...: runs CMD with the channel's lock held. Every writer
# (the wrapper, checks, BeakerLib's reports, tmt's helpers, run in
# parallel by the test) writes a message in several writes; the pipe keeps
# a write whole only up to PIPE_BUF, so unlocked messages interleave and
# the channel is lost from there on. The lock is flock(1) (util-linux) on
# ATEX_CHANNEL_LOCK (one per test, setup.c), opened anew here: flock locks
# belong to the open file, and the channel's descriptor is shared by all.
# The kernel drops it with its holder, killed or not. Without flock or
# the file, the message goes unlocked.
atex_locked() {
	local lockfd rc
	if [[ -z ${ATEX_CHANNEL_LOCK:-} ]] ||
		! { exec {lockfd}>>"$ATEX_CHANNEL_LOCK"; } 2>/dev/null; then
		"$@"
		return
	fi
	flock "$lockfd" 2>/dev/null
	"$@"
	rc=$?
	exec {lockfd}>&-
	return "$rc"
}

# send JSON [FILE LENGTH]...: one result on the control channel (stdout),
# with the files' contents after it: exactly LENGTH bytes of each, however
# the file changed since it was measured (a logger still writing to it, a
# truncation: cut, or padded with NUL bytes). The whole message under the
# channel's lock.
atex_send() {
	atex_locked atex_send_unlocked "$@"
}

atex_send_unlocked() {
	local json=$1 f n
	shift
	atex_byte_length "$json"
	LC_ALL=C printf 'result %d\n%s' "$REPLY" "$json" || return
	while (($# >= 2)); do
		f=$1 n=$2
		shift 2
		{
			head -c "$n" -- "$f" 2>/dev/null
			head -c "$n" /dev/zero
		} | head -c "$n" || return
	done
}

# refuse KIND NAME [STATUS [WHY]]: reports that NAME (a file or subtest
# name of the test) cannot be carried, because WHY (by default: it is not
# UTF-8, which the channel's JSON cannot hold): a result
# "atex/refused-name" with STATUS (default warn) whose note shows the name
# escaped. Only that name is lost; the rest goes on.
atex_refuse_name() {
	local kind=$1 status=${3:-warn} note
	local why='its name is not UTF-8 (shown with \xHH escapes)'
	if [[ $# -ge 4 ]]; then why=$4; fi
	atex_shown "$2"
	note="$kind '$REPLY' left out: $why"
	printf '%s\n' "atex: $note" >&2
	atex_json_str "$note"
	note=$REPLY
	atex_json_str "$status"
	# A subtest result refused stays a tmt-report-result call: its status
	# still counts towards the test's own (docs/PROTOCOL.md section 2).
	local call=''
	[[ $kind != result ]] || call=', "atex-tmt-report-result": true'
	atex_send "{\"status\": $REPLY, \"name\": \"atex/refused-name\", \"note\": $note$call}"
}

# plan_env_parse FILE: the NAME=VALUE words of TMT_PLAN_ENVIRONMENT_FILE
# as tmt reads them (Environment.from_dotenv: Python's
# shlex.split(content, comments=True), each word split at its first '='),
# in the array ATEX_ENV_WORDS. Nothing in it is run: `A=$(cmd)` is the
# text "$(cmd)". Words are separated by blanks and newlines; '...' is
# literal, "..." is literal but for \" and \\, a backslash outside quotes
# takes the next character as it is, # starts a comment (also inside a
# word). A word without '=' or an open quote makes the whole file invalid,
# as in tmt: returns 1 with the reason in REPLY. Names that cannot be
# variables in bash are left out, with a warning on stderr.
atex_plan_env_parse() {
	local LC_ALL=C content= state=' ' esc_from= word= quoted= ch
	local line=1 word_line=1 i n lines=()
	ATEX_ENV_WORDS=()
	[[ -s $1 ]] || return 0
	IFS= read -r -d '' content <"$1"
	n=${#content}
	for ((i = 0; i <= n; i++)); do
		ch=${content:i:1}
		if [[ $state == '\' ]]; then
			if [[ -z $ch ]]; then
				REPLY="line $line: no character after the final backslash"
				return 1
			fi
			# Inside "...", a backslash escapes only " and itself.
			[[ $esc_from == '"' && $ch != [\"\\] ]] && word+='\'
			word+=$ch
			state=$esc_from
		elif [[ $state == [\'\"] ]]; then
			if [[ -z $ch ]]; then
				REPLY="line $word_line: no closing quotation"
				return 1
			elif [[ $ch == "$state" ]]; then
				state=a
			elif [[ $state == '"' && $ch == '\' ]]; then
				esc_from='"' state='\'
			else
				word+=$ch
			fi
		elif [[ -z $ch || $ch == [$' \t\r\n#'] ]]; then
			# The end of a word (state a) or more blanks (state ' ').
			if [[ -n $word || -n $quoted ]]; then
				ATEX_ENV_WORDS+=("$word") lines+=("$word_line")
			fi
			word= quoted= state=' '
			if [[ $ch == '#' ]]; then
				while ((i < n)) && [[ ${content:i:1} != $'\n' ]]; do
					((i++))
				done
				ch=${content:i:1}
			fi
		else
			[[ $state == ' ' ]] && word_line=$line
			state=a
			case $ch in
			[\'\"]) state=$ch quoted=1 ;;
			\\) esc_from=a state='\' ;;
			*) word+=$ch ;;
			esac
		fi
		[[ $ch == $'\n' ]] && ((line++))
	done
	for ((i = 0; i < ${#ATEX_ENV_WORDS[@]}; i++)); do
		word=${ATEX_ENV_WORDS[i]}
		if [[ $word != *=* ]]; then
			atex_shown "$word"
			REPLY="line ${lines[i]}: '$REPLY' is not NAME=VALUE"
			ATEX_ENV_WORDS=()
			return 1
		fi
		if ! [[ ${word%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
			atex_shown "${word%%=*}"
			printf 'atex: %s: line %s: %s is not a variable name, left out\n' \
				"$1" "${lines[i]}" "$REPLY" >&2
		fi
	done
	return 0
}

# plan_env_load FILE: exports what atex_plan_env_parse finds in FILE; 1
# (the reason in REPLY, nothing exported) for an invalid file. No local
# variables here: the file may set any name.
atex_plan_env_load() {
	atex_plan_env_parse "$1" || return 1
	set -- "${ATEX_ENV_WORDS[@]}"
	unset ATEX_ENV_WORDS
	while (($#)); do
		[[ ${1%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && export "$1"
		shift
	done
	return 0
}

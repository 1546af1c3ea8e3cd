# Options as getopt_long takes them: "--opt=value" equals "--opt value"; an option without a
# value given one is a usage error, as is a malformed value; "--" ends the options (a file
# named like an option can follow).
. "$(dirname "$0")/lib.inc"

a=$("$LOWBIT" eval "$MODEL" --text "$TEXT" --ctx 64 --chunks 2 --json | json_num /dev/stdin ppl)
b=$("$LOWBIT" eval "$MODEL" --text="$TEXT" --ctx=64 --chunks=2 --json | json_num /dev/stdin ppl)
[ -n "$a" ] && [ "$a" = "$b" ] && pass "--opt=value: the same run as --opt value (ppl $a)" || fail "--opt=value: '$a' vs '$b'"
for bad in "eval $MODEL --text $TEXT --json=yes" "eval $MODEL --text $TEXT --ctx=abc" "info --json=1" "inspect $MODEL --json=x"; do
    # shellcheck disable=SC2086
    "$LOWBIT" $bad > /dev/null 2> "$WORK/err"
    [ $? = 2 ] && grep -q "takes no value\|wants an integer" "$WORK/err" || fail "$bad: $(cat "$WORK/err")"
done
pass "a value for a flag, a malformed value: usage errors"
(cd "$WORK" && "$LOWBIT" quantize --type=q8_0 -q -- "$MODEL" -dash.gguf > /dev/null 2>&1) && [ -s "$WORK/-dash.gguf" ] \
    && pass "-- ends the options: OUT named -dash.gguf" || fail "--: $(ls "$WORK")"
finish

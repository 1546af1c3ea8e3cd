# Bad input on the command line: every command fails with exit code 1 and one line naming
# the file and the problem, never a crash, never a partial output file; usage errors exit 2.
. "$(dirname "$0")/lib.inc"

"$LOWBIT" convert "$MODEL" "$WORK/good.gguf" 2>/dev/null || fail "convert"
size=$(stat -c %s "$WORK/good.gguf")
head -c $((size / 2)) "$WORK/good.gguf" > "$WORK/truncated.gguf"
head -c 40 "$WORK/good.gguf" > "$WORK/header-only.gguf"
{ printf 'GGUF'; head -c 1000 /dev/zero; } > "$WORK/version0.gguf"
{ printf 'GGUF\003\000\000\000'; printf '\377\377\377\377\377\377\377\077'; head -c 100 /dev/zero; } > "$WORK/huge-count.gguf"
{ printf 'XXXX'; tail -c +5 "$WORK/good.gguf"; } > "$WORK/magic.gguf"
head -c 500000 "$MODEL" > "$WORK/truncated.bin"
{ printf '\377\377\377\177'; tail -c +5 "$MODEL"; } > "$WORK/absurd.bin"
head -c 3000 /dev/urandom > "$WORK/random.bin"
: > "$WORK/empty.bin"

check() { # check NAME EXPECTED_TEXT CMD...: exit 1, one stderr line naming the file
    local name=$1 want=$2
    shift 2
    "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    local lines
    lines=$(wc -l < "$WORK/err")
    if [ $rc = 1 ] && [ "$lines" = 1 ] && grep -q -- "$want" "$WORK/err"; then
        pass "$name: $(cat "$WORK/err")"
    else
        fail "$name: exit $rc, stderr: $(head -c 300 "$WORK/err")"
    fi
}

for f in truncated.gguf header-only.gguf version0.gguf huge-count.gguf magic.gguf truncated.bin absurd.bin random.bin empty.bin; do
    check "run $f" "$f" "$LOWBIT" run "$WORK/$f" --tokenizer "$SRC/models/stories260K/tok512.bin" -n 4
    check "eval $f" "$f" "$LOWBIT" eval "$WORK/$f" --tokenizer "$SRC/models/stories260K/tok512.bin" --text "$TEXT"
    check "convert $f" "$f" "$LOWBIT" convert "$WORK/$f" "$WORK/out.gguf" --tokenizer "$SRC/models/stories260K/tok512.bin"
    [ ! -e "$WORK/out.gguf" ] && [ ! -e "$WORK/out.gguf.tmp" ] && pass "no output file after $f" || fail "partial output after $f"
    check "inspect $f" "$f" "$LOWBIT" inspect "$WORK/$f"
done
check "missing file" "no-such-file" "$LOWBIT" run "$WORK/no-such-file"
if have_shared models/babyllama-tok105/tok105.model; then
    check "tokenizer of the wrong size" "tokenizer has 105 tokens" "$LOWBIT" run "$MODEL" --tokenizer "$SHARED/models/babyllama-tok105/tok105.model"
fi
check "bad tokenizer" "random.bin" "$LOWBIT" run "$MODEL" --tokenizer "$WORK/random.bin"
check "missing text" "no-text" "$LOWBIT" eval "$MODEL" --text "$WORK/no-text"
check "unwritable output" "cannot create" "$LOWBIT" convert "$MODEL" "$WORK/no/dir/out.gguf"

"$LOWBIT" eval "$MODEL" > /dev/null 2>&1; [ $? = 2 ] && pass "eval without --text exits 2" || fail "eval without --text"
"$LOWBIT" run "$MODEL" --steps abc > /dev/null 2>&1; [ $? = 2 ] && pass "bad number exits 2" || fail "bad number"
"$LOWBIT" frobnicate > /dev/null 2>&1; [ $? = 2 ] && pass "unknown command exits 2" || fail "unknown command"
"$LOWBIT" convert "$MODEL" "$WORK/x.gguf" --type q4_0 > /dev/null 2>&1; [ $? = 2 ] && pass "convert --type q4_0 exits 2" || fail "convert bad type"
finish

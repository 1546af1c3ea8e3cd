# lowbit eval: the same perplexity from the .bin and from the converted GGUF (ctx 128 and
# 256), llama.cpp's figure on the same text (4.3151 at ctx 128), JSON keys, saved logits.
. "$(dirname "$0")/lib.inc"

CHUNKS=""
[ "$QUICK" = 1 ] && CHUNKS="--chunks 12"
"$LOWBIT" convert "$MODEL" "$WORK/s.gguf" 2>/dev/null || fail "convert"
for ctx in 128 256; do
    "$LOWBIT" eval "$MODEL" --text "$TEXT" --ctx $ctx $CHUNKS --json > "$WORK/a.json" || fail "eval .bin ctx $ctx"
    "$LOWBIT" eval "$WORK/s.gguf" --text "$TEXT" --ctx $ctx $CHUNKS --json > "$WORK/b.json" || fail "eval gguf ctx $ctx"
    a=$(json_num "$WORK/a.json" ppl); b=$(json_num "$WORK/b.json" ppl)
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * a) }' \
        && pass "ctx $ctx: ppl .bin $a = gguf $b" || fail "ctx $ctx: ppl .bin $a != gguf $b"
    if [ "$ctx" = 128 ] && [ "$QUICK" != 1 ]; then
        awk -v a="$a" 'BEGIN { d = a - 4.3151; if (d < 0) d = -d; exit !(d <= 0.001 * 4.3151) }' \
            && pass "ctx 128: ppl $a matches llama.cpp's 4.3151 to 0.1%" || fail "ctx 128: ppl $a vs llama.cpp's 4.3151"
    fi
done
for key in ppl ppl_stderr tokens_scored chunks ctx; do
    [ -n "$(json_num "$WORK/a.json" $key)" ] && pass "json has $key" || fail "json lacks $key"
done

# saved logits: header + tokens + (ctx - 1 - ctx/2) rows of n_vocab floats per chunk
"$LOWBIT" eval "$MODEL" --text "$TEXT" --ctx 64 --chunks 3 --save-logits "$WORK/l.bin" --json > /dev/null || fail "save-logits"
size=$(stat -c %s "$WORK/l.bin" 2>/dev/null || echo 0)
want=$((24 + 3 * 64 * 4 + 3 * 31 * 512 * 4))
[ "$size" = "$want" ] && pass "logits file is $size bytes" || fail "logits file is $size bytes, want $want"
[ "$(head -c 8 "$WORK/l.bin")" = LBLOGITS ] && pass "logits magic" || fail "logits magic"

# a text too short for the context is an error, not a crash
printf 'Once upon a time.' > "$WORK/short.txt"
"$LOWBIT" eval "$MODEL" --text "$WORK/short.txt" --ctx 128 > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "needs at least" "$WORK/err" && pass "short text rejected" || fail "short text: $(cat "$WORK/err")"
finish

# llama-perplexity's KL-divergence base files: lowbit writes one (eval --kl-divergence-base)
# with llama.cpp's header and tokens (the same bytes as a file llama-perplexity wrote, in
# tests/golden), reads llama.cpp's (its tokens and context, no --text) and its own; the KLD
# from a base file equals the one against the model itself; a context other than the file's,
# a truncated file and --kl-divergence without a file are errors.
. "$(dirname "$0")/lib.inc"

GOLD=$SRC/tests/golden/llama-perplexity-kld-base-c64.bin
"$LOWBIT" convert "$MODEL" "$WORK/s.gguf" > /dev/null 2>&1 || fail "convert"
"$LOWBIT" quantize "$WORK/s.gguf" "$WORK/q.gguf" --type q4_0 -q > /dev/null 2>&1 || fail "quantize"
head -c 60000 "$TEXT" > "$WORK/t.txt"
kld() { sed -n 's/.*"kld_mean": \([0-9.e+-]*\).*/\1/p' "$1"; }

"$LOWBIT" eval "$WORK/s.gguf" -f "$WORK/t.txt" -c 64 --chunks 4 --kl-divergence-base "$WORK/mine.bin" > /dev/null 2>&1 \
    || fail "writing a base file"
[ "$(stat -c %s "$WORK/mine.bin")" = "$(stat -c %s "$GOLD")" ] && cmp -s -n $((20 + 4 * 4 * 64)) "$WORK/mine.bin" "$GOLD" \
    && pass "the base file: llama-perplexity's size, header and tokens" || fail "base file differs from llama.cpp's"
"$LOWBIT" eval "$WORK/s.gguf" --kl-divergence-base "$GOLD" --kl-divergence --json > "$WORK/g.json" 2> "$WORK/err" \
    || fail "reading llama.cpp's file: $(cat "$WORK/err")"
awk -v k="$(kld "$WORK/g.json")" -v t="$(json_num "$WORK/g.json" top1)" 'BEGIN { exit !(k >= 0 && k < 1e-4 && t > 0.99) }' \
    && pass "llama.cpp's file against the f32 model: KLD $(kld "$WORK/g.json"), top-1 $(json_num "$WORK/g.json" top1)" \
    || fail "llama.cpp's file: $(cat "$WORK/g.json")"
"$LOWBIT" eval "$WORK/q.gguf" --kl-divergence-base "$GOLD" --kl-divergence --json > "$WORK/gq.json" 2>/dev/null
"$LOWBIT" eval "$WORK/q.gguf" -f "$WORK/t.txt" -c 64 --chunks 4 --ref "$WORK/s.gguf" --json > "$WORK/r.json" 2>/dev/null
"$LOWBIT" eval "$WORK/q.gguf" --kl-divergence-base "$WORK/mine.bin" --kl-divergence --json > "$WORK/m.json" 2>/dev/null
a=$(kld "$WORK/r.json"); b=$(kld "$WORK/m.json"); c=$(kld "$WORK/gq.json")
awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { d = (a - b) / a; e = (a - c) / a; exit !(a > 0 && d * d < 1e-4 && e * e < 4e-4) }' \
    && pass "q4_0 KLD: against the model $a, its base file $b, llama.cpp's $c" || fail "KLD: ref $a, base $b, llama.cpp's $c"

"$LOWBIT" eval "$WORK/q.gguf" --kl-divergence-base "$GOLD" --kl-divergence -c 128 > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "computed with a context of 64" "$WORK/err" && pass "another context: usage error" || fail "ctx: $(cat "$WORK/err")"
head -c 100000 "$GOLD" > "$WORK/trunc.bin"
"$LOWBIT" eval "$WORK/q.gguf" --kl-divergence-base "$WORK/trunc.bin" --kl-divergence > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "100000 bytes, its header says 129012" "$WORK/err" && pass "a truncated base file: one line" \
    || fail "truncated: $(cat "$WORK/err")"
cp "$GOLD" "$WORK/huge.bin"
printf '\377\377\377\177' | dd of="$WORK/huge.bin" bs=1 seek=16 conv=notrunc 2> /dev/null # 2^31-1 chunks
"$LOWBIT" eval "$WORK/q.gguf" --kl-divergence-base "$WORK/huge.bin" --kl-divergence > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "129012 bytes, its header says" "$WORK/err" && pass "a header claiming 2^31-1 chunks: one line" \
    || fail "huge count: $(cat "$WORK/err")"
"$LOWBIT" eval "$WORK/q.gguf" -f "$WORK/t.txt" --kl-divergence > /dev/null 2> "$WORK/err"
[ $? = 2 ] && pass "--kl-divergence without a file: usage error" || fail "--kl-divergence alone"
printf 'not a logits file at all, just text' > "$WORK/junk.bin"
"$LOWBIT" eval "$WORK/q.gguf" -f "$WORK/t.txt" --kl-divergence-base "$WORK/junk.bin" --kl-divergence > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "nor llama-perplexity's base file" "$WORK/err" && pass "a file of neither kind: one line" || fail "junk: $(cat "$WORK/err")"
finish

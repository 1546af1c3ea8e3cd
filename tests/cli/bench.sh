# Fast inference from the command line: lowbit synth writes models of every kernel's type
# that run and evaluate; -t 1 and -t 2 print the same text, the same perplexity and (with a
# quantized KV cache) the same logits; W8A8's integer products match its simulation; bench
# prints its JSON keys; the KV cache types work in run, eval and bench; LB_FORCE_REF=1 runs
# the scalar kernels; bad options are usage errors.
. "$(dirname "$0")/lib.inc"

"$LOWBIT" info | grep -q "^kernels: " && pass "info names the kernels" || fail "info: no kernels line"
[ "$(LB_FORCE_REF=1 "$LOWBIT" info | sed -n 's/^kernels: //p')" = scalar ] \
    && pass "LB_FORCE_REF=1 chooses the scalar kernels" || fail "LB_FORCE_REF=1 ignored"

TYPES="q4_0 q8_0 q4_k iq4_nl f16"
[ "$QUICK" = 1 ] || TYPES="$TYPES q4_1 q5_0 q5_1 q2_k q3_k q5_k q6_k iq4_xs bf16"
for t in $TYPES; do
    "$LOWBIT" synth --shape tiny --type "$t" -o "$WORK/$t.gguf" -q 2> "$WORK/err" \
        || { fail "synth $t: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" run "$WORK/$t.gguf" -p "Once upon a time" -n 12 --temp 0 -t 1 > "$WORK/a.txt" 2>/dev/null
    "$LOWBIT" run "$WORK/$t.gguf" -p "Once upon a time" -n 12 --temp 0 -t 2 > "$WORK/b.txt" 2>/dev/null
    [ -s "$WORK/a.txt" ] && cmp -s "$WORK/a.txt" "$WORK/b.txt" \
        && pass "$t: run -t 1 = -t 2" || fail "$t: run -t 1 and -t 2 differ"
done

# the same perplexity at 1 and 2 threads, in q8 and exact products
"$LOWBIT" synth --shape tiny --type q4_k --vocab "$SRC/models/stories260K/tok512.bin" -o "$WORK/v.gguf" -q \
    || fail "synth with --vocab"
for mm in q8 exact; do
    a=$("$LOWBIT" eval "$WORK/v.gguf" --text "$TEXT" --chunks 3 --matmul $mm -t 1 --json | json_num /dev/stdin ppl)
    b=$("$LOWBIT" eval "$WORK/v.gguf" --text "$TEXT" --chunks 3 --matmul $mm -t 2 --json | json_num /dev/stdin ppl)
    [ -n "$a" ] && [ "$a" = "$b" ] && pass "eval --matmul $mm: ppl $a at -t 1 and -t 2" || fail "eval --matmul $mm: $a vs $b"
done

# the same logits, bit for bit, at 1 and 2 threads with a quantized KV cache
for mm in q8 exact; do
    for t in 1 2; do
        "$LOWBIT" eval "$WORK/v.gguf" --text "$TEXT" --chunks 2 --matmul $mm --cache-type-k q8_0 \
            --cache-type-v q4_0 -t $t --save-logits "$WORK/l$t.bin" --json > /dev/null || fail "eval --save-logits -t $t"
    done
    cmp -s "$WORK/l1.bin" "$WORK/l2.bin" && pass "eval --matmul $mm, KV cache q8_0/q4_0: logits at -t 1 = -t 2" \
        || fail "eval --matmul $mm, KV cache q8_0/q4_0: logits differ between -t 1 and -t 2"
done

# W8A8 (SmoothQuant): integer products in q8 mode, the simulation in exact mode: the same
# perplexity to 0.2% over 16 chunks, the same logits at 1 and 2 threads; run and bench take
# the file. (Over fewer chunks the two drift apart by chance: one activation rounded to the
# other int8 level changes the next layers' inputs, and a 1-ulp change in exp moved the
# simulation's perplexity 0.13% over 4 chunks, 0.03% over 20.)
"$LOWBIT" quantize "$MODEL" "$WORK/w8.gguf" --type w8a8 --method smoothquant --calib "$TEXT" \
    --calib-samples 16 -q > /dev/null 2> "$WORK/err" || fail "quantize w8a8: $(cat "$WORK/err")"
a=$("$LOWBIT" eval "$WORK/w8.gguf" --text "$TEXT" --chunks 16 --matmul exact --json | json_num /dev/stdin ppl)
b=$("$LOWBIT" eval "$WORK/w8.gguf" --text "$TEXT" --chunks 16 --matmul q8 -t 1 --save-logits "$WORK/w1.bin" --json | json_num /dev/stdin ppl)
"$LOWBIT" eval "$WORK/w8.gguf" --text "$TEXT" --chunks 16 --matmul q8 -t 2 --save-logits "$WORK/w2.bin" --json > /dev/null
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 2e-3 * a) }' \
    && pass "w8a8: ppl integer $b, simulated $a" || fail "w8a8: ppl integer $b vs simulated $a"
cmp -s "$WORK/w1.bin" "$WORK/w2.bin" && pass "w8a8 integer products: logits at -t 1 = -t 2" || fail "w8a8: -t 1 and -t 2 differ"
"$LOWBIT" run "$WORK/w8.gguf" -p "Once upon a time" -n 12 --temp 0 > "$WORK/w.txt" 2>/dev/null && [ -s "$WORK/w.txt" ] \
    && pass "run w8a8" || fail "run w8a8"
"$LOWBIT" bench "$WORK/w8.gguf" -p 16 -n 4 -r 1 --mem-bw 10 > /dev/null 2> "$WORK/err" && pass "bench w8a8" || fail "bench w8a8: $(cat "$WORK/err")"

# bench: the keys, a positive speed, the KV cache types
"$LOWBIT" bench "$WORK/q4_0.gguf" -p 32 -n 8 -r 2 --json --mem-mib 32 > "$WORK/b.json" 2> "$WORK/err" || fail "bench: $(cat "$WORK/err")"
for key in pp_tps tg_tps model_bytes peak_rss bw_frac mem_gbs; do
    v=$(json_num "$WORK/b.json" $key)
    awk -v v="$v" 'BEGIN { exit !(v > 0) }' && pass "bench --json $key = $v" || fail "bench --json $key: '$v'"
done
"$LOWBIT" bench "$WORK/q4_0.gguf" -p 16 -n 4 -r 1 --mem-bw 10 --cache-type-k q8_0 --cache-type-v q4_0 > "$WORK/b.txt" \
    && grep -q "KV cache q8_0/q4_0" "$WORK/b.txt" && pass "bench with a quantized KV cache" || fail "bench KV cache: $(cat "$WORK/b.txt")"
# the ceiling is the best of the probes of one run: loads of each width, the kernels' own reads
"$LOWBIT" bench --memory --mem-mib 32 -r 2 --json > "$WORK/m.json" || fail "bench --memory"
best=$(json_num "$WORK/m.json" mem_gbs)
for key in mem_words_gbs mem_avx2_gbs mem_q4_k_gbs mem_q8_0_gbs; do
    v=$(json_num "$WORK/m.json" $key)
    awk -v v="$v" -v b="$best" 'BEGIN { exit !(v > 0 && v <= b) }' || fail "bench --memory $key = '$v' (best $best)"
done
grep -q '"cpus": "[0-9]' "$WORK/m.json" && pass "bench --memory: best of the probes $best GB/s, the threads' CPUs" \
    || fail "bench --memory: no CPUs"
"$LOWBIT" bench "$WORK/q4_0.gguf" -p 8 -n 4 -r 1 --mem-mib 32 | grep -q "^probes: .*q4_K kernel .*threads on CPUs" \
    && pass "bench prints its probes" || fail "bench: no probes line"
for kv in f16 q8_0 q4_0; do
    "$LOWBIT" run "$WORK/q8_0.gguf" -p "Once" -n 4 --cache-type-k $kv --cache-type-v $kv > /dev/null 2>&1 \
        && pass "run --cache-type-k/v $kv" || fail "run with a $kv cache"
done
p=$("$LOWBIT" eval "$MODEL" --text "$TEXT" --chunks 4 --cache-type-k q8_0 --cache-type-v q8_0 --json | json_num /dev/stdin ppl)
awk -v p="$p" 'BEGIN { exit !(p > 3 && p < 6) }' && pass "eval with a q8_0 cache: ppl $p" || fail "eval q8_0 cache: '$p'"

# the scalar kernels give the SIMD kernels' perplexity on a trained model to 0.1% (only the
# order of float additions differs, which flips a few 8-bit roundings: 1.4e-4 measured)
"$LOWBIT" quantize "$MODEL" "$WORK/s4.gguf" --type q4_0 -q > /dev/null 2>&1 || fail "quantize q4_0"
a=$("$LOWBIT" eval "$WORK/s4.gguf" --text "$TEXT" --chunks 4 --matmul q8 --json | json_num /dev/stdin ppl)
b=$(LB_FORCE_REF=1 "$LOWBIT" eval "$WORK/s4.gguf" --text "$TEXT" --chunks 4 --matmul q8 --json | json_num /dev/stdin ppl)
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-3 * a) }' \
    && pass "scalar kernels: ppl $b, SIMD $a" || fail "scalar kernels: ppl $b vs SIMD $a"

# each SIMD tier this CPU runs, capped by LB_MAX_ISA as a CPU without the later ones would
# choose, gives the same perplexity to 0.3% (an AVX2-only machine's kernels, on this one; the
# 256-bit kernels' other order of float additions flips 8-bit roundings: 1.3e-3 measured)
for isa in avx2 avx512vnni; do
    grep -qw "$isa" <(LB_MAX_ISA=$isa "$LOWBIT" info | sed -n 's/^kernels: //p') || { echo "# $isa: not on this CPU"; continue; }
    c=$(LB_MAX_ISA=$isa "$LOWBIT" eval "$WORK/s4.gguf" --text "$TEXT" --chunks 4 --matmul q8 --json | json_num /dev/stdin ppl)
    awk -v a="$a" -v b="$c" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 3e-3 * a) }' \
        && pass "LB_MAX_ISA=$isa kernels: ppl $c, best tier $a" || fail "LB_MAX_ISA=$isa: ppl $c vs $a"
done

# usage errors
"$LOWBIT" run "$MODEL" --cache-type-k nope > /dev/null 2>&1; [ $? = 2 ] && pass "unknown cache type: usage" || fail "unknown cache type"
"$LOWBIT" run "$MODEL" --matmul fast > /dev/null 2>&1; [ $? = 2 ] && pass "bad --matmul: usage" || fail "bad --matmul"
"$LOWBIT" run "$WORK/q4_0.gguf" -n 1 --cache-type-k q4_k > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "f32, f16, q8_0 or q4_0" "$WORK/err" && pass "cache type --help does not list: usage" || fail "q4_k cache: $(cat "$WORK/err")"
"$LOWBIT" synth --shape 13b -o "$WORK/x.gguf" > /dev/null 2>&1; [ $? = 2 ] && pass "unknown shape: usage" || fail "unknown shape"
"$LOWBIT" synth --shape tiny --type q4_k --n-ff 200 -o "$WORK/x.gguf" -q 2> /dev/null
[ $? = 1 ] && [ ! -e "$WORK/x.gguf" ] && pass "shape the type does not fit: error, no file" || fail "bad synth shape"
finish

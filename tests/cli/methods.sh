# lowbit quantize --method awq / W8A8: AWQ prints its per-layer report (RTN against AWQ) and
# the summary line, its file loads and evaluates; --type w8a8 with every method and activation
# mode writes a file whose activation quantization inspect shows and eval applies (KLD against
# the f32 model small but not zero) and prints each linear's W8A8 output error; usage errors
# exit 2 and write nothing.
. "$(dirname "$0")/lib.inc"

CH="--chunks 4"
CAL="--calib $TEXT --calib-samples 8 --calib-ctx 64"
"$LOWBIT" convert "$MODEL" "$WORK/f32.gguf" 2>/dev/null || fail "convert"

"$LOWBIT" quantize "$MODEL" "$WORK/awq.gguf" --type q4_0 --method awq $CAL > "$WORK/out" 2> "$WORK/log" || fail "awq: $(tail -2 "$WORK/log")"
grep -q "blk.0.attn_q.weight *q4_0 *output error: RTN [0-9.]* -> AWQ [0-9.]*" "$WORK/log" \
    && pass "awq: per-layer report" || fail "awq report: $(grep attn_q "$WORK/log" | head -2)"
grep -q "attn_out: no AWQ scales (grouped-query attention" "$WORK/log" \
    && pass "awq: o after v skipped with GQA, and said so" || fail "no GQA line"
grep -q "output error summed .*RTN [0-9.]* -> awq [0-9.]*" "$WORK/out" && pass "awq: summary line" || fail "summary: $(cat "$WORK/out")"
"$LOWBIT" eval "$WORK/awq.gguf" --ref "$WORK/f32.gguf" --text "$TEXT" $CH --json > "$WORK/e.json" || fail "eval awq"

for run in rtn/dynamic smoothquant/kl llm-int8/p99.99; do
    m=${run%/*}; act=${run#*/}
    "$LOWBIT" quantize "$MODEL" "$WORK/w.gguf" --type w8a8 --method "$m" --act "$act" $CAL -q > /dev/null 2> "$WORK/err" \
        || { fail "w8a8 $run: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" inspect "$WORK/w.gguf" > "$WORK/ins"
    grep -q "lowbit.actq.calibration *str *\"$act\"" "$WORK/ins" || fail "w8a8 $run: no lowbit.actq keys"
    "$LOWBIT" eval "$WORK/w.gguf" --ref "$WORK/f32.gguf" --text "$TEXT" $CH --json > "$WORK/w.json" || fail "eval w8a8 $run"
    k=$(json_num "$WORK/w.json" kld_mean)
    awk -v k="$k" 'BEGIN { exit !(k > 1e-5 && k < 0.05) }' && pass "w8a8 $run: KLD $k" || fail "w8a8 $run: KLD $k"
done

# W8A8's per-layer report: each linear's output error from the int8 weights, the int8
# activations and both; SmoothQuant moves activation error into the weights
for m in rtn smoothquant; do
    "$LOWBIT" quantize "$MODEL" "$WORK/w.gguf" --type w8a8 --method $m --act minmax $CAL > /dev/null 2> "$WORK/log.$m" \
        || fail "w8a8 $m report run: $(tail -2 "$WORK/log.$m")"
done
grep -q "blk.0.ffn_down.weight *w8a8 output error: weights [0-9.]*, activations [0-9.]*, both [0-9.]*" "$WORK/log.rtn" \
    && pass "w8a8: per-layer report" || fail "w8a8 report: $(grep ffn_down "$WORK/log.rtn" | head -2)"
act_sum() { sed -n 's/.*summed output error: weights [0-9.]*, activations \([0-9.]*\), both.*/\1/p' "$1"; }
a0=$(act_sum "$WORK/log.rtn"); a1=$(act_sum "$WORK/log.smoothquant")
awk -v a="$a0" -v b="$a1" 'BEGIN { exit !(a > 0 && b > 0 && b < a) }' \
    && pass "w8a8 summary: activation error rtn $a0 > smoothquant $a1" || fail "w8a8 summary: rtn '$a0' smoothquant '$a1'"

"$LOWBIT" quantize "$MODEL" "$WORK/u.gguf" --type q4_0 --act kl > /dev/null 2>&1
[ $? = 2 ] && [ ! -e "$WORK/u.gguf" ] && pass "--act without w8a8: usage error" || fail "--act with q4_0"
"$LOWBIT" quantize "$MODEL" "$WORK/u.gguf" --type w8a8 --act max > /dev/null 2>&1
[ $? = 2 ] && pass "--act max: usage error" || fail "--act max"
"$LOWBIT" quantize "$MODEL" "$WORK/u.gguf" --type w8a8 --act minmax > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "need calibration text" "$WORK/err" && [ ! -e "$WORK/u.gguf" ] \
    && pass "static ranges without --calib: usage error, no file" || fail "static without calib: $(cat "$WORK/err")"
"$LOWBIT" quantize "$MODEL" "$WORK/u.gguf" --type q4_0 --method smoothquant $CAL > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "W8A8 method" "$WORK/err" && pass "smoothquant needs w8a8: usage error" || fail "smoothquant q4_0: $(cat "$WORK/err")"
# LLM.int8 from a GGUF input: its outlier columns reach the file (they were dropped when the
# input's metadata was merged in, and the file did not load)
"$LOWBIT" quantize "$WORK/f32.gguf" "$WORK/wg.gguf" --type w8a8 --method llm-int8 --outlier-threshold 0.5 $CAL -q \
    > /dev/null 2> "$WORK/err" || fail "llm-int8 from a GGUF: $(tail -1 "$WORK/err")"
"$LOWBIT" eval "$WORK/wg.gguf" --ref "$WORK/f32.gguf" --text "$TEXT" $CH --json > "$WORK/wg.json" 2> "$WORK/err" \
    && pass "llm-int8 from a GGUF input: the file loads and evaluates (KLD $(json_num "$WORK/wg.json" kld_mean))" \
    || fail "llm-int8 from a GGUF input: $(tail -1 "$WORK/err")"
finish

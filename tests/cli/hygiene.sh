# Hostile options and names (issue 20): every numeric option is range-checked (NaN and
# infinities too), usage mistakes exit 2 with a message naming the real cause, eval's --ctx
# past the model's context is refused unless --allow-long-ctx, names from a file reach the
# terminal with their control characters escaped, train checks --ternary's fit before it
# trains and prints no validation figure without a validation set, LLM.int8 reports the f32
# columns it keeps and counts them in the bits per weight.
. "$(dirname "$0")/lib.inc"
TOK=$SRC/models/stories260K/tok512.bin

usage() { # usage NAME EXPECTED_TEXT CMD...: exit 2, the message names the cause, no output file
    local name=$1 want=$2
    shift 2
    "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    if [ $rc = 2 ] && grep -q -- "$want" "$WORK/err" && [ ! -e "$WORK/o.gguf" ]; then
        pass "$name: $(head -1 "$WORK/err")"
    else
        fail "$name: exit $rc, stderr: $(head -c 300 "$WORK/err")"
    fi
    rm -f "$WORK/o.gguf"
}

# numbers: NaN, infinities and values outside the range
usage "--temp nan" "--temp wants a number in \[0, 100\]" "$LOWBIT" run "$MODEL" --temp nan -n 1
usage "--top-p 2" "--top-p wants a number in \[0, 1\]" "$LOWBIT" run "$MODEL" --top-p 2 -n 1
usage "--damp nan" "--damp wants a number in (0, 1\]" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --damp nan
usage "--damp -5" "--damp wants" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --damp -5
usage "--alpha inf" "--alpha wants" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type w8a8 --alpha inf
usage "--outlier-threshold 0" "--outlier-threshold wants" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type w8a8 --outlier-threshold 0
usage "--rope-theta 1e300" "--rope-theta wants" "$LOWBIT" synth --rope-theta 1e300 -o "$WORK/o.gguf"
usage "--mem-bw nan" "--mem-bw wants" "$LOWBIT" bench "$MODEL" --mem-bw nan
usage "train --lr nan" "--lr wants" "$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" --lr nan -o "$WORK/o.gguf"
usage "train --wd -1" "--wd wants" "$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" --wd -1 -o "$WORK/o.gguf"
usage "qat --bap-lr inf" "--bap-lr wants" "$LOWBIT" qat "$MODEL" "$WORK/o.gguf" --text "$TEXT" --type q4_0 --bap-lr inf
usage "qat --type foo" "unknown type 'foo'" "$LOWBIT" qat "$MODEL" "$WORK/o.gguf" --text "$TEXT" --type foo
# the KV cache types --help lists, and no other
usage "--cache-type-k iq4_nl" "f32, f16, q8_0 or q4_0, not 'iq4_nl'" "$LOWBIT" run "$MODEL" --cache-type-k iq4_nl -n 1
usage "--cache-type-v q4_k" "not 'q4_k'" "$LOWBIT" eval "$MODEL" --text "$TEXT" --cache-type-v q4_k

# quantize's usage mistakes exit 2 before any work, naming the cause
usage "--method foo" "method 'foo' is not available" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method foo
usage "--method rtn+foo" "method 'foo'" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method rtn+foo
usage "bad --tensor-type regex" "bad regular expression '('" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --tensor-type '(=q8_0'
usage "gptq without --calib" "needs calibration text" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method gptq
usage "awq+gptq without --calib" "method 'awq' needs" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method awq+gptq
usage "gptq+imatrix" "imatrix must come before gptq" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method gptq+imatrix --calib "$TEXT"
tt=()
for i in $(seq 33); do tt+=(--tensor-type "blk\.$i\.=q8_0"); done
usage "33 --tensor-type" "at most 32 --tensor-type" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 "${tt[@]}"
usage "--tensor-type without =" "wants REGEX=TYPE" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --tensor-type foo

# --ctx past the model's context (512): refused in one line, or a one-line warning
for cmd in "eval $MODEL --text $TEXT --chunks 1" "calibrate $MODEL --text $TEXT -o $WORK/o.gguf"; do
    c=${cmd%% *}
    # shellcheck disable=SC2086
    "$LOWBIT" $cmd --ctx 1024 > /dev/null 2> "$WORK/err"
    rc=$?
    [ $rc = 2 ] && [ "$(wc -l < "$WORK/err")" = 1 ] && grep -q "past the model's context of 512" "$WORK/err" \
        && [ ! -e "$WORK/o.gguf" ] && pass "$c --ctx 1024: $(cat "$WORK/err")" || fail "$c --ctx 1024: exit $rc, $(cat "$WORK/err")"
done
usage "quantize --calib-ctx 1024" "--calib-ctx 1024 is past" "$LOWBIT" quantize "$MODEL" "$WORK/o.gguf" --type q4_0 --method imatrix --calib "$TEXT" --calib-ctx 1024
"$LOWBIT" eval "$MODEL" --text "$TEXT" --chunks 1 --ctx 1024 --allow-long-ctx --json > "$WORK/e.json" 2> "$WORK/err"
rc=$?
[ $rc = 0 ] && [ "$(wc -l < "$WORK/err")" = 1 ] && grep -q "warning: --ctx 1024 is past" "$WORK/err" \
    && [ "$(json_num "$WORK/e.json" ctx)" = 1024 ] && pass "eval --allow-long-ctx: $(cat "$WORK/err")" \
    || fail "eval --allow-long-ctx: exit $rc, $(cat "$WORK/err")"

# control characters in names from a file are escaped: a tensor name and a key with ESC
"$LOWBIT" convert "$MODEL" "$WORK/good.gguf" 2> /dev/null || fail "convert"
LC_ALL=C sed 's/output_norm\.weight/output_nor\x1b.weight/; s/general\.architecture/general.architectur\x07/' \
    "$WORK/good.gguf" > "$WORK/esc.gguf"
"$LOWBIT" inspect "$WORK/esc.gguf" > "$WORK/ins" 2>&1
if ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/ins" && grep -qF 'output_nor\x1b.weight' "$WORK/ins" \
    && grep -qF 'general.architectur\x07' "$WORK/ins"; then
    pass "inspect escapes control characters in names and keys"
else
    fail "inspect: $(grep -a 'output_nor\|architectur' "$WORK/ins" | cat -v)"
fi
"$LOWBIT" tokenize "$MODEL" --tokenizer "$TOK" -p "a
b" --pieces > "$WORK/tok"
grep -qF "'<0x0A>'" "$WORK/tok" && [ "$(wc -l < "$WORK/tok")" -ge 3 ] && pass "tokenize --pieces" || fail "tokenize --pieces: $(cat -v "$WORK/tok")"

# train: no validation figure without --valid; --ternary's fit checked before training
SHAPE="--n-embd 64 --n-layers 1 --n-heads 4 --n-kv-heads 2 --n-ff 128 --ctx 16 --batch 2"
"$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" $SHAPE --steps 2 -o "$WORK/t.gguf" 2> "$WORK/err" \
    || fail "train: $(tail -1 "$WORK/err")"
tail -1 "$WORK/err" | grep -q "train loss" && ! grep -q "valid loss" "$WORK/err" \
    && pass "train without --valid: $(tail -1 "$WORK/err")" || fail "train without --valid: $(tail -1 "$WORK/err")"
"$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" $SHAPE --steps 1000000 --ternary -o "$WORK/t2.gguf" > /dev/null 2> "$WORK/err"
rc=$?
[ $rc = 1 ] && tail -1 "$WORK/err" | grep -q "rows of 64 values (n_embd) do not fit tq2_0" && ! grep -q "step" "$WORK/err" \
    && [ ! -e "$WORK/t2.gguf" ] && pass "train --ternary --n-embd 64: $(tail -1 "$WORK/err")" \
    || fail "train --ternary --n-embd 64: exit $rc, $(tail -2 "$WORK/err")"

# LLM.int8: the f32 columns kept are reported per tensor and counted in the bits per weight
CAL="--calib $TEXT --calib-samples 4 --calib-ctx 64"
"$LOWBIT" quantize "$MODEL" "$WORK/w.gguf" --type w8a8 --method llm-int8 $CAL --outlier-threshold 1000 --json \
    > "$WORK/w0.json" 2> /dev/null || fail "llm-int8, no outliers"
"$LOWBIT" quantize "$MODEL" "$WORK/w.gguf" --type w8a8 --method llm-int8 $CAL --outlier-threshold 0.5 \
    > "$WORK/w1.txt" 2> "$WORK/log" || fail "llm-int8: $(tail -1 "$WORK/log")"
"$LOWBIT" quantize "$MODEL" "$WORK/w.gguf" --type w8a8 --method llm-int8 $CAL --outlier-threshold 0.5 --json \
    > "$WORK/w1.json" 2> /dev/null || fail "llm-int8 --json"
grep -q "blk.1.ffn_down.weight *[0-9]* of 172 input columns kept in f32" "$WORK/log" \
    && pass "llm-int8: $(grep -m1 'ffn_down.weight' "$WORK/log" | sed 's/^ *//')" || fail "llm-int8: no per-tensor line"
b0=$(json_num "$WORK/w0.json" bpw); b1=$(json_num "$WORK/w1.json" bpw); size=$(stat -c %s "$WORK/w.gguf")
bytes=$(json_num "$WORK/w1.json" bytes_out)
awk -v a="$b0" -v b="$b1" -v s="$size" -v n="$bytes" 'BEGIN { exit !(a < 9 && b > 30 && n <= s && n > 0.95 * s) }' \
    && pass "llm-int8: $b0 bits per weight without outliers, $b1 with most columns in f32 ($bytes of $size bytes)" \
    || fail "llm-int8 bpw: $b0 -> $b1, $bytes bytes of a $size-byte file"
b2=$(sed -n 's/.* \([0-9.]*\) bits per weight.*/\1/p' "$WORK/w1.txt")
awk -v b="$b2" 'BEGIN { exit !(b > 30) }' && pass "llm-int8: the summary line says $b2 bits per weight" \
    || fail "llm-int8 summary: $(cat "$WORK/w1.txt")"
finish

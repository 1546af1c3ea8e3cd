# llama-quantize's spellings on lowbit quantize: the positional IN [OUT] TYPE [NTHREADS] forms
# (the same bytes as --type), --dry-run (every tensor's plan and the total, nothing written),
# --output-tensor-type, --token-embedding-type and --leave-output-tensor (output.weight alone,
# not attn_output), --tensor-type-file, requantizing refused unless --allow-requantize, the
# options not implemented named as such, and the warning for a type llama.cpp cannot load.
. "$(dirname "$0")/lib.inc"

TB=$SRC/models/testbed/testbed-f16.gguf # an untied output, rows every type fits
cp "$TB" "$WORK/tb.gguf"
types_of() { "$LOWBIT" inspect "$1" | awk '$1 ~ /weight$/ { print $1, $2 }'; }
type_of() { types_of "$1" | awk -v n="$2" '$1 == n { print $2 }'; }

"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/a.gguf" --type q4_0 -q > /dev/null 2>&1 || fail "--type q4_0"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/b.gguf" q4_0 2 > /dev/null 2>&1 || fail "IN OUT TYPE NTHREADS"
cmp -s "$WORK/a.gguf" "$WORK/b.gguf" && pass "IN OUT TYPE NTHREADS: the bytes of --type" || fail "positional form differs"
"$LOWBIT" quantize "$WORK/tb.gguf" Q4_0 > /dev/null 2>&1 || fail "IN TYPE"
cmp -s "$WORK/a.gguf" "$WORK/ggml-model-Q4_0.gguf" && pass "IN TYPE: ggml-model-Q4_0.gguf beside IN" \
    || fail "IN TYPE: $(ls "$WORK")"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/c.gguf" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q -- "--type is required" "$WORK/err" && pass "IN OUT without a type: usage error" \
    || fail "no type: $(cat "$WORK/err")"

"$LOWBIT" quantize --dry-run "$WORK/tb.gguf" q4_k_m > "$WORK/dry" 2>&1 || fail "--dry-run IN TYPE: $(tail -1 "$WORK/dry")"
grep -q "^blk.2.attn_v.weight .* f16 *-> q6_K .*MiB -> .*MiB" "$WORK/dry" \
    && grep -q "^dry run: 57 tensors, [0-9.]* MiB -> [0-9.]* MiB ([0-9.]* bits per weight); nothing written" "$WORK/dry" \
    && [ ! -e "$WORK/ggml-model-Q4_K_M.gguf" ] && pass "--dry-run: the plan, the total, no file" \
    || fail "--dry-run: $(head -3 "$WORK/dry"; tail -1 "$WORK/dry")"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/q.gguf" --type q4_k_m -q > /dev/null 2>&1
want=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "->") { print $1, $(i + 1); break } }' "$WORK/dry" | grep weight | sort)
have=$(types_of "$WORK/q.gguf" | sort)
[ "$want" = "$have" ] && pass "--dry-run's types are the run's" || fail "--dry-run types differ: $(diff <(echo "$want") <(echo "$have") | head -4)"
"$LOWBIT" quantize --dry-run "$WORK/tb.gguf" --type q4_0 --json > "$WORK/dry.json" || fail "--dry-run --json"
[ "$(json_num "$WORK/dry.json" tensors)" = 57 ] && pass "--dry-run --json" || fail "dry json: $(cat "$WORK/dry.json")"

"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/o.gguf" q4_0 --output-tensor-type q8_0 --token-embedding-type Q5_0 > /dev/null 2>&1 \
    || fail "--output-tensor-type"
[ "$(type_of "$WORK/o.gguf" output.weight)" = q8_0 ] && [ "$(type_of "$WORK/o.gguf" token_embd.weight)" = q5_0 ] \
    && [ "$(type_of "$WORK/o.gguf" blk.0.attn_output.weight)" = q4_0 ] \
    && pass "--output-tensor-type q8_0, --token-embedding-type Q5_0: those two only" \
    || fail "output/embd types: $(types_of "$WORK/o.gguf" | grep -E 'output|embd' | tr '\n' ' ')"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/l.gguf" q4_0 --leave-output-tensor > /dev/null 2>&1 || fail "--leave-output-tensor"
[ "$(type_of "$WORK/l.gguf" output.weight)" = f16 ] && [ "$(type_of "$WORK/l.gguf" blk.0.attn_output.weight)" = q4_0 ] \
    && pass "--leave-output-tensor: output.weight stays f16" || fail "--leave-output-tensor: $(type_of "$WORK/l.gguf" output.weight)"
printf 'attn_v=q8_0\nffn_down=q5_1 \n' > "$WORK/tt.txt"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/t.gguf" q4_0 --tensor-type-file "$WORK/tt.txt" > /dev/null 2>&1 || fail "--tensor-type-file"
[ "$(type_of "$WORK/t.gguf" blk.3.attn_v.weight)" = q8_0 ] && [ "$(type_of "$WORK/t.gguf" blk.3.ffn_down.weight)" = q5_1 ] \
    && [ "$(type_of "$WORK/t.gguf" blk.3.attn_q.weight)" = q4_0 ] && pass "--tensor-type-file" || fail "--tensor-type-file types"

"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/r.gguf" q8_0 > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "requantizing from q4_0 is disabled" "$WORK/err" && [ ! -e "$WORK/r.gguf" ] \
    && pass "requantizing refused by default" || fail "requantize: $(cat "$WORK/err")"
"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/r.gguf" q8_0 --allow-requantize > /dev/null 2>&1 \
    && [ "$(type_of "$WORK/r.gguf" blk.0.attn_q.weight)" = q8_0 ] && pass "--allow-requantize" || fail "--allow-requantize"
"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/s.gguf" q4_0 > /dev/null 2>&1 && pass "q4_0 to q4_0: nothing requantized, allowed" \
    || fail "same-type run refused"

for o in --keep-split --override-kv --include-weights; do
    "$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/u.gguf" q4_0 $o x > /dev/null 2> "$WORK/err"
    [ $? = 2 ] && grep -q "not implemented in lowbit yet" "$WORK/err" || fail "$o: $(cat "$WORK/err")"
done
pass "options not implemented: usage errors that say so"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/n.gguf" --type nf4 > /dev/null 2> "$WORK/err" || fail "nf4"
grep -q "warning: .*n.gguf holds nf4, a lowbit type: llama.cpp and Ollama cannot load it" "$WORK/err" \
    && ! grep -q "lowbit type" <("$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/a2.gguf" --type q4_0 2>&1) \
    && pass "a lowbit-only type: one warning line" || fail "warning: $(grep -i warn "$WORK/err")"
finish

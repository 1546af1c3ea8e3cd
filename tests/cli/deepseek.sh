# DeepSeek-V2/V3 (issue 24): multi-head latent attention, dense first layers, routed and shared
# experts, V3's router (sigmoid, selection bias, expert groups, scaled weights). Synthetic models in
# llama.cpp's deepseek2 layout: its keys and 3-D attn_k_b/attn_v_b; a GGUF round trip keeps the
# logits; the HF directory (kv_b_proj, experts one by one) computes the same logits, and so does
# an independent NumPy forward of it (tests/ref/hf_forward.py: the keys and values decompressed,
# not absorbed); llama.cpp's Q4_K_M rules (k_b's short rows fall back, the router stays f32); GPTQ
# on the latent attention's inputs (per head for k_b, v_b) and per expert lands below round to
# nearest; calibrate writes llama-imatrix's per-head entries; what is not supported (the older
# attn_kv_b layout, AWQ) is refused in one line.
. "$(dirname "$0")/lib.inc"

CH="--chunks 3"
[ "$QUICK" = 1 ] && CH="--chunks 1"
tok="$SRC/models/stories260K/tok512.bin"
shape="--shape tiny --n-layers 3 --n-embd 256 --n-ff 512 --n-heads 4 --n-vocab 512"

# V2-Lite's form: wq, softmax router, one dense layer; V3's: q's low-rank pair and its router
for v in v2 v3; do
    g="$WORK/$v.gguf"
    opt="--experts 8 --experts-used 2"
    [ $v = v3 ] && opt="$opt --q-lora 64 --router v3 --expert-groups 4 --groups-used 2 --dense-lead 0"
    # shellcheck disable=SC2086
    "$LOWBIT" synth --arch deepseek2 $shape $opt --type f32 --vocab "$tok" -o "$g" -q 2> "$WORK/err" \
        || { fail "$v: synth: $(tail -1 "$WORK/err")"; continue; }
    "$LOWBIT" inspect "$g" > "$WORK/ins" 2>&1
    grep -q "deepseek2.attention.key_length_mla .* 64" "$WORK/ins" && grep -q "deepseek2.attention.kv_lora_rank .* 128" "$WORK/ins" \
        && grep -q "blk.1.attn_k_b.weight .*\[32, 128, 4\]" "$WORK/ins" && grep -q "blk.1.attn_v_b.weight .*\[128, 32, 4\]" "$WORK/ins" \
        && pass "$v: llama.cpp's deepseek2 keys and 3-D k_b, v_b" || fail "$v: keys or shapes"
    if [ $v = v2 ]; then
        grep -q "blk.0.ffn_down.weight" "$WORK/ins" && grep -q "blk.1.ffn_down_exps.weight" "$WORK/ins" \
            && grep -q "blk.1.ffn_down_shexp.weight .*\[512, 256\]" "$WORK/ins" && ! grep -q "blk.0.ffn_down_exps" "$WORK/ins" \
            && pass "v2: a dense first layer, then experts and two shared experts" || fail "v2: layer layout"
    else
        grep -q "blk.0.attn_q_a.weight .*\[256, 64\]" "$WORK/ins" && grep -q "blk.0.exp_probs_b.bias" "$WORK/ins" \
            && grep -q "deepseek2.expert_gating_func .* 2" "$WORK/ins" && grep -q "deepseek2.expert_group_count .* 4" "$WORK/ins" \
            && pass "v3: q_a/q_b, the selection bias, sigmoid gating, groups" || fail "v3: layout or router keys"
    fi
    # shellcheck disable=SC2086
    "$LOWBIT" eval "$g" --text "$TEXT" --ctx 64 $CH --save-logits "$WORK/$v.lg" --json > "$WORK/e.json" 2>/dev/null
    ppl=$(json_num "$WORK/e.json" ppl)
    awk -v p="$ppl" 'BEGIN { exit !(p != "" && p + 0 > 1 && p + 0 < 1e5) }' && pass "$v: perplexity $ppl" || fail "$v: perplexity '$ppl'"
    hf_roundtrip "$v" "$g" # kv_b_proj split into k_b and v_b and merged back
    # the file written back (f16) computes the same model
    "$LOWBIT" convert "$g" "$WORK/$v-rt.gguf" --type f16 > /dev/null 2>&1 || fail "$v: convert"
    kld=$(kld_vs "$WORK/$v-rt.gguf" "$WORK/$v.lg")
    awk -v k="$kld" 'BEGIN { exit !(k != "" && k + 0 < 1e-3) }' && pass "$v: GGUF written back (f16): KLD $kld" \
        || fail "$v: written back: KLD $kld"
done

# llama.cpp's Q4_K_M: k_b's rows (32) too short for q4_K fall back to q5_0, v_b's (128) to q5_0
# too (its mix: ffn_down_exps by use_more_bits), the router stays f32, kv_a_mqa q4_K
g="$WORK/v2.gguf"
q="$WORK/v2-q4km.gguf"
"$LOWBIT" quantize "$g" "$q" --type q4_k_m -q > /dev/null 2> "$WORK/err" || fail "q4_k_m: $(tail -1 "$WORK/err")"
"$LOWBIT" inspect "$q" > "$WORK/ins" 2>&1
ty() { awk -v n="$1" '$1 == n { print $2 }' "$WORK/ins"; }
got="$(ty blk.1.attn_k_b.weight) $(ty blk.1.attn_kv_a_mqa.weight) $(ty blk.1.ffn_gate_inp.weight) $(ty blk.1.ffn_up_exps.weight)"
[ "$got" = "q5_0 q4_K f32 q4_K" ] && pass "q4_k_m: k_b q5_0 (fallback), kv_a_mqa q4_K, router f32, experts q4_K" \
    || fail "q4_k_m types (k_b, kv_a_mqa, router, up_exps): $got"

# calibrated: GPTQ on q/kv_a's, each head's k_b and v_b, o's, each expert's and the shared
# experts' inputs; the imatrix method; both below round to nearest
CAL="--calib $TEXT --calib-samples 16 --calib-ctx 64"
[ "$QUICK" = 1 ] && CAL="--calib $TEXT --calib-samples 8 --calib-ctx 64"
declare -A K
for m in rtn imatrix gptq; do
    # shellcheck disable=SC2086
    "$LOWBIT" quantize "$g" "$WORK/$m.gguf" --type q4_k_m --method $m $CAL > /dev/null 2> "$WORK/err-$m" \
        || { fail "$m: $(tail -1 "$WORK/err-$m")"; continue; }
    K[$m]=$(kld_vs "$WORK/$m.gguf" "$WORK/v2.lg")
done
for t in blk.1.attn_kv_a_mqa blk.1.attn_output blk.1.ffn_up_shexp blk.1.ffn_down_shexp; do
    grep -q "$t.weight .*output error: RTN [0-9.]* -> GPTQ" "$WORK/err-gptq" && ! grep -q "$t.weight .*RTN 0.000000" "$WORK/err-gptq" \
        || fail "gptq: no Hessian for $t"
done
grep -q "blk.1 ffn_down_exps expert 0 " "$WORK/err-gptq" && grep -q "blk.1 attn_k_b: 4 heads GPTQ" "$WORK/err-gptq" \
    && grep -q "blk.1 attn_v_b: 4 heads GPTQ" "$WORK/err-gptq" \
    && pass "gptq: the latent attention's inputs (k_b and v_b per head), the shared experts', each expert's" \
    || fail "gptq: no per-expert or per-head report"
# V3's q_b reads the normed low-rank q: its own Hessian
# shellcheck disable=SC2086
"$LOWBIT" quantize "$WORK/v3.gguf" "$WORK/x.gguf" --type q4_k_m --method gptq $CAL > /dev/null 2> "$WORK/err"
grep -q "blk.1.attn_q_b.weight .*output error: RTN [0-9.]* -> GPTQ" "$WORK/err" && ! grep -q "attn_q_b.weight .*RTN 0.000000" "$WORK/err" \
    && pass "gptq: q_b on its own input" || fail "gptq: q_b: $(grep -m1 attn_q_b "$WORK/err")"

# calibrate: per-head entries for k_b and v_b as llama-imatrix writes them ([n * heads], one
# count), q_b's; quantize --imatrix reads them (IQ2_XS needs them where the rows allow it)
"$LOWBIT" calibrate "$WORK/v3.gguf" --text "$TEXT" -o "$WORK/v3.imatrix" --calib-samples 8 --calib-ctx 64 > /dev/null 2>&1 \
    || fail "calibrate deepseek2"
"$LOWBIT" inspect "$WORK/v3.imatrix" > "$WORK/ins" 2>&1
grep -q "blk.1.attn_k_b.weight.in_sum2 .*\[128\]" "$WORK/ins" && grep -q "blk.1.attn_v_b.weight.in_sum2 .*\[512\]" "$WORK/ins" \
    && grep -q "blk.1.attn_k_b.weight.counts .*\[1\]" "$WORK/ins" && grep -q "blk.1.attn_q_b.weight.in_sum2 .*\[64\]" "$WORK/ins" \
    && pass "imatrix: k_b and v_b per head, q_b" || fail "imatrix: MLA entries"
"$LOWBIT" quantize "$WORK/v3.gguf" "$WORK/x.gguf" --type iq2_xs --imatrix "$WORK/v3.imatrix" -q > /dev/null 2> "$WORK/err" \
    && pass "iq2_xs with the importance matrix" || fail "iq2_xs --imatrix: $(tail -1 "$WORK/err")"
awk -v r="${K[rtn]}" -v i="${K[imatrix]}" -v g="${K[gptq]}" -v q="$QUICK" \
    'BEGIN { exit !(r != "" && i != "" && g != "" && g + 0 < r + 0 && i + 0 < (q == 1 ? 1.25 : 1.1) * r) }' \
    && pass "q4_k_m KLD: rtn ${K[rtn]}, imatrix ${K[imatrix]}, gptq ${K[gptq]}" \
    || fail "q4_k_m KLD: rtn ${K[rtn]}, imatrix ${K[imatrix]}, gptq ${K[gptq]}"

# an HF config this reading does not cover is refused, not approximated
sed 's/"moe_layer_freq": 1/"moe_layer_freq": 2/' "$WORK/v2-hf/config.json" > "$WORK/cfg" && cp "$WORK/cfg" "$WORK/v2-hf/config.json"
"$LOWBIT" eval "$WORK/v2-hf" --text "$TEXT" --chunks 1 > /dev/null 2> "$WORK/err"
[ $? -ne 0 ] && grep -q "moe_layer_freq 2" "$WORK/err" && pass "HF moe_layer_freq 2 refused: $(tail -1 "$WORK/err")" \
    || fail "moe_layer_freq 2: $(tail -1 "$WORK/err")"

# refused in one line: AWQ; the older layout (key_length not the latent's)
# shellcheck disable=SC2086
"$LOWBIT" quantize "$g" "$WORK/x.gguf" --type q4_0 --method awq $CAL -q > /dev/null 2> "$WORK/err"
[ $? -ne 0 ] && [ "$(wc -l < "$WORK/err")" -le 2 ] && pass "awq refused: $(tail -1 "$WORK/err")" || fail "awq: $(tail -1 "$WORK/err")"
"$LOWBIT" quantize "$g" "$WORK/bad.gguf" --type q8_0 --override-kv deepseek2.attention.key_length=int:64 -q > /dev/null 2>&1
"$LOWBIT" eval "$WORK/bad.gguf" --text "$TEXT" --chunks 1 > /dev/null 2> "$WORK/err"
[ $? -ne 0 ] && grep -q "not the latent" "$WORK/err" && pass "a key length not the latent's refused: $(tail -1 "$WORK/err")" \
    || fail "bad key length: $(tail -1 "$WORK/err")"
# a multi-token prediction block (GLM-4.7-Flash's) is refused, not run as one more layer
"$LOWBIT" quantize "$g" "$WORK/bad.gguf" --type q8_0 --override-kv deepseek2.nextn_predict_layers=int:1 -q > /dev/null 2>&1
"$LOWBIT" eval "$WORK/bad.gguf" --text "$TEXT" --chunks 1 > /dev/null 2> "$WORK/err"
[ $? -ne 0 ] && grep -q "nextn_predict_layers" "$WORK/err" && pass "nextn_predict_layers refused" \
    || fail "nextn_predict_layers: $(tail -1 "$WORK/err")"
# the first layer read as an expert layer (leading_dense_block_count 0): its experts are missing
"$LOWBIT" quantize "$g" "$WORK/bad.gguf" --type q8_0 --override-kv deepseek2.leading_dense_block_count=int:0 -q > /dev/null 2>&1
"$LOWBIT" eval "$WORK/bad.gguf" --text "$TEXT" --chunks 1 > /dev/null 2> "$WORK/err"
[ $? -ne 0 ] && grep -q "ffn_gate_inp.weight. is missing" "$WORK/err" && pass "a layer without its experts refused: $(tail -1 "$WORK/err")" \
    || fail "dense layer count: $(tail -1 "$WORK/err")"
finish

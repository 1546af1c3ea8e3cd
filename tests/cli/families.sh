# Model families through the architecture table (issue 18): for llama, qwen2, qwen3, phi3
# (q, k, v and gate, up fused in its HF directory; gate and up in one ffn_up in GGUF), gemma2
# and gemma3 (post-norms, GELU, soft-capping, sliding windows; norms 1 + w in GGUF), a
# synthetic model (GQA; Qwen3 also with a head size that is not n_embd / n_heads) written as
# GGUF, exported as an HF directory, read back: the HF directory's logits equal the GGUF's
# (KLD 0) and an independent NumPy forward of the HF layout (tests/ref/hf_forward.py, when
# Debian's python3-numpy is there); GPTQ, AWQ and imatrix quantize every family, and the
# results load and evaluate close to the original; QAT trains every family (training forward and
# gradients per family: test_train.c).
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
numpy=1
"$PY" -c 'import numpy' 2>/dev/null || { numpy=0; echo "# skip: the NumPy reference (no python3-numpy for $PY)"; }
CH="--chunks 3"
[ "$QUICK" = 1 ] && CH="--chunks 1"
tok="$SRC/models/stories260K/tok512.bin"
shape="--shape tiny --n-layers 2 --n-embd 128 --n-ff 256 --n-heads 4 --n-kv-heads 2 --n-vocab 512"

for fam in llama mistral qwen2 qwen3 qwen3:64 phi3 gemma2 gemma3; do
    arch=${fam%%:*}
    hd=""
    [ "$fam" != "$arch" ] && hd="--head-dim ${fam#*:}"
    # Gemma: windows of 16 in chunks of 64; Gemma 3's sixth layer is global, with its own base
    case $arch in
        mistral) arch=llama hd="--sliding-window 16" ;; # llama's tensors, a window on every layer
        gemma2) hd="--sliding-window 16" ;;
        gemma3) hd="--n-layers 6 --sliding-window 16 --rope-theta 1000000" ;;
    esac
    name=$(echo "$fam" | tr : _)
    g="$WORK/$name.gguf"
    # shellcheck disable=SC2086
    "$LOWBIT" synth --arch "$arch" $shape $hd --type f32 --vocab "$tok" -o "$g" -q 2>/dev/null || { fail "$fam: synth"; continue; }
    arch_key=$("$LOWBIT" inspect "$g" | awk '$1 == "general.architecture" { print $3 }')
    [ "$arch_key" = "\"$arch\"" ] && pass "$fam: general.architecture $arch_key" || fail "$fam: general.architecture $arch_key"
    hf_roundtrip "$name" "$g" || continue
    # W8A8: SmoothQuant's folds (the family's norms, as AWQ's) against naive W8A8, within 10% of
    # it or better (W8A8 of random weights is already close: KLD ~0.002)
    for m in rtn smoothquant; do
        "$LOWBIT" quantize "$g" "$WORK/$name-w8-$m.gguf" --type w8a8 --method $m --calib "$TEXT" --calib-samples 8 \
            --calib-ctx 64 -q > /dev/null 2> "$WORK/err" || { fail "$fam w8a8 $m: $(tail -1 "$WORK/err")"; continue; }
        # shellcheck disable=SC2086
        "$LOWBIT" eval "$WORK/$name-w8-$m.gguf" --text "$TEXT" --ctx 64 $CH --ref-logits "$WORK/$name.lg" --json \
            > "$WORK/w8-$m.json" 2>/dev/null || fail "$fam w8a8 $m: eval"
    done
    k0=$(json_num "$WORK/w8-rtn.json" kld_mean); k1=$(json_num "$WORK/w8-smoothquant.json" kld_mean)
    awk -v a="$k1" -v b="$k0" 'BEGIN { exit !(a != "" && b != "" && a + 0 <= 1.1 * b) }' \
        && pass "$fam w8a8: smoothquant KLD $k1 (rtn $k0)" || fail "$fam w8a8: smoothquant KLD $k1 (rtn $k0)"
    rtn=""
    for m in rtn gptq awq imatrix qat; do
        q="$WORK/$name-$m.gguf"
        if [ $m = qat ]; then # 40 steps of QAT from the f32 model (its own logits the teacher)
            "$LOWBIT" qat "$g" "$q" --type q4_0 --text "$TEXT" --steps 40 --ctx 64 --lr 1e-4 \
                > /dev/null 2> "$WORK/err" || { fail "$fam qat: $(tail -1 "$WORK/err")"; continue; }
        else
            "$LOWBIT" quantize "$g" "$q" --type q4_0 --method $m --calib "$TEXT" --calib-samples 16 --calib-ctx 64 -q \
                > /dev/null 2> "$WORK/err" || { fail "$fam $m: $(tail -1 "$WORK/err")"; continue; }
        fi
        kld=$(kld_vs "$q" "$WORK/$name.lg") || { fail "$fam $m: eval"; continue; }
        [ $m = rtn ] && rtn=$kld
        # GPTQ, AWQ and QAT land below round to nearest (random weights: KLD ~0.1 at q4_0); the
        # importance search has little to weigh on random weights: within 25% of it; so does
        # QAT's 40 steps in the quick runs, whose one chunk (31 scored tokens) is too noisy for
        # its 10-40% gain
        awk -v k="$kld" -v r="$rtn" -v m=$m -v q="${QUICK:-0}" 'BEGIN {
                lim = m == "rtn" ? 0.5 : m == "imatrix" || (m == "qat" && q == 1) ? 1.25 * r : r
                exit !(k != "" && k + 0 < lim + 0) }' \
            && pass "$fam $m q4_0: KLD $kld (rtn $rtn)" || fail "$fam $m q4_0: KLD $kld (rtn $rtn)"
    done
done
# Phi-3's importance matrix: its parts' entries and the fused attn_qkv llama.cpp's own phi3 files
# hold (ffn_up is both a part and the fused name); quantize --imatrix takes it
"$LOWBIT" calibrate "$WORK/phi3.gguf" --text "$TEXT" -o "$WORK/phi3.imatrix" --calib-samples 8 2>/dev/null || fail "phi3: calibrate"
entries=$("$LOWBIT" inspect "$WORK/phi3.imatrix" | awk '$1 ~ /^blk\.0\..*in_sum2$/ { print $1 }' | tr '\n' ' ')
case "$entries" in *attn_qkv.weight.in_sum2*attn_q.weight*|*attn_q.weight*attn_qkv.weight.in_sum2*) pass "phi3 imatrix: $entries" ;;
    *) fail "phi3 imatrix entries: $entries" ;; esac
"$LOWBIT" quantize "$WORK/phi3.gguf" "$WORK/phi3-im.gguf" --type q4_0 --imatrix "$WORK/phi3.imatrix" -q > /dev/null 2>&1 \
    && pass "phi3: quantize --imatrix" || fail "phi3: quantize --imatrix"

# RoPE scaling: linear, llama3, YaRN and LongRoPE (Phi-3) from config.json, past their original context
# (32 positions, chunks of 64): kept through GGUF (rope.scaling.*, rope_factors_long/short) and
# back to an HF directory; the NumPy reference computes each as transformers does; other kinds
# are refused, never ignored
lf=$(awk 'BEGIN { for (i = 0; i < 16; i++) printf "%s%.2f", i ? ", " : "", 1 + 0.5 * i }')
sf=$(awk 'BEGIN { for (i = 0; i < 16; i++) printf "%s%.3f", i ? ", " : "", 1 + 0.05 * i }')
for kind in linear llama3 yarn longrope; do
    case $kind in
        linear) base=llama rs='{"rope_type": "linear", "factor": 2.0}' key='llama.rope.scaling.type .*"linear"' ;;
        llama3) base=llama key='rope_freqs.weight'
                rs='{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}' ;;
        yarn) base=llama rs='{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}'
              key='llama.rope.scaling.type .*"yarn"' ;;
        longrope) base=phi3 key='rope_factors_long.weight'
                  rs="{\"rope_type\": \"longrope\", \"long_factor\": [$lf], \"short_factor\": [$sf]}, \"original_max_position_embeddings\": 32" ;;
    esac
    d="$WORK/$kind-hf"
    cp -r "$WORK/$base-hf" "$d"
    sed -i "s/\"rope_scaling\": null/\"rope_scaling\": $rs/" "$d/config.json"
    # shellcheck disable=SC2086
    "$LOWBIT" eval "$d" --text "$TEXT" --ctx 64 $CH --save-logits "$WORK/$kind.lg" --json > "$WORK/$kind.json" 2>/dev/null \
        || fail "$kind rope_scaling: eval"
    "$LOWBIT" convert "$d" "$WORK/$kind.gguf" 2>/dev/null || fail "$kind rope_scaling: convert"
    "$LOWBIT" inspect "$WORK/$kind.gguf" | grep -q "$key" && pass "$kind: $key in the GGUF" || fail "$kind: no $key in the GGUF"
    rm -rf "$WORK/$kind-back"
    "$LOWBIT" convert "$WORK/$kind.gguf" "$WORK/$kind-back" --to hf 2>/dev/null || fail "$kind: GGUF to HF"
    for f in "$WORK/$kind.gguf" "$WORK/$kind-back"; do
        kld=$(kld_vs "$f" "$WORK/$kind.lg")
        awk -v k="$kld" 'BEGIN { exit !(k != "" && k + 0 < 1e-9) }' && pass "$kind: $(basename "$f") gives the HF directory's logits" \
            || fail "$kind: $(basename "$f") differs from the HF directory (KLD $kld)"
    done
    p0=$(json_num "$WORK/$base.json" ppl); p1=$(json_num "$WORK/$kind.json" ppl)
    [ -n "$p1" ] && [ "$p0" != "$p1" ] && pass "$kind changes the perplexity ($p0 -> $p1)" || fail "$kind: perplexity $p0 -> $p1"
    if [ $numpy = 1 ]; then
        out=$("$PY" "$SRC/tests/ref/hf_forward.py" "$d" "$WORK/$kind.lg" --tol 1e-4) && pass "$kind: NumPy reference: $(echo "$out" | tail -1)" \
            || fail "$kind: NumPy reference: $(echo "$out" | tail -1)"
    fi
done
cp -r "$WORK/llama-hf" "$WORK/dyn-hf"
sed -i 's/"rope_scaling": null/"rope_scaling": {"rope_type": "dynamic", "factor": 4.0}/' "$WORK/dyn-hf/config.json"
"$LOWBIT" eval "$WORK/dyn-hf" --text "$TEXT" --chunks 1 > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "rope_scaling 'dynamic' is not supported" "$WORK/err" && pass "dynamic refused: $(cat "$WORK/err")" \
    || fail "dynamic: $(cat "$WORK/err")"
finish

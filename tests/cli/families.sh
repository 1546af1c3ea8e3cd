# Model families through the architecture table (issue 18): for llama, qwen2 and qwen3, a
# synthetic model (GQA; Qwen3 also with a head size that is not n_embd / n_heads) written as
# GGUF, exported as an HF directory, read back: the HF directory's logits equal the GGUF's
# (KLD 0) and an independent NumPy forward of the HF layout (tests/ref/hf_forward.py, when
# Debian's python3-numpy is there); GPTQ, AWQ and imatrix quantize every family, and the
# results load and evaluate close to the original.
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
numpy=1
"$PY" -c 'import numpy' 2>/dev/null || { numpy=0; echo "# skip: the NumPy reference (no python3-numpy for $PY)"; }
CH="--chunks 3"
[ "$QUICK" = 1 ] && CH="--chunks 1"
tok="$SRC/models/stories260K/tok512.bin"
shape="--shape tiny --n-layers 2 --n-embd 128 --n-ff 256 --n-heads 4 --n-kv-heads 2 --n-vocab 512"

for fam in llama qwen2 qwen3 qwen3:64; do
    arch=${fam%%:*}
    hd=""
    [ "$fam" != "$arch" ] && hd="--head-dim ${fam#*:}"
    name=$(echo "$fam" | tr : _)
    g="$WORK/$name.gguf"
    # shellcheck disable=SC2086
    "$LOWBIT" synth --arch "$arch" $shape $hd --type f32 --vocab "$tok" -o "$g" -q 2>/dev/null || { fail "$fam: synth"; continue; }
    arch_key=$("$LOWBIT" inspect "$g" | awk '$1 == "general.architecture" { print $3 }')
    [ "$arch_key" = "\"$arch\"" ] && pass "$fam: general.architecture $arch_key" || fail "$fam: general.architecture $arch_key"
    "$LOWBIT" convert "$g" "$WORK/$name-hf" --to hf 2>/dev/null || { fail "$fam: convert --to hf"; continue; }
    # shellcheck disable=SC2086
    "$LOWBIT" eval "$g" --text "$TEXT" --ctx 64 $CH --save-logits "$WORK/$name.lg" > /dev/null 2>&1 || fail "$fam: eval GGUF"
    # shellcheck disable=SC2086
    "$LOWBIT" eval "$WORK/$name-hf" --text "$TEXT" --ctx 64 $CH --ref-logits "$WORK/$name.lg" --json > "$WORK/$name.json" 2>/dev/null \
        || fail "$fam: eval HF"
    kld=$(json_num "$WORK/$name.json" kld_mean)
    awk -v k="$kld" 'BEGIN { exit !(k != "" && k + 0 < 1e-9) }' && pass "$fam: HF directory = GGUF (KLD $kld)" \
        || fail "$fam: HF directory differs from the GGUF (KLD $kld)"
    if [ $numpy = 1 ]; then
        if out=$("$PY" "$SRC/tests/ref/hf_forward.py" "$WORK/$name-hf" "$WORK/$name.lg" --tol 1e-4); then
            pass "$fam: NumPy reference: $(echo "$out" | tail -1)"
        else
            fail "$fam: NumPy reference: $(echo "$out" | tail -1)"
        fi
    fi
    rtn=""
    for m in rtn gptq awq imatrix; do
        q="$WORK/$name-$m.gguf"
        "$LOWBIT" quantize "$g" "$q" --type q4_0 --method $m --calib "$TEXT" --calib-samples 16 --calib-ctx 64 -q \
            > /dev/null 2> "$WORK/err" || { fail "$fam $m: $(tail -1 "$WORK/err")"; continue; }
        # shellcheck disable=SC2086
        "$LOWBIT" eval "$q" --text "$TEXT" --ctx 64 $CH --ref-logits "$WORK/$name.lg" --json > "$WORK/q.json" 2>/dev/null \
            || { fail "$fam $m: eval"; continue; }
        kld=$(json_num "$WORK/q.json" kld_mean)
        [ $m = rtn ] && rtn=$kld
        # GPTQ and AWQ land below round to nearest (random weights: KLD ~0.1 at q4_0); the
        # importance search has little to weigh on random weights: within 25% of it
        awk -v k="$kld" -v r="$rtn" -v m=$m 'BEGIN { lim = m == "rtn" ? 0.5 : m == "imatrix" ? 1.25 * r : r
                                                    exit !(k != "" && k + 0 < lim + 0) }' \
            && pass "$fam $m q4_0: KLD $kld (rtn $rtn)" || fail "$fam $m q4_0: KLD $kld (rtn $rtn)"
    done
done
finish

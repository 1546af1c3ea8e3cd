# The i-quants from the command line: quantize refuses IQ1/IQ2/IQ3_XXS without an importance
# matrix in one line, and names a tensor the matrix does not cover; with llama.cpp's matrix
# the files compute exactly as llama-quantize's golden files (KLD 0 between them); the mixes
# write; GPTQ onto the lattices is below the importance-matrix search at the same bytes.
. "$(dirname "$0")/lib.inc"

have_shared golden/synth256-f32.gguf || finish
G=$SHARED/golden
IM="--imatrix $G/synth256.imatrix.gguf"

# llama.cpp's rule: no importance, no IQ2_XXS; one line, before any work
if "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/x.gguf" --type iq2_xxs 2> "$WORK/err"; then
    fail "iq2_xxs without an importance matrix was written"
else
    [ "$(wc -l < "$WORK/err")" -eq 1 ] && grep -q "needs an importance matrix" "$WORK/err" \
        && pass "iq2_xxs without importance: $(cat "$WORK/err")" || fail "error: $(cat "$WORK/err")"
fi
[ ! -e "$WORK/x.gguf" ] && pass "nothing written" || fail "a file was left"
# --pure puts iq2_xxs on token_embd, which llama.cpp's matrix does not cover (llama-quantize aborts)
if "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/x.gguf" --type iq2_xxs --pure $IM 2> "$WORK/err"; then
    fail "iq2_xxs on a tensor without an importance entry was written"
else
    grep -q "token_embd.weight: iq2_xxs needs importance" "$WORK/err" && pass "uncovered tensor named: $(tail -1 "$WORK/err")" \
        || fail "error: $(cat "$WORK/err")"
fi

# the golden files' recipe: the same computation as llama-quantize's file (KLD exactly 0);
# test_iq checks every type's bytes, this the command line's path to them
for t in IQ2_XXS IQ1_S; do
    "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/$t.gguf" --type "$t" --pure $IM \
        --output-tensor-type q8_0 --token-embedding-type q8_0 > /dev/null 2> "$WORK/err" || { fail "quantize $t: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" eval "$WORK/$t.gguf" --ref "$G/synth256-$t.gguf" --text "$TEXT" --chunks 2 --json > "$WORK/$t.eval" 2> "$WORK/err" \
        || { fail "eval $t: $(cat "$WORK/err")"; continue; }
    k=$(json_num "$WORK/$t.eval" kld_mean)
    awk -v k="$k" 'BEGIN { exit !(k == 0) }' && pass "$t --pure = llama-quantize's file (KLD $k)" || fail "$t: KLD $k against llama-quantize's file"
done
for t in IQ3_S; do
    "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/$t.gguf" --type "$t" --pure $IM > /dev/null 2> "$WORK/err" \
        || { fail "quantize $t: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" eval "$WORK/$t.gguf" --ref "$G/synth256-$t.gguf" --text "$TEXT" --chunks 2 --json > "$WORK/$t.eval" 2> /dev/null
    k=$(json_num "$WORK/$t.eval" kld_mean)
    awk -v k="$k" 'BEGIN { exit !(k == 0) }' && pass "$t --pure = llama-quantize's file (KLD $k)" || fail "$t: KLD $k against llama-quantize's file"
done

# i-quant mixes write (each mix's bytes against llama-quantize's were compared by hand: bench/README)
for t in iq1_m iq2_m iq3_xs; do
    "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/m-$t.gguf" --type "$t" $IM --json > "$WORK/m-$t.json" 2> "$WORK/err" \
        || { fail "mix $t: $(cat "$WORK/err")"; continue; }
    b=$(json_num "$WORK/m-$t.json" bpw)
    awk -v b="$b" 'BEGIN { exit !(b > 1.5 && b < 5) }' && pass "mix $t: $b bpw" || fail "mix $t: $b bpw"
done

# GPTQ onto the lattice against the importance-matrix search, same type, same calibration text
C="--calib $TEXT --calib-samples 8 --calib-ctx 64 --pure --output-tensor-type q8_0 --token-embedding-type q8_0"
for m in imatrix gptq; do
    "$LOWBIT" quantize "$G/synth256-f32.gguf" "$WORK/g-$m.gguf" --type iq2_xs --method $m $C > /dev/null 2> "$WORK/err" \
        || { fail "iq2_xs $m: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" eval "$WORK/g-$m.gguf" --ref "$G/synth256-f32.gguf" --text "$TEXT" --chunks 4 --json > "$WORK/g-$m.eval" 2> /dev/null
done
ki=$(json_num "$WORK/g-imatrix.eval" kld_mean); kg=$(json_num "$WORK/g-gptq.eval" kld_mean)
awk -v i="$ki" -v g="$kg" 'BEGIN { exit !(g > 0 && g < i) }' && pass "iq2_xs: gptq KLD $kg < imatrix $ki" \
    || fail "iq2_xs: gptq KLD $kg, imatrix $ki"
finish

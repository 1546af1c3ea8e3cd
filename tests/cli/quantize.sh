# lowbit quantize: every GGUF type and mix writes a file that loads and evaluates, and so
# does a representative subset of lowbit's own types (all 78 of them would take about a
# minute; the unit tests cover each one's codec and test_model.c loads a few whole models);
# RTN Q4_0 / Q8_0 equal llama-quantize's bytes on the same model; KL divergence against the
# f32 model falls as bits rise; --tensor-type, fallbacks, --json; logits saved and compared.
. "$(dirname "$0")/lib.inc"

CH="--chunks 6"
[ "$QUICK" = 1 ] && CH="--chunks 2"
"$LOWBIT" convert "$MODEL" "$WORK/f32.gguf" 2>/dev/null || fail "convert"

# every recipe the binary lists, but of lowbit's own types (no GGUF id) only this subset
own_subset="int8_pc int4_g128 uint4_g32 int3_g64 int2_g32 uint8_pt nf4 fp8_e4m3_pc fp8_e5m2_pt ternary"
all_types=$("$LOWBIT" quantize "$MODEL" "$WORK/x.gguf" --type nope 2>&1 | sed -n 's/.*available://p')
[ -n "$all_types" ] && pass "types: $all_types" || fail "no type list"
types=""
for t in $all_types; do
    case "$t" in
    int[0-9]*|uint[0-9]*|nf4|fp8_*|ternary) case " $own_subset " in *" $t "*) types="$types $t" ;; esac ;;
    *) types="$types $t" ;;
    esac
done
for t in $own_subset; do
    case " $all_types " in *" $t "*) ;; *) fail "own type $t is not listed" ;; esac
done
for t in $types; do
    "$LOWBIT" quantize "$MODEL" "$WORK/$t.gguf" --type "$t" --json > "$WORK/$t.json" 2> "$WORK/err" \
        || { fail "quantize $t: $(cat "$WORK/err")"; continue; }
    "$LOWBIT" eval "$WORK/$t.gguf" --ref "$WORK/f32.gguf" --text "$TEXT" $CH --json > "$WORK/$t.eval" 2> "$WORK/err" \
        || { fail "eval $t: $(cat "$WORK/err")"; continue; }
    echo "  $t: bpw $(json_num "$WORK/$t.json" bpw) kld $(json_num "$WORK/$t.eval" kld_mean) top1 $(json_num "$WORK/$t.eval" top1)"
done
kq8=$(json_num "$WORK/q8_0.eval" kld_mean); kq4=$(json_num "$WORK/q4_0.eval" kld_mean); kf16=$(json_num "$WORK/f16.eval" kld_mean)
awk -v a="$kf16" -v b="$kq8" -v c="$kq4" 'BEGIN { exit !(a < b && b < c && c < 1) }' \
    && pass "KLD falls with bits: f16 $kf16 < q8_0 $kq8 < q4_0 $kq4" || fail "KLD order: f16 $kf16, q8_0 $kq8, q4_0 $kq4"
k8=$(json_num "$WORK/int8_pc.eval" kld_mean); k4=$(json_num "$WORK/int4_g128.eval" kld_mean)
k3=$(json_num "$WORK/int3_g64.eval" kld_mean); k2=$(json_num "$WORK/int2_g32.eval" kld_mean)
awk -v a="$k8" -v b="$k4" -v c="$k3" -v d="$k2" 'BEGIN { exit !(a < b && b < c && c < d) }' \
    && pass "own types: KLD falls with bits: int8_pc $k8 < int4_g128 $k4 < int3_g64 $k3 < int2_g32 $k2" \
    || fail "own types' KLD order: int8_pc $k8, int4_g128 $k4, int3_g64 $k3, int2_g32 $k2"
"$LOWBIT" inspect "$WORK/nf4.gguf" > "$WORK/ins"
grep -q 'lowbit.tensor_type.blk.0.attn_q.weight *str *"nf4"' "$WORK/ins" \
    && grep -q "blk.0.attn_q.weight *nf4 *\[64, 64\] *2304" "$WORK/ins" \
    && pass "own types: stored as i8 rows with their type in metadata; inspect shows the type" \
    || fail "own type storage: $(grep attn_q "$WORK/ins" | head -3)"
k=$(json_num "$WORK/f32.eval" kld_mean)
[ -z "$k" ] || awk -v k="$k" 'BEGIN { exit !(k < 1e-9) }' && pass "f32 against itself: KLD ${k:-0}" || fail "f32 vs f32 KLD $k"

# the same file llama-quantize wrote (ffn_down f16: 172 columns fit no 32-block)
if have_shared golden/stories260K-Q4_0.gguf; then
    for t in Q4_0 Q8_0 Q5_0 Q4_1; do
        "$LOWBIT" quantize "$SHARED/golden/stories260K-f32.gguf" "$WORK/lc-$t.gguf" --type "$t" \
            --tensor-type ffn_down=f16 -q > /dev/null 2>&1 || fail "quantize llama.cpp's f32 to $t"
        "$LOWBIT" eval "$WORK/lc-$t.gguf" --text "$TEXT" $CH --json > "$WORK/a.json"
        "$LOWBIT" eval "$SHARED/golden/stories260K-$t.gguf" --text "$TEXT" $CH --json > "$WORK/b.json"
        a=$(json_num "$WORK/a.json" ppl); b=$(json_num "$WORK/b.json" ppl)
        [ "$a" = "$b" ] && pass "$t: PPL $a equals llama-quantize's file" || fail "$t: PPL $a vs llama-quantize's $b"
    done
fi

# fallbacks: ffn_down (172 columns) cannot be q4_0; the log says so
"$LOWBIT" quantize "$MODEL" "$WORK/fb.gguf" --type q4_0 > "$WORK/out" 2> "$WORK/log" || fail "quantize q4_0"
grep -q "ffn_down.*-> f16 .*fallback: q4_0 blocks do not divide rows of 172" "$WORK/log" && pass "ffn_down falls back to f16" || fail "no fallback line: $(grep ffn_down "$WORK/log" | head -1)"
grep -q "bits per weight" "$WORK/out" && pass "summary line" || fail "summary: $(cat "$WORK/out")"
"$LOWBIT" quantize "$MODEL" "$WORK/ov.gguf" --type q4_0 --tensor-type 'attn_(q|k)=q8_0' -q > /dev/null 2>&1 || fail "override"
"$LOWBIT" inspect "$WORK/ov.gguf" > "$WORK/ins"
grep -q "blk.3.attn_k.weight *q8_0" "$WORK/ins" && grep -q "blk.3.attn_v.weight *q4_0" "$WORK/ins" \
    && pass "--tensor-type applies to matching tensors only" || fail "--tensor-type"
grep -q "lowbit.quantize.method.*rtn" "$WORK/ins" && pass "provenance in metadata" || fail "no provenance"

# KLD from saved logits equals KLD against the model
"$LOWBIT" eval "$WORK/f32.gguf" --text "$TEXT" $CH --save-logits "$WORK/ref.logits" --json > /dev/null || fail "save logits"
"$LOWBIT" eval "$WORK/q4_0.gguf" --ref-logits "$WORK/ref.logits" --text "$TEXT" $CH --json > "$WORK/c.json" || fail "ref-logits"
a=$(json_num "$WORK/q4_0.eval" kld_mean); b=$(json_num "$WORK/c.json" kld_mean)
[ "$a" = "$b" ] && pass "--ref-logits gives the same KLD ($a)" || fail "--ref-logits KLD $b vs --ref $a"
"$LOWBIT" eval "$WORK/q4_0.gguf" --ref-logits "$WORK/ref.logits" --text "$TEXT" --ctx 64 > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "context of 128" "$WORK/err" && pass "mismatched logits file rejected" || fail "mismatched logits: $(cat "$WORK/err")"
"$LOWBIT" quantize "$MODEL" "$WORK/y.gguf" --type q4_0 --method gptq > /dev/null 2>&1
[ $? = 2 ] && [ ! -e "$WORK/y.gguf" ] && pass "gptq without --calib: usage error, no file" || fail "gptq without --calib"
finish

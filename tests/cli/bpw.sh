# quantize --target-bpw: the file is at or under the target and its types are the allocation's;
# --dry-run prints the measured table and writes nothing; without calibration text, one line.
. "$(dirname "$0")/lib.inc"

TB=$SRC/models/testbed/testbed-f16.gguf
BOOK=$SRC/data/books/alice-in-wonderland.txt
M="--calib $BOOK --calib-ctx 32 --bpw-windows 1 --bpw-types q2_k,q4_k,q6_k"

"$LOWBIT" quantize "$TB" "$WORK/x.gguf" --target-bpw 3.5 2> "$WORK/err" && fail "no --calib accepted" \
    || { grep -q "give --calib" "$WORK/err" && pass "no calibration text: $(cat "$WORK/err")" || fail "$(cat "$WORK/err")"; }
"$LOWBIT" quantize "$TB" --target-bpw 3.5 $M --dry-run > "$WORK/dry" 2> "$WORK/err" || fail "dry run: $(cat "$WORK/err")"
[ ! -e "$WORK/x.gguf" ] && grep -q "blk.0.ffn_down.weight *-> " "$WORK/dry" && grep -q "bits per weight" "$WORK/dry" \
    && pass "dry run: $(tail -1 "$WORK/dry")" || fail "dry run output: $(tail -3 "$WORK/dry")"
"$LOWBIT" quantize "$TB" --target-bpw 3.5 $M --bpw-measure proxy --dry-run --json > "$WORK/px" 2> "$WORK/err" \
    || fail "proxy: $(cat "$WORK/err")"
b=$(json_num "$WORK/px" bpw)
awk -v b="$b" 'BEGIN { exit !(b <= 3.5 && b > 3.2) }' && pass "proxy dry run: $b bpw" || fail "proxy: $b bpw"
for x in 3.5 5.5; do
    "$LOWBIT" quantize "$TB" "$WORK/b$x.gguf" --target-bpw $x $M --json > "$WORK/b$x.json" 2> "$WORK/err" \
        || { fail "target $x: $(cat "$WORK/err")"; continue; }
    b=$(json_num "$WORK/b$x.json" bpw)
    awk -v b="$b" -v x="$x" 'BEGIN { exit !(b <= x && b > x - 0.3) }' && pass "target $x: $b bpw" || fail "target $x: $b bpw"
    "$LOWBIT" eval "$WORK/b$x.gguf" --ref "$TB" --text "$TEXT" --chunks 2 --json > "$WORK/b$x.eval" 2> /dev/null \
        || fail "eval $x"
done
k35=$(json_num "$WORK/b3.5.eval" kld_mean); k55=$(json_num "$WORK/b5.5.eval" kld_mean)
awk -v a="$k35" -v b="$k55" 'BEGIN { exit !(b < a) }' && pass "KLD falls with the target: 3.5 $k35 > 5.5 $k55" \
    || fail "KLD 3.5 $k35, 5.5 $k55"
# --target-size and --allow-lowbit-types on a small synthetic model (the suite also runs under
# the sanitizers): the file itself at or under the bytes asked (the metadata counted)
SM="$WORK/small.gguf"
"$LOWBIT" synth --shape tiny --n-layers 2 --n-embd 256 --n-ff 512 --n-vocab 512 --vocab "$SRC/models/stories260K/tok512.bin" \
    --type f16 -o "$SM" -q 2>/dev/null || fail "synth"
F16=$(stat -c %s "$SM")
want=$((F16 * 3 / 10)) # about 4.8 bits per weight
"$LOWBIT" quantize "$SM" "$WORK/s.gguf" --target-size $want $M --bpw-measure proxy -q 2> "$WORK/err" || fail "target-size: $(cat "$WORK/err")"
sz=$(stat -c %s "$WORK/s.gguf" 2>/dev/null)
[ -n "$sz" ] && [ "$sz" -le "$want" ] && [ "$sz" -gt $((want * 9 / 10)) ] && pass "target-size $want: a file of $sz bytes" \
    || fail "target-size $want: $sz bytes"
"$LOWBIT" quantize "$SM" "$WORK/x.gguf" --target-size 4M --target-bpw 3 $M 2> "$WORK/err" && fail "both targets accepted" \
    || pass "both targets refused: $(head -1 "$WORK/err")"
# lowbit's own types only when asked (a file llama.cpp cannot load)
L="--calib $BOOK --calib-ctx 32 --bpw-windows 1 --bpw-types int4_g32,int3_g32,q4_k --bpw-measure proxy"
"$LOWBIT" quantize "$SM" "$WORK/x.gguf" --target-bpw 4 $L 2> "$WORK/err" && fail "int4_g32 candidate accepted" \
    || { grep -q "allow-lowbit-types" "$WORK/err" && pass "lowbit types refused: $(head -1 "$WORK/err")" || fail "$(cat "$WORK/err")"; }
"$LOWBIT" quantize "$SM" "$WORK/l.gguf" --target-bpw 4 $L --allow-lowbit-types --json > "$WORK/l.json" 2> "$WORK/err" \
    || fail "allow-lowbit-types: $(cat "$WORK/err")"
b=$(json_num "$WORK/l.json" bpw)
own=$("$LOWBIT" inspect "$WORK/l.gguf" 2>/dev/null | grep -c "lowbit.tensor_type")
awk -v b="$b" 'BEGIN { exit !(b <= 4 && b > 3.5) }' && [ "$own" -gt 0 ] && pass "allow-lowbit-types: $b bpw, $own tensors in lowbit's types" \
    || fail "allow-lowbit-types: $b bpw, $own lowbit tensors"
finish

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
finish

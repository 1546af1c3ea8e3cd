# sweep compares methods: --method rtn,gptq with --calib quantizes each type both ways into
# TYPE-METHOD.gguf, and the table, the JSON and the plot (a colour and a legend per method,
# the Pareto front) show both; GPTQ's KLD is below RTN's; fallback tensors are counted; a
# method that needs calibration text without it, or an unknown one, is a usage error before
# any work.
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "# skip: no python3"; exit 77; }
head -c 30000 "$TEXT" > "$WORK/calib.txt"
tail -c 28000 "$TEXT" > "$WORK/eval.txt"
"$LOWBIT" sweep "$MODEL" --types q4_0,q8_0 --method rtn,gptq --calib "$WORK/calib.txt" --calib-samples 16 \
    --calib-ctx 64 --text "$WORK/eval.txt" --ctx 64 -o "$WORK/sw" --json > "$WORK/s.json" 2> "$WORK/err" \
    || fail "sweep --method rtn,gptq: $(tail -2 "$WORK/err")"
for f in q4_0-rtn q4_0-gptq q8_0-rtn q8_0-gptq; do [ -s "$WORK/sw/$f.gguf" ] || fail "no $f.gguf"; done
"$PY" - "$WORK/s.json" <<'PY' && pass "--json: 4 rows; q4_0 gptq's KLD below rtn's; fallbacks counted" || fail "rows: $(cat "$WORK/s.json")"
import json, sys
rows = {(r["type"], r["method"]): r for r in json.load(open(sys.argv[1]))["rows"]}
ok = len(rows) == 4 and rows[("q4_0", "gptq")]["kld_mean"] < rows[("q4_0", "rtn")]["kld_mean"]
ok = ok and rows[("q4_0", "rtn")]["fallbacks"] > 0  # stories260K's 172-wide ffn_down rows
sys.exit(0 if ok else 1)
PY
grep -q "^| q4_0 | gptq | .* | ◆ |$" "$WORK/sw/report.md" && grep -q "^| q4_0 | rtn | " "$WORK/sw/report.md" \
    && pass "report.md: a method column, the front marked" || fail "report.md: $(grep '^| q4_0' "$WORK/sw/report.md")"
"$PY" -c "
import sys, xml.dom.minidom as x
t = [e.firstChild.data for e in x.parse(sys.argv[1]).getElementsByTagName('text')]
sys.exit(0 if 'rtn' in t and 'gptq' in t and 'q4_0 gptq' in t else 1)" "$WORK/sw/report.svg" \
    && grep -q "<polyline" "$WORK/sw/report.svg" && pass "report.svg: a legend, labels with the method, the front" \
    || fail "svg: $(grep -c '<text' "$WORK/sw/report.svg") texts"
# reference points from a CSV (llama.cpp's figures, here made up): listed, drawn, on the front
printf 'name,bpw,kld,method\nQ4_0,4.5,0.9,llama.cpp imatrix\nQ8_0,8.5,0.0001,llama.cpp\n' > "$WORK/pts.csv"
"$LOWBIT" sweep "$MODEL" --types q4_0 --text "$WORK/eval.txt" --ctx 64 -o "$WORK/swp" --ref-points "$WORK/pts.csv" \
    > /dev/null 2> "$WORK/err" || fail "--ref-points: $(tail -1 "$WORK/err")"
grep -q "^| Q8_0 | llama.cpp (given) | 8.500 | - | - | - | 0.000100 | - | - | - | ◆ |$" "$WORK/swp/report.md" \
    && grep -q "^| Q4_0 | llama.cpp imatrix (given) | 4.500 | " "$WORK/swp/report.md" && grep -q "<rect x=" "$WORK/swp/report.svg" \
    && pass "--ref-points: the given rows in the table and the plot" || fail "ref points: $(grep given "$WORK/swp/report.md")"
printf 'type,size\nq4,1\n' > "$WORK/bad.csv"
"$LOWBIT" sweep "$MODEL" --types q4_0 --text "$WORK/eval.txt" -o "$WORK/swb" --ref-points "$WORK/bad.csv" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "name, bpw and kld" "$WORK/err" && [ ! -e "$WORK/swb" ] && pass "a CSV without bpw/kld: usage error, no directory" \
    || fail "bad csv: $(cat "$WORK/err")"
"$LOWBIT" sweep "$MODEL" --types q4_0 --method gptq --text "$WORK/eval.txt" -o "$WORK/sw2" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "needs calibration text" "$WORK/err" && [ ! -e "$WORK/sw2" ] \
    && pass "gptq without --calib: a usage error, no directory" || fail "no calib: $(cat "$WORK/err")"
"$LOWBIT" sweep "$MODEL" --types q4_0 --method rtn,magic --text "$WORK/eval.txt" -o "$WORK/sw3" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "magic" "$WORK/err" && pass "an unknown method: usage error" || fail "magic: $(cat "$WORK/err")"
# --target-bpw: a curve of sizes (a type per matrix by measured sensitivity), the heat map of the
# measurements, the llama.cpp points as a curve of their own
TB="$WORK/small.gguf" # small: the suite also runs under the sanitizers
"$LOWBIT" synth --shape tiny --n-layers 2 --n-embd 256 --n-ff 512 --n-vocab 512 --vocab "$SRC/models/stories260K/tok512.bin" \
    --type f16 -o "$TB" -q 2>/dev/null || fail "synth"
printf 'name,bpw,kld,method\nQ3_K_M,4.2,0.006,llama.cpp imatrix\nQ4_K_M,4.9,0.002,llama.cpp imatrix\n' > "$WORK/pts2.csv"
"$LOWBIT" sweep "$TB" --types q4_k_m --method imatrix --calib "$SRC/data/books/alice-in-wonderland.txt" --calib-samples 4 \
    --calib-ctx 64 --text "$WORK/eval.txt" --ctx 64 --chunks 1 --target-bpw 3,4.5 --bpw-measure proxy --bpw-windows 1 \
    --ref-points "$WORK/pts2.csv" -o "$WORK/swt" > /dev/null 2> "$WORK/err" || fail "--target-bpw: $(tail -1 "$WORK/err")"
grep -q "^| 3.00 bpw | target/imatrix | [23]\.[0-9]* " "$WORK/swt/report.md" && grep -q "^| 4.50 bpw | target/imatrix | 4\.[0-9]* " "$WORK/swt/report.md" \
    && [ -e "$WORK/swt/bpw-3.00-imatrix.gguf" ] && pass "--target-bpw: 3 and 4.5 bpw rows" || fail "--target-bpw rows: $(grep bpw "$WORK/swt/report.md")"
cells=$(grep -c "<rect x=" "$WORK/swt/sensitivity.svg" 2>/dev/null)
marks=$(grep -c 'stroke="black"' "$WORK/swt/sensitivity.svg" 2>/dev/null)
[ "${cells:-0}" -gt 100 ] && [ "${marks:-0}" -gt 8 ] && grep -q "blk.0.ffn_down.weight" "$WORK/swt/sensitivity.svg" \
    && pass "sensitivity.svg: $cells cells, $marks chosen" || fail "sensitivity.svg: $cells cells, $marks marks"
[ "$(grep -c 'stroke-width="1.5" points=' "$WORK/swt/report.svg")" -ge 2 ] && pass "report.svg: the target curve and the given points' curve" \
    || fail "report.svg curves: $(grep -c polyline "$WORK/swt/report.svg")"
"$LOWBIT" sweep "$TB" --types q4_0 --text "$WORK/eval.txt" --target-bpw 3 -o "$WORK/swu" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "give --calib" "$WORK/err" && [ ! -e "$WORK/swu" ] && pass "--target-bpw without --calib: usage error" \
    || fail "--target-bpw no calib: $(cat "$WORK/err")"
finish

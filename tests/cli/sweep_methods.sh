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
"$LOWBIT" sweep "$MODEL" --types q4_0 --method gptq --text "$WORK/eval.txt" -o "$WORK/sw2" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "needs calibration text" "$WORK/err" && [ ! -e "$WORK/sw2" ] \
    && pass "gptq without --calib: a usage error, no directory" || fail "no calib: $(cat "$WORK/err")"
"$LOWBIT" sweep "$MODEL" --types q4_0 --method rtn,magic --text "$WORK/eval.txt" -o "$WORK/sw3" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "magic" "$WORK/err" && pass "an unknown method: usage error" || fail "magic: $(cat "$WORK/err")"
finish

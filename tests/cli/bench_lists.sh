# bench speaks llama-bench: comma lists for -p, -n and -t run every thread count's pp and tg
# tests, one row each, printed as a Markdown table (the default for lists), CSV (RFC 4180
# quoting), a JSON array or JSON lines; a bad list or format is a usage error.
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "# skip: no python3"; exit 77; }
"$LOWBIT" synth --shape tiny --type q4_0 -o "$WORK/m,\"x\".gguf" -q 2>/dev/null || fail "synth"
M="$WORK/m,\"x\".gguf"
"$LOWBIT" bench "$M" -p 8,16 -n 2 -t 1,2 -r 1 > "$WORK/md" 2>&1 || fail "bench lists: $(tail -2 "$WORK/md")"
[ "$(grep -c '^| .*| pp8 \|^| .*| pp16 \|^| .*| tg2 ' "$WORK/md")" = 6 ] && head -1 "$WORK/md" | grep -q "| threads | test | t/s |" \
    && pass "-p 8,16 -n 2 -t 1,2: a Markdown table of 6 tests" || fail "md: $(cat "$WORK/md")"
"$LOWBIT" bench "$M" -p 8 -n 2 -t 1,2 -r 1 -o csv > "$WORK/csv" || fail "-o csv"
"$PY" - "$WORK/csv" "$M" <<'PY' && pass "-o csv: 4 rows, the path intact" || fail "csv: $(cat "$WORK/csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sys.exit(0 if len(rows) == 4 and all(r["model"] == sys.argv[2] and float(r["tps"]) > 0 for r in rows)
         and [r["test"] for r in rows] == ["pp8", "tg2", "pp8", "tg2"] else 1)
PY
"$LOWBIT" bench "$M" -p 8 -n 0 -r 1 -o json > "$WORK/json" || fail "-o json"
"$PY" -c "import json,sys; a = json.load(open(sys.argv[1])); sys.exit(0 if len(a) == 1 and a[0]['test'] == 'pp8' and a[0]['n_gen'] == 0 else 1)" \
    "$WORK/json" && pass "-o json: an array" || fail "json: $(cat "$WORK/json")"
"$LOWBIT" bench "$M" -p 8 -n 2 -r 1 -o jsonl > "$WORK/jsonl" || fail "-o jsonl"
"$PY" -c "import json,sys; a = [json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if [x['test'] for x in a] == ['pp8', 'tg2'] else 1)" \
    "$WORK/jsonl" && pass "-o jsonl: an object a line" || fail "jsonl: $(cat "$WORK/jsonl")"
for bad in "-p 8,x" "-p 8,,16" "-o xml" "-t 1,2 --json"; do
    # shellcheck disable=SC2086
    "$LOWBIT" bench "$M" $bad -r 1 > /dev/null 2>&1
    [ $? = 2 ] || fail "bench $bad: not a usage error"
done
pass "bad lists and formats: usage errors"
finish

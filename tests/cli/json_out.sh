# --json on every command stays valid JSON whatever the paths hold (a quote, a backslash,
# '&', '<'): quantize (its summary, --dry-run, --log-json), eval, bench, sweep, calibrate,
# inspect and info print objects a JSON parser reads back with the paths intact; sweep's SVG
# parses as XML with the name escaped.
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "# skip: no python3 to parse JSON with"; exit 77; }
D="$WORK/R&D <\"q\\uote\">"
mkdir -p "$D"
cp "$MODEL" "$D/m.bin"
cp "$(dirname "$MODEL")/tok512.bin" "$D/"
check() { # FILE KEY WANT: every line parses; the first line's KEY is WANT
    "$PY" - "$@" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = [json.loads(l) for l in lines]
sys.exit(0 if objs and objs[0][sys.argv[2]] == sys.argv[3] else 1)
PY
}
"$LOWBIT" quantize "$D/m.bin" "$D/q.gguf" --type q8_0 --json --log-json "$D/log.jsonl" > "$WORK/q.json" 2>/dev/null \
    || fail "quantize into $D"
check "$WORK/q.json" out "$D/q.gguf" && pass "quantize --json: the path comes back intact" || fail "quantize --json: $(cat "$WORK/q.json")"
check "$D/log.jsonl" name token_embd && pass "--log-json: every line parses" || fail "--log-json: $(head -2 "$D/log.jsonl")"
"$LOWBIT" quantize --dry-run "$D/m.bin" q4_0 --json > "$WORK/d.json" 2>/dev/null
"$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/d.json" && pass "--dry-run --json" || fail "dry-run json"
"$LOWBIT" eval "$D/q.gguf" --text "$TEXT" --chunks 2 --ref "$D/m.bin" --json > "$WORK/e.json" 2>/dev/null || fail "eval"
check "$WORK/e.json" model "$D/q.gguf" && pass "eval --json" || fail "eval --json: $(cat "$WORK/e.json")"
"$LOWBIT" bench "$D/q.gguf" -p 8 -n 2 -r 1 --mem-bw 10 --json > "$WORK/b.json" 2>/dev/null || fail "bench"
check "$WORK/b.json" model "$D/q.gguf" && pass "bench --json" || fail "bench --json: $(cat "$WORK/b.json")"
cp "$D/m.bin" "$D/m&<1>.bin"
"$LOWBIT" sweep "$D/m&<1>.bin" --text "$TEXT" --types q8_0 --chunks 2 -o "$WORK/sw" --json > "$WORK/s.json" 2>/dev/null || fail "sweep"
check "$WORK/s.json" model "$D/m&<1>.bin" && "$PY" -c "import json,sys; r = json.load(open(sys.argv[1]))['rows']; sys.exit(0 if r[0]['type'] == 'q8_0' and r[0]['kld_mean'] > 0 else 1)" "$WORK/s.json" \
    && pass "sweep --json" || fail "sweep --json: $(cat "$WORK/s.json")"
"$LOWBIT" calibrate "$D/m.bin" --text "$TEXT" --calib-samples 4 -o "$D/i.gguf" --json > "$WORK/c.json" 2>/dev/null || fail "calibrate"
check "$WORK/c.json" out "$D/i.gguf" && pass "calibrate --json" || fail "calibrate --json: $(cat "$WORK/c.json")"
for f in "$D/i.gguf" "$D/q.gguf" "$D/m.bin"; do
    "$LOWBIT" inspect "$f" --json > "$WORK/i.json" 2>/dev/null && "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/i.json" \
        || fail "inspect --json $f: $(head -c 200 "$WORK/i.json")"
done
pass "inspect --json: an importance matrix, a GGUF model, a llama2.c checkpoint"
"$LOWBIT" info --json > "$WORK/n.json" && "$PY" -c "import json,sys; t = {x['name']: x['llama_cpp'] for x in json.load(open(sys.argv[1]))['types']}; sys.exit(0 if t['q4_K'] and not t['nf4'] and not {'x2_0', 'x2_1', 'xnf4'} & set(t) else 1)" "$WORK/n.json" \
    && pass "info --json: which types llama.cpp loads; no kernel layouts" || fail "info --json: $(head -c 300 "$WORK/n.json")"
# the other commands: convert (a GPTQ-free GGUF), tokenize, run, synth, train, qat
"$LOWBIT" convert "$D/m.bin" "$D/c.gguf" --type f16 --json > "$WORK/cv.json" 2>/dev/null || fail "convert"
check "$WORK/cv.json" output "$D/c.gguf" && pass "convert --json" || fail "convert --json: $(cat "$WORK/cv.json")"
"$LOWBIT" tokenize "$D/m.bin" -p 'Once "upon" \ a' --json > "$WORK/t.json" 2>/dev/null || fail "tokenize"
"$PY" -c "import json,sys; o = json.load(open(sys.argv[1])); sys.exit(0 if o['n_tokens'] == len(o['ids']) == len(o['pieces']) and o['model'] == sys.argv[2] else 1)" \
    "$WORK/t.json" "$D/m.bin" && pass "tokenize --json: ids and pieces" || fail "tokenize --json: $(cat "$WORK/t.json")"
"$LOWBIT" run "$D/m.bin" --temp 0 -n 12 --json > "$WORK/r.json" 2>/dev/null || fail "run"
"$PY" -c "import json,sys; o = json.load(open(sys.argv[1])); sys.exit(0 if o['text'] == open(sys.argv[2]).read().strip()[:len(o['text'])] and o['generated_tokens'] == 12 else 1)" \
    "$WORK/r.json" "$EXPECTED" && pass "run --json: the greedy text, in one object" || fail "run --json: $(cat "$WORK/r.json")"
"$LOWBIT" synth --shape tiny --n-layers 1 --n-vocab 512 -o "$D/s.gguf" -q --json > "$WORK/y.json" 2>/dev/null || fail "synth"
check "$WORK/y.json" output "$D/s.gguf" && pass "synth --json" || fail "synth --json: $(cat "$WORK/y.json")"
"$LOWBIT" train --text "$TEXT" --tokenizer "$D/tok512.bin" -o "$D/tr.gguf" --steps 2 --batch 1 --ctx 16 --n-layers 1 \
    --n-embd 16 --n-ff 32 --n-heads 2 --json > "$WORK/tr.json" 2>/dev/null || fail "train"
check "$WORK/tr.json" output "$D/tr.gguf" && pass "train --json" || fail "train --json: $(cat "$WORK/tr.json")"
"$LOWBIT" qat "$D/m.bin" "$D/qa.gguf" --type q8_0 --text "$TEXT" --steps 1 --batch 1 --ctx 16 --json > "$WORK/qa.json" 2>/dev/null || fail "qat"
check "$WORK/qa.json" output "$D/qa.gguf" && pass "qat --json" || fail "qat --json: $(cat "$WORK/qa.json")"
"$PY" -c "import sys, xml.dom.minidom as x; t = x.parse(sys.argv[1]).getElementsByTagName('text')[0].firstChild.data; sys.exit(0 if sys.argv[2] in t else 1)" \
    "$WORK/sw/report.svg" "m&<1>.bin" && pass "sweep's SVG parses, the name escaped" || fail "svg: $(grep -o 'weight: [^<]*' "$WORK/sw/report.svg")"
finish

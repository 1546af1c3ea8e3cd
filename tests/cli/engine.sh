# The block engine's run as a log sees it: without a terminal, quantize prints one line per
# block (the embedding, each layer, the head) with elapsed time, ETA, peak RSS and the block's
# output error; -q prints none; --log-json writes one JSON object per block; --json's summary
# has peak_rss and the memory budget. The bytes depend neither on the thread count nor on
# whether the calibration streams stayed in RAM or spilled to a file (--max-memory).
. "$(dirname "$0")/lib.inc"

CAL="--calib $TEXT --calib-samples 4 --calib-ctx 64"
"$LOWBIT" quantize "$MODEL" "$WORK/g.gguf" --type q4_0 --method gptq $CAL --log-json "$WORK/log.jsonl" \
    > "$WORK/out" 2> "$WORK/err" || fail "gptq: $(tail -1 "$WORK/err")"
n=$(grep -c "^quantize: block [0-9]*/7 " "$WORK/err")
[ "$n" = 7 ] && pass "one progress line per block (7: token_embd, 5 layers, output)" || fail "$n progress lines: $(head -3 "$WORK/err")"
grep -q "^quantize: block 2/7 blk.0 *gptq: [0-9.]*s (elapsed [0-9.]*s, ETA [0-9.]*s), peak RSS [0-9]* MB, output error RTN [0-9.]* -> [0-9.]*$" "$WORK/err" \
    && pass "a block's line: time, ETA, peak RSS, output error" || fail "block line: $(grep 'block 2/' "$WORK/err")"
[ "$(wc -l < "$WORK/log.jsonl")" = 7 ] && pass "--log-json: 7 objects" || fail "--log-json: $(wc -l < "$WORK/log.jsonl") lines"
grep -q '^{"block": 7, "blocks": 7, "name": "output", "method": "gptq", .*"peak_rss": [1-9][0-9]*, "err_rtn": .*}$' "$WORK/log.jsonl" \
    && pass "--log-json: the last block's object" || fail "--log-json: $(tail -1 "$WORK/log.jsonl")"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$WORK/log.jsonl" \
        && pass "--log-json: every line parses" || fail "--log-json: invalid JSON"
fi
"$LOWBIT" quantize "$MODEL" "$WORK/q.gguf" --type q4_0 --method gptq $CAL -q > /dev/null 2> "$WORK/err" || fail "gptq -q"
[ -s "$WORK/err" ] && fail "-q printed: $(head -2 "$WORK/err")" || pass "-q: nothing on stderr"
"$LOWBIT" quantize "$MODEL" "$WORK/j.gguf" --type q4_0 --method gptq $CAL --json -t 1 > "$WORK/j.json" 2> "$WORK/err" || fail "gptq --json"
[ "$(json_num "$WORK/j.json" peak_rss)" -gt 0 ] 2>/dev/null && pass "--json: peak_rss" || fail "--json: $(cat "$WORK/j.json")"
cmp -s "$WORK/g.gguf" "$WORK/j.gguf" && pass "gptq: the same bytes at -t 1 and -t 2" || fail "gptq bytes depend on threads"
for me in awq awq+gptq imatrix; do
    "$LOWBIT" quantize "$MODEL" "$WORK/a1.gguf" --type q4_k_m --method $me $CAL -t 1 -q > /dev/null 2>&1 || fail "$me -t 1"
    "$LOWBIT" quantize "$MODEL" "$WORK/a2.gguf" --type q4_k_m --method $me $CAL -t 2 -q > /dev/null 2>&1 || fail "$me -t 2"
    cmp -s "$WORK/a1.gguf" "$WORK/a2.gguf" && pass "$me: the same bytes at -t 1 and -t 2" || fail "$me: bytes depend on threads"
done
# --max-memory: past the budget the streams go to a file; the bytes stay
"$LOWBIT" quantize "$MODEL" "$WORK/s.gguf" --type q4_0 --method gptq $CAL --max-memory 1M --json > "$WORK/s.json" 2> "$WORK/err" \
    || fail "--max-memory 1M: $(tail -1 "$WORK/err")"
grep -q '"streams_spilled": true' "$WORK/s.json" && pass "--max-memory 1M: the streams spilled" || fail "not spilled: $(cat "$WORK/s.json")"
grep -q '"memory_budget": 1048576,' "$WORK/s.json" && pass "--max-memory 1M: the budget in --json" || fail "budget: $(cat "$WORK/s.json")"
cmp -s "$WORK/g.gguf" "$WORK/s.gguf" && pass "spilled streams: the same bytes" || fail "spilled streams: bytes differ"
grep -q '"streams_spilled": false' "$WORK/j.json" && pass "default budget: the streams in RAM" || fail "default: $(cat "$WORK/j.json")"
"$LOWBIT" quantize "$MODEL" "$WORK/x.gguf" --type q4_0 --max-memory 6Q > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "wants a size" "$WORK/err" && pass "--max-memory 6Q: $(cat "$WORK/err")" || fail "--max-memory 6Q: $(cat "$WORK/err")"
# --calib-matmul exact: the quantized stream in f32 (the default multiplies each block's stored
# matrices by the quantized kernels, with 8-bit activations): other bytes, as independent of -t
"$LOWBIT" quantize "$MODEL" "$WORK/e1.gguf" --type q4_0 --method gptq $CAL --calib-matmul exact -t 1 -q > /dev/null 2>&1 \
    || fail "--calib-matmul exact -t 1"
"$LOWBIT" quantize "$MODEL" "$WORK/e2.gguf" --type q4_0 --method gptq $CAL --calib-matmul exact -t 2 -q > /dev/null 2>&1 \
    || fail "--calib-matmul exact -t 2"
cmp -s "$WORK/e1.gguf" "$WORK/e2.gguf" && ! cmp -s "$WORK/e1.gguf" "$WORK/g.gguf" \
    && pass "--calib-matmul exact: the same bytes at -t 1 and -t 2, not the q8 calibration's" \
    || fail "--calib-matmul exact: threads or q8 bytes"
"$LOWBIT" quantize "$MODEL" "$WORK/x.gguf" --type q4_0 --method gptq $CAL --calib-matmul fast > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "q8 or exact" "$WORK/err" && pass "--calib-matmul fast: $(cat "$WORK/err")" || fail "--calib-matmul fast: $(cat "$WORK/err")"
"$LOWBIT" quantize "$MODEL" "$WORK/x.gguf" --type q4_0 --method gptq $CAL --log-json "$WORK" > /dev/null 2> "$WORK/err" \
    && fail "--log-json onto a directory succeeded" || pass "--log-json onto a directory: $(head -1 "$WORK/err")"
finish

# lowbit run at temperature 0 prints llama2.c's published greedy text exactly, from the
# llama2.c checkpoint, from the GGUF lowbit converts it to, and from llama.cpp's GGUF.
. "$(dirname "$0")/lib.inc"

"$LOWBIT" run "$MODEL" --temp 0 > "$WORK/bin.txt" 2> "$WORK/err" || fail "run on .bin: $(cat "$WORK/err")"
cmp -s "$WORK/bin.txt" "$EXPECTED" && pass "greedy from .bin" || { fail "greedy from .bin differs"; diff "$WORK/bin.txt" "$EXPECTED" | head -5; }

"$LOWBIT" convert "$MODEL" "$WORK/s.gguf" 2> "$WORK/err" || fail "convert: $(cat "$WORK/err")"
"$LOWBIT" run "$WORK/s.gguf" --temp 0 --steps 256 > "$WORK/gguf.txt" 2> "$WORK/err" || fail "run on gguf"
cmp -s "$WORK/gguf.txt" "$EXPECTED" && pass "greedy from converted GGUF" || fail "greedy from converted GGUF differs"

# -t 1 and -t 2 print the same text
"$LOWBIT" run "$WORK/s.gguf" --temp 0 -t 1 > "$WORK/t1.txt" 2>/dev/null
cmp -s "$WORK/t1.txt" "$EXPECTED" && pass "greedy with 1 thread" || fail "greedy with 1 thread differs"

# a prompt is echoed and continued; -n counts generated tokens
"$LOWBIT" run "$MODEL" --temp 0 -p "Once upon a time" -n 5 > "$WORK/p.txt" 2>/dev/null || fail "run with prompt"
case "$(cat "$WORK/p.txt")" in "Once upon a time"?*) pass "prompt echoed and continued" ;; *) fail "prompt: $(cat "$WORK/p.txt")" ;; esac

# seeded sampling is reproducible
"$LOWBIT" run "$MODEL" --temp 0.8 --seed 7 -n 40 > "$WORK/s1.txt" 2>/dev/null
"$LOWBIT" run "$MODEL" --temp 0.8 --seed 7 -n 40 > "$WORK/s2.txt" 2>/dev/null
cmp -s "$WORK/s1.txt" "$WORK/s2.txt" && pass "seeded sampling reproducible" || fail "seeded sampling differs"

if have_shared golden/stories260K-f32.gguf; then
    "$LOWBIT" run "$SHARED/golden/stories260K-f32.gguf" --temp 0 > "$WORK/lc.txt" 2>/dev/null
    # llama.cpp's converter set context_length 128: the text is the expected one, cut there
    head -c "$(wc -c < "$WORK/lc.txt")" "$EXPECTED" > "$WORK/exp_cut.txt"
    [ -s "$WORK/lc.txt" ] && cmp -s <(head -c -1 "$WORK/lc.txt") <(head -c -1 "$WORK/exp_cut.txt") \
        && pass "greedy from llama.cpp's GGUF (to its 128-token context)" || fail "greedy from llama.cpp's GGUF differs"
fi
finish

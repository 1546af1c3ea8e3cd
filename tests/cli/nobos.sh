# A vocabulary without BOS (Qwen2/2.5/3): a random-weight HF directory with a byte-level BPE
# tokenizer, "bos_token": null and "add_bos_token": false (tests/fixtures/make_bpe_fixture.c).
# tokenize prints no BOS; eval gives the same perplexity from the directory, from its GGUF
# (which has no bos key) and from that GGUF's HF export; run, calibrate, quantize, sweep, qat
# and train work on it; run without a prompt is a one-line error; an id out of range in
# llama.cpp's own file is a one-line warning.
. "$(dirname "$0")/lib.inc"

GEN=${LB_MAKE_BPE_FIXTURE:-}
[ -x "$GEN" ] || { echo "# skip: LB_MAKE_BPE_FIXTURE is not set (run through ctest)"; exit 77; }
HF=$WORK/nobos-hf
"$GEN" "$TEXT" "$HF" || { fail "fixture"; finish; }
CH="--ctx 128 --chunks 8"; [ "$QUICK" = 1 ] && CH="--ctx 128 --chunks 2"

a=$("$LOWBIT" tokenize "$HF" -p "Once upon a time" 2>&1); b=$("$LOWBIT" tokenize "$HF" -p "Once upon a time" --no-bos 2>&1)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$(echo "$a" | wc -w)" = 4 ] && pass "tokenize: no BOS ($a)" \
    || fail "tokenize: '$a' / --no-bos '$b'"

"$LOWBIT" eval "$HF" --text "$TEXT" $CH --json > "$WORK/hf.json" 2> "$WORK/err" || fail "eval on the directory: $(cat "$WORK/err")"
[ -s "$WORK/err" ] && fail "eval on the directory printed: $(cat "$WORK/err")"
"$LOWBIT" convert "$HF" "$WORK/m.gguf" 2> "$WORK/err" || fail "convert: $(cat "$WORK/err")"
"$LOWBIT" inspect "$WORK/m.gguf" > "$WORK/meta.txt"
! grep -q bos_token_id "$WORK/meta.txt" && grep -q 'add_bos_token *bool false' "$WORK/meta.txt" \
    && grep -q 'eos_token_id *u32' "$WORK/meta.txt" && grep -q 'tokenizer.ggml.pre *str *"qwen2"' "$WORK/meta.txt" \
    && pass "the GGUF has no bos key, add_bos_token false, an eos, pre qwen2" || fail "GGUF keys: $(grep tokenizer "$WORK/meta.txt")"
"$LOWBIT" eval "$WORK/m.gguf" --text "$TEXT" $CH --json > "$WORK/gguf.json" 2> "$WORK/err" || fail "eval of its own GGUF: $(cat "$WORK/err")"
p1=$(json_num "$WORK/hf.json" ppl); p2=$(json_num "$WORK/gguf.json" ppl)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && pass "perplexity from the directory = from its GGUF ($p1)" || fail "perplexity $p1 vs $p2"
n1=$(json_num "$WORK/hf.json" text_tokens); n2=$("$LOWBIT" tokenize "$HF" --file "$TEXT" --no-bos | wc -w)
[ "$n1" = "$n2" ] && pass "eval's text has no BOS ($n1 tokens)" || fail "eval's text: $n1 tokens, tokenize --no-bos: $n2"

# the scored chunks are the text's own tokens: saved logits of one file are the other's reference
"$LOWBIT" eval "$HF" --text "$TEXT" $CH --save-logits "$WORK/ref.logits" > /dev/null 2>&1 || fail "eval --save-logits"
"$LOWBIT" eval "$WORK/m.gguf" --text "$TEXT" $CH --ref-logits "$WORK/ref.logits" --json > "$WORK/kld.json" 2> "$WORK/err" \
    || fail "eval --ref-logits: $(cat "$WORK/err")"
[ "$(json_num "$WORK/kld.json" kld_max)" = "0.000000" ] && pass "KLD of the GGUF against the directory: 0" \
    || fail "KLD: $(json_num "$WORK/kld.json" kld_max)"

# GGUF -> HF -> GGUF: no BOS anywhere, the same perplexity
"$LOWBIT" convert "$WORK/m.gguf" "$WORK/out-hf" --to hf 2> /dev/null || fail "convert --to hf"
grep -q '"add_bos_token": false' "$WORK/out-hf/tokenizer_config.json" && ! grep -q bos "$WORK/out-hf/generation_config.json" \
    && ! grep -q '"bos_token"' "$WORK/out-hf/tokenizer_config.json" && pass "--to hf: no BOS written" \
    || fail "--to hf: $(cat "$WORK/out-hf/tokenizer_config.json" "$WORK/out-hf/generation_config.json")"
"$LOWBIT" eval "$WORK/out-hf" --text "$TEXT" $CH --json > "$WORK/back.json" 2> /dev/null || fail "eval of the HF export"
[ "$(json_num "$WORK/back.json" ppl)" = "$p1" ] && pass "perplexity after GGUF -> HF: $p1" || fail "after --to hf: $(json_num "$WORK/back.json" ppl)"

# run: the prompt as given, greedy the same from both files; no prompt: an error, as llama-cli
"$LOWBIT" run "$HF" -p "Once upon a time" -n 12 --temp 0 > "$WORK/r1.txt" 2> /dev/null || fail "run on the directory"
"$LOWBIT" run "$WORK/m.gguf" -p "Once upon a time" -n 12 --temp 0 > "$WORK/r2.txt" 2> /dev/null || fail "run on the GGUF"
case $(cat "$WORK/r1.txt") in "Once upon a time"?*) ok=1 ;; *) ok=0 ;; esac
[ "$ok" = 1 ] && cmp -s "$WORK/r1.txt" "$WORK/r2.txt" && pass "run: the prompt, then the same text from both" \
    || fail "run: '$(cat "$WORK/r1.txt")' / '$(cat "$WORK/r2.txt")'"
"$LOWBIT" run "$WORK/m.gguf" -n 4 > /dev/null 2> "$WORK/err"
[ $? -eq 1 ] && grep -q "adds no BOS" "$WORK/err" && [ "$(wc -l < "$WORK/err")" = 1 ] \
    && pass "run without a prompt: one-line error" || fail "run without a prompt: $(cat "$WORK/err")"

# calibrate -> quantize with the importance matrix -> eval; sweep; qat; train with its tokenizer
"$LOWBIT" calibrate "$HF" --text "$TEXT" --calib-ctx 128 --calib-samples 8 -o "$WORK/im.gguf" > /dev/null 2> "$WORK/err" \
    || fail "calibrate: $(cat "$WORK/err")"
"$LOWBIT" quantize "$WORK/m.gguf" "$WORK/q.gguf" --type q4_0 --method imatrix --imatrix "$WORK/im.gguf" > /dev/null 2> "$WORK/err" \
    || fail "quantize with the importance matrix: $(cat "$WORK/err")"
"$LOWBIT" eval "$WORK/q.gguf" --ref "$WORK/m.gguf" --text "$TEXT" $CH --json > "$WORK/q.json" 2> /dev/null \
    && pass "calibrate, quantize --imatrix, eval --ref (KLD $(json_num "$WORK/q.json" kld_mean))" || fail "eval of the quantized file"
"$LOWBIT" sweep "$WORK/m.gguf" --types q8_0 --text "$TEXT" --ctx 128 --chunks 2 -o "$WORK/sweep" > /dev/null 2> "$WORK/err" \
    && [ -s "$WORK/sweep/report.md" ] && pass "sweep" || fail "sweep: $(cat "$WORK/err")"
"$LOWBIT" qat "$WORK/m.gguf" "$WORK/qat.gguf" --type q8_0 --text "$TEXT" --steps 2 --batch 2 --ctx 64 \
    --eval-windows 2 > /dev/null 2> "$WORK/err" && pass "qat" || fail "qat: $(tail -1 "$WORK/err")"
"$LOWBIT" train --text "$TEXT" --tokenizer "$HF" --n-embd 64 --n-layers 1 --n-heads 4 --n-ff 128 \
    --ctx 32 --batch 2 --steps 2 -o "$WORK/t.gguf" > /dev/null 2> "$WORK/err" \
    && "$LOWBIT" inspect "$WORK/t.gguf" | grep -q 'add_bos_token *bool false' && pass "train with its tokenizer" \
    || fail "train: $(tail -1 "$WORK/err")"

# llama.cpp's converter wrote -1 as 4294967295 for PAD in its stories260K file: a warning, not a refusal
if have_shared golden/stories260K-f32.gguf; then
    "$LOWBIT" eval "$SHARED/golden/stories260K-f32.gguf" --text "$TEXT" --ctx 128 --chunks 2 > /dev/null 2> "$WORK/err" \
        && [ "$(grep -c . "$WORK/err")" = 1 ] && grep -q "warning: .*padding_token_id 4294967295" "$WORK/err" \
        && pass "an out-of-range PAD in llama.cpp's file: one warning line" || fail "llama.cpp's file: $(cat "$WORK/err")"
fi
# synth --vocab of a byte-level BPE file keeps its merges and pre-tokenizer: the same ids
"$LOWBIT" synth --shape tiny --n-layers 1 --n-embd 64 --n-ff 128 --n-heads 2 --n-kv-heads 2 \
    --n-vocab "$(sed -n 's/.*tokenizer.ggml.tokens .*str x \([0-9]*\)\].*/\1/p' "$WORK/meta.txt")" --vocab "$WORK/m.gguf" --type f32 -o "$WORK/syn.gguf" -q 2> "$WORK/err" \
    || fail "synth --vocab of the BPE GGUF: $(cat "$WORK/err")"
t1=$("$LOWBIT" tokenize "$WORK/m.gguf" --file "$TEXT" | md5sum); t2=$("$LOWBIT" tokenize "$WORK/syn.gguf" --file "$TEXT" | md5sum)
[ "$t1" = "$t2" ] && "$LOWBIT" inspect "$WORK/syn.gguf" | grep -q 'tokenizer.ggml.merges' \
    && pass "synth --vocab keeps the BPE merges: the same ids on the text" || fail "synth --vocab: other ids or no merges"
finish

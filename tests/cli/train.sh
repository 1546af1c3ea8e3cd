# Training from the command line: lowbit train writes a model that eval and run read, its loss
# falls, a run stopped by --time-limit and resumed from its checkpoint ends with the same
# weights as an uninterrupted one, --ternary writes TQ2_0; lowbit qat (qat, efficientqat,
# qaft) writes quantized files closer to the model (KL divergence) than RTN's; bad options are
# usage errors.
. "$(dirname "$0")/lib.inc"
TOK=$SRC/models/stories260K/tok512.bin
SHAPE="--n-embd 64 --n-layers 2 --n-heads 4 --n-kv-heads 2 --n-ff 128 --ctx 32 --batch 4"
STEPS=60
[ "$QUICK" = 1 ] && STEPS=20

"$LOWBIT" train --text "$TEXT" --valid "$TEXT" --tokenizer "$TOK" $SHAPE --steps $STEPS --lr 3e-3 \
    --warmup 5 --eval-windows 8 --log "$WORK/log.jsonl" --cache "$WORK/tok.cache" -t 2 \
    -o "$WORK/m.gguf" 2> "$WORK/err" || fail "train: $(tail -1 "$WORK/err")"
first=$(head -1 "$WORK/log.jsonl" | json_num /dev/stdin loss)
last=$(grep '"loss"' "$WORK/log.jsonl" | tail -1 | json_num /dev/stdin loss)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' && pass "train: loss $first -> $last" \
    || fail "train: loss $first -> $last"
grep -q valid_loss "$WORK/log.jsonl" && pass "train: validation logged" || fail "train: no validation in the log"
[ -s "$WORK/tok.cache" ] && pass "train: token cache written" || fail "train: no token cache"
"$LOWBIT" eval "$WORK/m.gguf" --text "$TEXT" --ctx 32 --chunks 4 --json > "$WORK/e.json" \
    && pass "eval reads the trained model (ppl $(json_num "$WORK/e.json" ppl))" || fail "eval of the trained model"
"$LOWBIT" run "$WORK/m.gguf" -p "Once upon a time" -n 8 --temp 0 > /dev/null 2>&1 \
    && pass "run reads the trained model" || fail "run of the trained model"

# resume: 12 steps straight, or 5 steps (--stop-at) + a resume, the same bytes
args="--text $TEXT --tokenizer $TOK $SHAPE --steps 12 --lr 3e-3 --warmup 2 --cache $WORK/tok.cache -t 2 --type f32"
"$LOWBIT" train $args -o "$WORK/a.gguf" 2> /dev/null || fail "train 12 steps"
"$LOWBIT" train $args --ckpt "$WORK/ck.gguf" --stop-at 5 -o "$WORK/b0.gguf" 2> /dev/null || fail "train, stopped"
"$LOWBIT" train $args --resume "$WORK/ck.gguf" -o "$WORK/b.gguf" 2> "$WORK/err" || fail "resume: $(tail -1 "$WORK/err")"
grep -q "resumed from" "$WORK/err" && cmp -s "$WORK/a.gguf" "$WORK/b.gguf" \
    && pass "train: resumed run = uninterrupted run (bytes)" || fail "train: the resumed run differs"
"$LOWBIT" train $args --resume "$WORK/m.gguf" -o "$WORK/c.gguf" 2> "$WORK/err"
[ $? -eq 1 ] && grep -q "not a lowbit training checkpoint" "$WORK/err" \
    && pass "train --resume of a plain model: one-line error" || fail "train --resume of a model: $(cat "$WORK/err")"

# a mixture of experts trained from scratch (Mixtral: 4 experts, 2 a token, the load-balancing
# loss), then trained on from its file (--init): eval reads both, the second closer to the text
"$LOWBIT" train --arch mixtral --experts 4 --experts-used 2 --text "$TEXT" --tokenizer "$TOK" $SHAPE --steps $STEPS \
    --lr 3e-3 --warmup 5 --cache "$WORK/tok.cache" -t 2 -o "$WORK/mx.gguf" 2> "$WORK/err" || fail "train mixtral: $(tail -1 "$WORK/err")"
"$LOWBIT" inspect "$WORK/mx.gguf" > "$WORK/ins" 2>&1
grep -q "llama.expert_count .* 4" "$WORK/ins" && grep -q "blk.1.ffn_down_exps.weight .*\[128, 64, 4\]" "$WORK/ins" \
    && pass "train --arch mixtral: 4 experts in llama.cpp's layout" || fail "train mixtral: keys or shapes"
"$LOWBIT" train --init "$WORK/mx.gguf" --text "$TEXT" --ctx 32 --batch 4 --steps 20 --lr 1e-3 --warmup 2 \
    --cache "$WORK/tok.cache" -t 2 -o "$WORK/mx2.gguf" 2> "$WORK/err" || fail "train --init: $(tail -1 "$WORK/err")"
p1=$("$LOWBIT" eval "$WORK/mx.gguf" --text "$TEXT" --ctx 32 --chunks 8 --json 2>/dev/null | json_num /dev/stdin ppl)
p2=$("$LOWBIT" eval "$WORK/mx2.gguf" --text "$TEXT" --ctx 32 --chunks 8 --json 2>/dev/null | json_num /dev/stdin ppl)
awk -v a="$p1" -v b="$p2" 'BEGIN { exit !(a != "" && b != "" && b < a) }' \
    && pass "train --init: trained on, perplexity $p1 -> $p2" || fail "train --init: perplexity $p1 -> $p2"
"$LOWBIT" train --init "$WORK/mx.gguf" --arch llama --text "$TEXT" -o "$WORK/x.gguf" > /dev/null 2> "$WORK/err"
[ $? -eq 2 ] && grep -q "its family and shape" "$WORK/err" && pass "train --init with a shape: usage error" \
    || fail "train --init --arch: $(tail -1 "$WORK/err")"

for bad in "--arch mixtral --experts 2 --experts-used 3" "--experts 4" "--arch mixtral --n-ff-exp 64"; do
    # shellcheck disable=SC2086
    "$LOWBIT" train $bad --text "$TEXT" --tokenizer "$TOK" -o "$WORK/x.gguf" > /dev/null 2> "$WORK/err"
    [ $? -eq 2 ] || fail "train $bad: not a usage error: $(tail -1 "$WORK/err")"
done
pass "train: expert counts and options that do not fit are usage errors"

# BitNet b1.58
"$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" --n-embd 256 --n-layers 1 --n-heads 4 --n-ff 256 \
    --ctx 32 --batch 2 --steps 4 --ternary --cache "$WORK/tok.cache" -o "$WORK/t.gguf" 2> /dev/null \
    && "$LOWBIT" inspect "$WORK/t.gguf" | grep -q "blk.0.ffn_down.weight *tq2_0" \
    && "$LOWBIT" eval "$WORK/t.gguf" --text "$TEXT" --ctx 32 --chunks 2 > /dev/null 2>&1 \
    && pass "train --ternary: TQ2_0 weights, eval reads them" || fail "train --ternary"

# QAT at 2 bits from the trained model: each method's KL divergence to it below RTN's
q="--text $TEXT --valid $TEXT --ctx 32 --batch 4 --eval-windows 8 --cache $WORK/tok.cache --valid-cache $WORK/tok.cache -t 2"
kld() { "$LOWBIT" eval "$1" --ref "$WORK/m.gguf" --text "$TEXT" --ctx 32 --chunks 16 --json | json_num /dev/stdin kld_mean; }
"$LOWBIT" quantize "$WORK/m.gguf" "$WORK/rtn.gguf" --type int2_g32 -q > /dev/null 2>&1 || fail "quantize int2_g32"
rtn=$(kld "$WORK/rtn.gguf")
for m in qat efficientqat; do
    "$LOWBIT" qat "$WORK/m.gguf" "$WORK/q-$m.gguf" --method $m --type int2_g32 --steps 20 --lr 2e-3 \
        --bap-windows 8 $q 2> "$WORK/err" || { fail "qat --method $m: $(tail -1 "$WORK/err")"; continue; }
    k=$(kld "$WORK/q-$m.gguf")
    awk -v a="$rtn" -v b="$k" 'BEGIN { exit !(b < a) }' && pass "qat --method $m: KLD $rtn (RTN) -> $k" \
        || fail "qat --method $m: KLD $rtn (RTN) -> $k"
done
"$LOWBIT" qat "$WORK/rtn.gguf" "$WORK/q-qaft.gguf" --method qaft --teacher "$WORK/m.gguf" --steps 20 --lr 2e-3 $q \
    2> "$WORK/err" && "$LOWBIT" inspect "$WORK/q-qaft.gguf" | grep -q "blk.0.attn_q.weight *int2_g32" \
    && pass "qat --method qaft: keeps the PTQ file's types" || fail "qat --method qaft: $(tail -1 "$WORK/err")"
"$LOWBIT" qat "$WORK/rtn.gguf" "$WORK/x.gguf" --method qaft $q > /dev/null 2>&1
[ $? -eq 2 ] && pass "qat --method qaft without a teacher: usage error" || fail "qaft without --teacher"

# bad options
for bad in "--steps 0x" "--batch 0" "--type q4_0" "--shape 3b" "--n-heads 3"; do
    "$LOWBIT" train --text "$TEXT" --tokenizer "$TOK" -o "$WORK/x.gguf" $bad > /dev/null 2>&1
    [ $? -eq 2 ] && pass "train $bad: usage error" || fail "train $bad: not a usage error"
done
"$LOWBIT" train --text "$WORK/absent.txt" --tokenizer "$TOK" -o "$WORK/x.gguf" > /dev/null 2> "$WORK/err"
[ $? -eq 1 ] && [ "$(wc -l < "$WORK/err")" -eq 1 ] && pass "train on a missing file: one-line error" \
    || fail "train on a missing file: $(cat "$WORK/err")"
"$LOWBIT" qat "$WORK/m.gguf" "$WORK/x.gguf" --text "$TEXT" --method nope > /dev/null 2>&1
[ $? -eq 2 ] && pass "qat --method nope: usage error" || fail "qat --method nope"
[ ! -e "$WORK/x.gguf" ] && pass "no output after errors" || fail "an output file was left"
finish

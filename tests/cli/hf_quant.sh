# Hugging Face GPTQ and AWQ checkpoints in and out. tests/fixtures/hf_quant_fixture.py (numpy,
# written from AutoGPTQ's, GPTQModel's and AutoAWQ's packing code, not from lowbit's) quantizes
# the testbed's HF directory into checkpoints of each layout; lowbit imports them, and every
# layer it stores is compared with the checkpoint's own dequantization scale * (q - zero):
# equal where a GGUF block holds one group, and for act-order (where it cannot) the error
# lowbit reports is the one measured here. The other way: lowbit's GPTQ q4_0 and int4_g128
# files export to checkpoints whose formula gives lowbit's weights exactly, and re-import to
# the same tensor bytes. Broken checkpoints fail with one line and no output.
. "$(dirname "$0")/lib.inc"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" -c "import numpy" 2> /dev/null || { echo "# skip: no python3 with numpy (make deps installs python3-numpy)"; exit 77; }
FIX="$PY $SRC/tests/fixtures/hf_quant_fixture.py"
BED=$SRC/models/testbed/testbed-f16.gguf
BOOK=$SRC/data/books/alice-in-wonderland.txt

"$LOWBIT" convert "$BED" "$WORK/base" --to hf --type f32 2> /dev/null || { fail "testbed to HF"; finish; }

# as_hf GGUF DIR: the GGUF's weights as an f32 HF directory (Q/K rows back in HF's order)
as_hf() { "$LOWBIT" convert "$1" "$WORK/f32.gguf" --type f32 2> /dev/null && rm -rf "$2" \
          && "$LOWBIT" convert "$WORK/f32.gguf" "$2" --to hf --type f32 2> /dev/null; }

# import NAME EXPECT_EXACT FIXTURE-OPTIONS...
import() {
    local name=$1 exact=$2
    shift 2
    $FIX make "$WORK/base" "$WORK/$name" "$@" || { fail "$name: fixture"; return; }
    "$LOWBIT" convert "$WORK/$name" "$WORK/$name.gguf" 2> "$WORK/err" || { fail "$name: convert: $(cat "$WORK/err")"; return; }
    as_hf "$WORK/$name.gguf" "$WORK/$name-hf" || { fail "$name: back to HF"; return; }
    local line; line=$(head -1 "$WORK/err")
    if [ "$exact" = exact ]; then
        out=$($FIX compare "$WORK/$name" "$WORK/$name-hf" --exact) && echo "$line" | grep -q "; 42 exact" \
            && pass "$name: 42 layers equal the checkpoint's formula (${line#*-> })" || fail "$name: $out / $line"
    else
        out=$($FIX compare "$WORK/$name" "$WORK/$name-hf" --report)
        measured=$(echo "$out" | sed -n 's/.*max-rel-err \([0-9.e-]*\).*/\1/p')
        reported=$(echo "$line" | sed -n 's/.*largest error \([0-9.e-]*\) .*/\1/p')
        awk -v a="$measured" -v b="$reported" 'BEGIN { exit !(a > 0 && b > 0 && (a - b) / a < 0.01 && (b - a) / a < 0.01) }' \
            && pass "$name: not exact; reported error $reported = measured $measured" || fail "$name: reported '$reported', measured '$measured'"
    fi
}
import gptq-sym exact --method gptq
import gptq-asym exact --method gptq --asym
[ "$QUICK" = 1 ] || import gptq-v2-row exact --method gptq --asym --v2 --group -1
[ "$QUICK" = 1 ] || import gptq-8bit exact --method gptq --bits 8
import awq exact --method awq --group 64
import gptq-act-order inexact --method gptq --desc-act
grep -q "42 q4_0, 0 q4_1" <("$LOWBIT" convert "$WORK/gptq-sym" "$WORK/x.gguf" 2>&1) && pass "sym 4-bit groups become q4_0" || fail "sym not q4_0"
grep -q "0 q4_0, 42 q4_1" <("$LOWBIT" convert "$WORK/awq" "$WORK/x.gguf" 2>&1) && pass "AWQ's groups become q4_1" || fail "awq not q4_1"

# every command takes the directory: eval on it = eval on its GGUF
"$LOWBIT" eval "$WORK/gptq-asym" --text "$TEXT" --chunks 4 --json > "$WORK/e1" 2> /dev/null || fail "eval on a GPTQ directory"
"$LOWBIT" eval "$WORK/gptq-asym.gguf" --text "$TEXT" --chunks 4 --json > "$WORK/e2" 2> /dev/null
p1=$(json_num "$WORK/e1" ppl); p2=$(json_num "$WORK/e2" ppl)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && pass "eval on the GPTQ directory = on its GGUF (ppl $p1)" || fail "ppl $p1 vs $p2"
"$LOWBIT" quantize "$WORK/gptq-asym" "$WORK/rq.gguf" --type q8_0 2> /dev/null && fail "requantizing a GPTQ import without --allow-requantize" \
    || pass "requantizing the import is refused by default"

# export: lowbit's GPTQ results as GPTQ checkpoints, re-imported to the same bytes
data_at() { "$LOWBIT" inspect "$1" | sed -n 's/.*data at \([0-9]*\).*/\1/p'; }
types="q4_0 int4_g128"; [ "$QUICK" = 1 ] && types=q4_0
for t in $types; do
    "$LOWBIT" quantize "$BED" "$WORK/$t.gguf" --type $t --method gptq --calib "$BOOK" --calib-samples 4 --calib-ctx 64 \
        --output-tensor-type f16 --token-embedding-type f16 > /dev/null 2>&1 || { fail "$t: quantize"; continue; }
    "$LOWBIT" convert "$WORK/$t.gguf" "$WORK/$t-gptq" --to hf-gptq 2> "$WORK/err" || { fail "$t: --to hf-gptq: $(cat "$WORK/err")"; continue; }
    as_hf "$WORK/$t.gguf" "$WORK/$t-hf"
    out=$($FIX compare "$WORK/$t-gptq" "$WORK/$t-hf" --exact) && pass "$t -> GPTQ checkpoint: its formula gives lowbit's weights ($out)" \
        || fail "$t export: $out"
    grep -q "\"group_size\": $([ $t = q4_0 ] && echo 32 || echo 128)" "$WORK/$t-gptq/config.json" && pass "$t: quantization_config's group" \
        || fail "$t: config.json"
    "$LOWBIT" convert "$WORK/$t-gptq" "$WORK/$t-re.gguf" 2> /dev/null || fail "$t: re-import"
    x=$WORK/$t.gguf y=$WORK/$t-re.gguf what="the same tensor bytes"
    if [ $t = int4_g128 ]; then # re-imported as q4_0 blocks: compare the values
        "$LOWBIT" convert "$x" "$WORK/x.f32" --type f32 2> /dev/null; "$LOWBIT" convert "$y" "$WORK/y.f32" --type f32 2> /dev/null
        x=$WORK/x.f32 y=$WORK/y.f32 what="q4_0 blocks of the same values"
    fi
    a=$(data_at "$x"); b=$(data_at "$y")
    [ -n "$a" ] && [ -n "$b" ] && cmp -s <(tail -c +$((a + 1)) "$x") <(tail -c +$((b + 1)) "$y") \
        && pass "$t -> GPTQ -> GGUF: $what" || fail "$t: the re-import's tensors differ"
done
"$LOWBIT" quantize "$BED" "$WORK/k.gguf" --type q4_k > /dev/null 2>&1
"$LOWBIT" convert "$WORK/k.gguf" "$WORK/k-gptq" --to hf-gptq 2> "$WORK/err" && fail "q4_K exported as GPTQ" \
    || { grep -q "q4_0, q8_0, int4_gN" "$WORK/err" && pass "q4_K refused: $(cat "$WORK/err")" || fail "q4_K: $(cat "$WORK/err")"; }
[ -e "$WORK/k-gptq" ] && fail "a refused export left a directory"

# broken checkpoints: exit 1, one line naming the file, no output
bad="qweight-shape g_idx-range bits3 method scales-dtype"; [ "$QUICK" = 1 ] && bad="qweight-shape g_idx-range"
for c in $bad; do
    rm -rf "$WORK/bad"
    $FIX make "$WORK/base" "$WORK/bad" --method gptq --corrupt $c
    "$LOWBIT" convert "$WORK/bad" "$WORK/bad.gguf" > /dev/null 2> "$WORK/err"
    rc=$?
    [ $rc = 1 ] && [ "$(wc -l < "$WORK/err")" = 1 ] && grep -q "bad/" "$WORK/err" && [ ! -e "$WORK/bad.gguf" ] \
        && pass "$c: $(cat "$WORK/err")" || fail "$c: rc $rc, $(cat "$WORK/err")"
done
finish

# SentencePiece Unigram through the CLI: `tokenize` on the .model (as MODEL and as
# --tokenizer), and on a GGUF that synth and convert carry it through ("t5"), equal spm_encode's
# ids (tests/golden/unigram); tokenizer kinds lowbit cannot run are refused in one line.
. "$(dirname "$0")/lib.inc"
G=$SRC/tests/golden/unigram

# check NAME MODEL [ARGS...]: every line of special.txt against special.NAME.ids
check() {
    local name=$1 model=$2 i=0 bad=0 line want got
    shift 2
    while IFS= read -r line; do
        i=$((i + 1))
        want=$(sed -n "${i}p" "$G/special.$name.ids")
        got=$("$LOWBIT" tokenize "$model" "$@" -p "$line" --no-bos 2>&1)
        [ "$got" = "$want" ] || { bad=1; echo "# line $i: want '$want' got '$got'"; }
    done < "$G/special.txt"
    [ $bad = 0 ] && pass "$name via $(basename "$model") $*" || fail "$name via $(basename "$model") $*"
}

for name in ugm1k ugmbf; do
    check $name "$G/$name.model"
    "$LOWBIT" synth --shape tiny --n-layers 1 --n-vocab 1024 --vocab "$G/$name.model" -o "$WORK/$name.gguf" -q \
        || fail "synth --vocab $name.model"
    "$LOWBIT" inspect "$WORK/$name.gguf" | grep -q 'tokenizer.ggml.model .*"t5"' \
        && pass "$name: tokenizer.ggml.model t5" || fail "$name: tokenizer.ggml.model"
    check $name "$WORK/$name.gguf"
    "$LOWBIT" convert "$WORK/$name.gguf" "$WORK/$name-2.gguf" > /dev/null 2>&1 || fail "convert $name"
    check $name "$WORK/$name-2.gguf"
done
check ugm1k "$WORK/ugmbf.gguf" --tokenizer "$G/ugm1k.model"

# a WORD model (TrainerSpec.model_type 3) is refused in one line
printf '\x0a\x09\x0a\x05<unk>\x18\x02\x0a\x05\x0a\x01a\x18\x01\x12\x02\x18\x03' > "$WORK/word.model"
out=$("$LOWBIT" tokenize "$WORK/word.model" -p "a" 2>&1); rc=$?
[ $rc != 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -q "WORD" \
    && pass "WORD model refused: $out" || fail "WORD model: rc $rc '$out'"
finish

# lowbit tokenize: ids as llama.cpp makes them, BOS on request, from -p or --file.
. "$(dirname "$0")/lib.inc"

out=$("$LOWBIT" tokenize "$MODEL" -p "Once upon a time" 2>&1)
[ "$out" = "1 403 407 261 378" ] && pass "tok512: $out" || fail "tok512: '$out'"
out=$("$LOWBIT" tokenize "$SRC/models/stories260K/tok512.bin" -p "Once upon a time" --no-bos)
[ "$out" = "403 407 261 378" ] && pass "--no-bos" || fail "--no-bos: '$out'"
printf 'Once upon a time' > "$WORK/t.txt"
out=$("$LOWBIT" tokenize "$MODEL" --file "$WORK/t.txt")
[ "$out" = "1 403 407 261 378" ] && pass "--file" || fail "--file: '$out'"
if have_shared gguf/ggml-vocab-llama-spm.gguf; then
    out=$("$LOWBIT" tokenize "$SHARED/gguf/ggml-vocab-llama-spm.gguf" -p " Hello World!" --no-bos)
    [ "$out" = "29871 15043 2787 29991" ] && pass "llama-spm: $out" || fail "llama-spm: '$out'"
fi
"$LOWBIT" tokenize "$MODEL" > /dev/null 2>&1; [ $? = 2 ] && pass "usage error exits 2" || fail "usage error"
finish

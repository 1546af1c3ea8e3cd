# Hugging Face directories in and out: the stories260K HF fixture (written by the independent
# generator tests/fixtures/make_hf_fixture.c) runs, evaluates and converts exactly as the
# llama2.c checkpoint does; GGUF -> HF -> GGUF keeps every tensor; bad directories fail with
# exit 1 and one line naming the file, and leave no output behind.
. "$(dirname "$0")/lib.inc"

GEN=${LB_MAKE_HF_FIXTURE:-}
[ -x "$GEN" ] || { echo "# skip: LB_MAKE_HF_FIXTURE is not set (run through ctest)"; exit 77; }
HF=$WORK/stories-hf
"$GEN" "$MODEL" "$SRC/models/stories260K/tok512.bin" "$HF" || { fail "fixture"; finish; }

"$LOWBIT" run "$HF" --temp 0 > "$WORK/hf.txt" 2> "$WORK/err" || fail "run on HF: $(cat "$WORK/err")"
cmp -s "$WORK/hf.txt" "$EXPECTED" && pass "greedy from the HF directory" || fail "greedy from HF differs"

chunks=8; [ "$QUICK" = 1 ] && chunks=2
"$LOWBIT" eval "$HF" --text "$TEXT" --ctx 128 --chunks $chunks --json > "$WORK/hf.json" 2>/dev/null || fail "eval on HF"
"$LOWBIT" eval "$MODEL" --text "$TEXT" --ctx 128 --chunks $chunks --json > "$WORK/bin.json" 2>/dev/null || fail "eval on .bin"
p1=$(json_num "$WORK/hf.json" ppl); p2=$(json_num "$WORK/bin.json" ppl)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && pass "perplexity from HF = from .bin ($p1)" || fail "perplexity $p1 vs $p2"

out=$("$LOWBIT" tokenize "$HF" -p "Once upon a time" 2>&1)
[ "$out" = "1 403 407 261 378" ] && pass "tokenize from tokenizer.json: $out" || fail "tokenize: '$out'"

# HF -> GGUF and .bin -> GGUF: the same tensor data (only general.name differs in the header)
data_at() { "$LOWBIT" inspect "$1" | sed -n 's/.*data at \([0-9]*\).*/\1/p'; }
"$LOWBIT" convert "$HF" "$WORK/hf.gguf" --type f16 2>/dev/null || fail "convert HF -> GGUF"
"$LOWBIT" convert "$MODEL" "$WORK/bin.gguf" --type f16 2>/dev/null || fail "convert .bin -> GGUF"
a=$(data_at "$WORK/hf.gguf"); b=$(data_at "$WORK/bin.gguf")
[ -n "$a" ] && cmp -s <(tail -c +$((a + 1)) "$WORK/hf.gguf") <(tail -c +$((b + 1)) "$WORK/bin.gguf") \
    && pass "HF -> GGUF tensors = .bin -> GGUF tensors" || fail "HF -> GGUF tensors differ"

# GGUF -> HF -> GGUF
"$LOWBIT" convert "$WORK/bin.gguf" "$WORK/out-hf" --to hf --type f16 2>/dev/null || fail "convert --to hf"
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -s "$WORK/out-hf/$f" ] || fail "--to hf wrote no $f"
done
"$LOWBIT" convert "$WORK/out-hf" "$WORK/round.gguf" --type f16 2>/dev/null || fail "convert HF -> GGUF again"
c=$(data_at "$WORK/round.gguf")
[ -n "$c" ] && cmp -s <(tail -c +$((c + 1)) "$WORK/round.gguf") <(tail -c +$((b + 1)) "$WORK/bin.gguf") \
    && pass "GGUF -> HF -> GGUF keeps every tensor" || fail "round trip changed tensors"
"$LOWBIT" run "$WORK/out-hf" --temp 0 -n 20 > /dev/null 2>&1 || fail "run on lowbit's HF output"

# ---- bad input: exit 1, one line naming the file, no output left ----
check() { # check NAME EXPECTED_TEXT CMD...
    local name=$1 want=$2
    shift 2
    "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$? lines
    lines=$(wc -l < "$WORK/err")
    if [ $rc = 1 ] && [ "$lines" = 1 ] && grep -q -- "$want" "$WORK/err"; then
        pass "$name: $(cat "$WORK/err")"
    else
        fail "$name: exit $rc, stderr: $(head -c 300 "$WORK/err")"
    fi
}
u64le() { local n=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"; done; }
bad_dir() { # bad_dir NAME: a copy of the fixture to spoil
    rm -rf "$WORK/$1"; cp -r "$HF" "$WORK/$1"; echo "$WORK/$1"
}
crafted() { # crafted DIR HEADER N_DATA_BYTES: DIR/model.safetensors from a header and zeros
    { u64le ${#2}; printf '%s' "$2"; head -c "$3" /dev/zero; } > "$1/model.safetensors"
}
try_all() { # try_all NAME WANT DIR: run, eval and convert all fail cleanly, convert leaves nothing
    check "run $1" "$2" "$LOWBIT" run "$3" -n 4
    check "eval $1" "$2" "$LOWBIT" eval "$3" --text "$TEXT"
    check "convert $1" "$2" "$LOWBIT" convert "$3" "$WORK/bad-out.gguf"
    check "convert --to hf $1" "$2" "$LOWBIT" convert "$3" "$WORK/bad-out-hf" --to hf
    [ ! -e "$WORK/bad-out.gguf" ] && [ ! -e "$WORK/bad-out.gguf.tmp" ] && [ ! -e "$WORK/bad-out-hf" ] \
        && [ ! -e "$WORK/bad-out-hf.tmp" ] && pass "no output after $1" || fail "partial output after $1"
}
T='"model.embed_tokens.weight":{"dtype":"F32","shape":[512,64],"data_offsets":'

d=$(bad_dir past); { u64le 99999999; printf '{}'; } > "$d/model.safetensors"
try_all "header length past the file" "model.safetensors: header length 99999999 is past the end" "$d"
d=$(bad_dir overlap); crafted "$d" "{$T[0,131072]},\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[131056,131072]}}" 131072
try_all "overlapping offsets" "model.safetensors: tensors .* overlap" "$d"
d=$(bad_dir range); crafted "$d" "{$T[0,131072]}}" 1000
try_all "offsets out of range" "model.safetensors: tensor .* past the end of the data" "$d"
d=$(bad_dir dtype); crafted "$d" "{$T[0,65536]}}" 65536
try_all "dtype disagreeing with the byte count" "model.safetensors: tensor .* need 131072 bytes" "$d"
d=$(bad_dir shard); rm "$d/model.safetensors"
printf '{"metadata":{},"weight_map":{"model.embed_tokens.weight":"model-00002-of-00002.safetensors"}}' > "$d/model.safetensors.index.json"
try_all "missing shard" "model-00002-of-00002.safetensors: cannot open" "$d"
d=$(bad_dir config); head -c 100 "$HF/config.json" > "$d/config.json"
try_all "malformed config.json" "config.json: malformed JSON at line" "$d"
d=$(bad_dir tokenizer); head -c 3000 "$HF/tokenizer.json" > "$d/tokenizer.json"
try_all "malformed tokenizer.json" "tokenizer.json: malformed JSON at line" "$d"
d=$(bad_dir noweights); rm "$d/model.safetensors"
try_all "no weights" "no model.safetensors" "$d"
# tokenizer_config.json's add_eos_token goes into the GGUF (tokenizer.ggml.add_eos_token) and back
cp -r "$HF" "$WORK/eos-hf"
if grep -q '"add_eos_token"' "$WORK/eos-hf/tokenizer_config.json"; then
    sed -i 's/"add_eos_token":[[:space:]]*false/"add_eos_token": true/' "$WORK/eos-hf/tokenizer_config.json"
else
    sed -i '0,/{/s/{/{ "add_eos_token": true,/' "$WORK/eos-hf/tokenizer_config.json"
fi
"$LOWBIT" convert "$WORK/eos-hf" "$WORK/eos.gguf" 2>/dev/null || fail "convert add_eos"
"$LOWBIT" inspect "$WORK/eos.gguf" | grep -q 'tokenizer.ggml.add_eos_token *bool *true' && pass "add_eos_token true into GGUF" \
    || fail "add_eos_token lost: $("$LOWBIT" inspect "$WORK/eos.gguf" | grep add_eos)"
"$LOWBIT" convert "$WORK/eos.gguf" "$WORK/eos-hf2" --to hf 2>/dev/null || fail "convert add_eos back"
grep -q '"add_eos_token": true' "$WORK/eos-hf2/tokenizer_config.json" && pass "add_eos_token true back into HF" \
    || fail "add_eos_token lost in HF"

mkdir -p "$WORK/full"; : > "$WORK/full/x"
check "--to hf into a non-empty directory" "not empty" "$LOWBIT" convert "$MODEL" "$WORK/full" --to hf
[ ! -e "$WORK/full.tmp" ] && pass "nothing left beside it" || fail "full.tmp left behind"
"$LOWBIT" convert "$MODEL" "$WORK/x" --to onnx > /dev/null 2>&1; [ $? = 2 ] && pass "--to onnx exits 2" || fail "--to onnx"
finish

# llama-quantize's spellings on lowbit quantize: the positional IN [OUT] TYPE [NTHREADS] forms
# (the same bytes as --type), --dry-run (every tensor's plan and the total, nothing written),
# --output-tensor-type, --token-embedding-type and --leave-output-tensor (output.weight alone,
# not attn_output), --tensor-type-file, requantizing refused unless --allow-requantize, the
# options not implemented named as such, and the warning for a type llama.cpp cannot load.
. "$(dirname "$0")/lib.inc"

TB=$SRC/models/testbed/testbed-f16.gguf # an untied output, rows every type fits
cp "$TB" "$WORK/tb.gguf"
types_of() { "$LOWBIT" inspect "$1" | awk '$1 ~ /weight$/ { print $1, $2 }'; }
type_of() { types_of "$1" | awk -v n="$2" '$1 == n { print $2 }'; }

"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/a.gguf" --type q4_0 -q > /dev/null 2>&1 || fail "--type q4_0"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/b.gguf" q4_0 2 > /dev/null 2>&1 || fail "IN OUT TYPE NTHREADS"
cmp -s "$WORK/a.gguf" "$WORK/b.gguf" && pass "IN OUT TYPE NTHREADS: the bytes of --type" || fail "positional form differs"
"$LOWBIT" quantize "$WORK/tb.gguf" Q4_0 > /dev/null 2>&1 || fail "IN TYPE"
cmp -s "$WORK/a.gguf" "$WORK/ggml-model-Q4_0.gguf" && pass "IN TYPE: ggml-model-Q4_0.gguf beside IN" \
    || fail "IN TYPE: $(ls "$WORK")"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/c.gguf" > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q -- "--type is required" "$WORK/err" && pass "IN OUT without a type: usage error" \
    || fail "no type: $(cat "$WORK/err")"

"$LOWBIT" quantize --dry-run "$WORK/tb.gguf" q4_k_m > "$WORK/dry" 2>&1 || fail "--dry-run IN TYPE: $(tail -1 "$WORK/dry")"
grep -q "^blk.2.attn_v.weight .* f16 *-> q6_K .*MiB -> .*MiB" "$WORK/dry" \
    && grep -q "^dry run: 57 tensors, [0-9.]* MiB -> [0-9.]* MiB ([0-9.]* bits per weight); nothing written" "$WORK/dry" \
    && [ ! -e "$WORK/ggml-model-Q4_K_M.gguf" ] && pass "--dry-run: the plan, the total, no file" \
    || fail "--dry-run: $(head -3 "$WORK/dry"; tail -1 "$WORK/dry")"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/q.gguf" --type q4_k_m -q > /dev/null 2>&1
want=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "->") { print $1, $(i + 1); break } }' "$WORK/dry" | grep weight | sort)
have=$(types_of "$WORK/q.gguf" | sort)
[ "$want" = "$have" ] && pass "--dry-run's types are the run's" || fail "--dry-run types differ: $(diff <(echo "$want") <(echo "$have") | head -4)"
"$LOWBIT" quantize --dry-run "$WORK/tb.gguf" --type q4_0 --json > "$WORK/dry.json" || fail "--dry-run --json"
[ "$(json_num "$WORK/dry.json" tensors)" = 57 ] && pass "--dry-run --json" || fail "dry json: $(cat "$WORK/dry.json")"

"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/o.gguf" q4_0 --output-tensor-type q8_0 --token-embedding-type Q5_0 > /dev/null 2>&1 \
    || fail "--output-tensor-type"
[ "$(type_of "$WORK/o.gguf" output.weight)" = q8_0 ] && [ "$(type_of "$WORK/o.gguf" token_embd.weight)" = q5_0 ] \
    && [ "$(type_of "$WORK/o.gguf" blk.0.attn_output.weight)" = q4_0 ] \
    && pass "--output-tensor-type q8_0, --token-embedding-type Q5_0: those two only" \
    || fail "output/embd types: $(types_of "$WORK/o.gguf" | grep -E 'output|embd' | tr '\n' ' ')"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/l.gguf" q4_0 --leave-output-tensor > /dev/null 2>&1 || fail "--leave-output-tensor"
[ "$(type_of "$WORK/l.gguf" output.weight)" = f16 ] && [ "$(type_of "$WORK/l.gguf" blk.0.attn_output.weight)" = q4_0 ] \
    && pass "--leave-output-tensor: output.weight stays f16" || fail "--leave-output-tensor: $(type_of "$WORK/l.gguf" output.weight)"
printf 'attn_v=q8_0\nffn_down=q5_1 \n' > "$WORK/tt.txt"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/t.gguf" q4_0 --tensor-type-file "$WORK/tt.txt" > /dev/null 2>&1 || fail "--tensor-type-file"
[ "$(type_of "$WORK/t.gguf" blk.3.attn_v.weight)" = q8_0 ] && [ "$(type_of "$WORK/t.gguf" blk.3.ffn_down.weight)" = q5_1 ] \
    && [ "$(type_of "$WORK/t.gguf" blk.3.attn_q.weight)" = q4_0 ] && pass "--tensor-type-file" || fail "--tensor-type-file types"

"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/r.gguf" q8_0 > /dev/null 2> "$WORK/err"
[ $? = 1 ] && grep -q "requantizing from q4_0 is disabled" "$WORK/err" && [ ! -e "$WORK/r.gguf" ] \
    && pass "requantizing refused by default" || fail "requantize: $(cat "$WORK/err")"
"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/r.gguf" q8_0 --allow-requantize > /dev/null 2>&1 \
    && [ "$(type_of "$WORK/r.gguf" blk.0.attn_q.weight)" = q8_0 ] && pass "--allow-requantize" || fail "--allow-requantize"
"$LOWBIT" quantize "$WORK/a.gguf" "$WORK/s.gguf" q4_0 > /dev/null 2>&1 && pass "q4_0 to q4_0: nothing requantized, allowed" \
    || fail "same-type run refused"

# --include-weights / --exclude-weights: the importance matrix's entries for some tensors only
"$LOWBIT" calibrate "$WORK/tb.gguf" --text "$TEXT" --calib-samples 8 -o "$WORK/im.gguf" > /dev/null 2>&1 || fail "calibrate"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
tensors() { # FILE: "name sha1" for every tensor's bytes
    "$PY" - "$1" <<'PYEOF'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
o = 8
nt, nk = struct.unpack_from("<QQ", b, o); o += 16
def s():
    global o
    n, = struct.unpack_from("<Q", b, o); o += 8; v = b[o:o + n]; o += n; return v
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
align = 32
def val(t):
    global o
    if t == 8: return s()
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, o); o += 12
        return [val(et) for _ in range(n)]
    v = b[o:o + size[t]]; o += size[t]; return v
for _ in range(nk):
    k = s(); t, = struct.unpack_from("<I", b, o); o += 4; v = val(t)
    if k == b"general.alignment": align = struct.unpack("<I", v)[0]
info = []
for _ in range(nt):
    name = s().decode(); nd, = struct.unpack_from("<I", b, o); o += 4 + 8 * nd
    t, off = struct.unpack_from("<IQ", b, o); o += 12
    info.append((name, off))
base = (o + align - 1) // align * align
info.sort(key=lambda x: x[1])
for i, (name, off) in enumerate(info):
    end = info[i + 1][1] if i + 1 < len(info) else len(b) - base
    print(name, hashlib.sha1(b[base + off:base + end]).hexdigest())
PYEOF
}
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/w0.gguf" q4_k_m > /dev/null 2>&1
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/w1.gguf" q4_k_m --imatrix "$WORK/im.gguf" > /dev/null 2>&1
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/wi.gguf" q4_k_m --imatrix "$WORK/im.gguf" --include-weights attn_v > /dev/null 2>&1 \
    || fail "--include-weights"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/we.gguf" q4_k_m --imatrix "$WORK/im.gguf" --exclude-weights attn_v > /dev/null 2>&1 \
    || fail "--exclude-weights"
for f in w0 w1 wi we; do tensors "$WORK/$f.gguf" > "$WORK/$f.h"; done
same() { diff <(grep "$1" "$WORK/$2.h") <(grep "$1" "$WORK/$3.h") > /dev/null; }
same attn_v wi w1 && same attn_q wi w0 && same ffn_down wi w0 && same attn_v we w0 && same attn_q we w1 \
    && ! same attn_q w0 w1 && pass "--include-weights attn_v: the importance for attn_v only; --exclude-weights: all but" \
    || fail "include/exclude: $(diff "$WORK/wi.h" "$WORK/w1.h" | head -4)"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/u.gguf" q4_0 --include-weights a --exclude-weights b --imatrix "$WORK/im.gguf" > /dev/null 2>&1
[ $? = 2 ] && pass "--include-weights with --exclude-weights: usage error" || fail "both"

# --override-kv: metadata that wins over the model's own keys and lowbit's
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/kv.gguf" q4_0 --override-kv general.name=str:Hello \
    --override-kv llama.context_length=int:128 --override-kv my.flag=bool:true --override-kv my.scale=float:1.5 \
    > /dev/null 2>&1 || fail "--override-kv"
"$LOWBIT" inspect "$WORK/kv.gguf" > "$WORK/kv.txt"
grep -q 'general.name  *str  "Hello"' "$WORK/kv.txt" && grep -q "llama.context_length  *i32  128" "$WORK/kv.txt" \
    && grep -q "my.flag  *bool  *true" "$WORK/kv.txt" && grep -q "my.scale  *f32  *1.5" "$WORK/kv.txt" \
    && [ "$(grep -c '^  general.name ' "$WORK/kv.txt")" = 1 ] \
    && "$LOWBIT" eval "$WORK/kv.gguf" --text "$TEXT" --chunks 1 > /dev/null 2>&1 \
    && pass "--override-kv: str, int, bool, float; each key once; the file loads" \
    || fail "--override-kv: $(grep -E 'general.name|context_length|my\.' "$WORK/kv.txt")"
for bad in "general.name=string:x" "noequals" "a=int:99999999999" "a=bool:yes"; do
    "$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/u.gguf" q4_0 --override-kv "$bad" > /dev/null 2>&1
    [ $? = 2 ] && [ ! -e "$WORK/u.gguf" ] || fail "--override-kv $bad: not a usage error"
done
pass "malformed --override-kv: usage errors"

"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/u.gguf" q4_0 --prune-layers 1 > /dev/null 2> "$WORK/err"
[ $? = 2 ] && grep -q "not implemented in lowbit yet" "$WORK/err" && pass "--prune-layers: a usage error that says so" \
    || fail "--prune-layers: $(cat "$WORK/err")"

# split output, as gguf-split and llama-quantize --keep-split write it
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/sp.gguf" q4_0 --split-max-tensors 20 > /dev/null 2> "$WORK/err" || fail "split: $(cat "$WORK/err")"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/one.gguf" q4_0 > /dev/null 2>&1
S1=$WORK/sp-00001-of-00003.gguf
grep -q "3 shards" "$WORK/err" && [ -e "$S1" ] && [ -e "$WORK/sp-00003-of-00003.gguf" ] && [ ! -e "$WORK/sp.gguf" ] \
    && pass "--split-max-tensors 20: 57 tensors in 3 shards named as gguf-split's" || fail "shards: $(ls "$WORK" | grep sp)"
keys=$("$LOWBIT" inspect "$WORK/sp-00002-of-00003.gguf" | grep -c -E "split\.(no +u16  1|count +u16  3|tensors.count +i32  57)")
n2=$("$LOWBIT" inspect "$WORK/sp-00002-of-00003.gguf" | grep -m1 -o "[0-9]* metadata pairs, [0-9]* tensors")
[ "$keys" = 3 ] && [ "$n2" = "3 metadata pairs, 20 tensors" ] && pass "shard 2: split.no 1, split.count 3, split.tensors.count 57, 20 tensors" \
    || fail "shard 2 keys: $keys, $n2"
"$LOWBIT" eval "$S1" --text "$TEXT" --chunks 2 --json > "$WORK/e1" 2> /dev/null
"$LOWBIT" eval "$WORK/one.gguf" --text "$TEXT" --chunks 2 --json > "$WORK/e2" 2> /dev/null
p1=$(json_num "$WORK/e1" ppl); p2=$(json_num "$WORK/e2" ppl)
[ -n "$p1" ] && [ "$p1" = "$p2" ] && pass "the split model evaluates as the single file (ppl $p1)" || fail "split ppl $p1 vs $p2"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/sz.gguf" q8_0 --split-max-size 5M > /dev/null 2>&1
big=0
for f in "$WORK"/sz-0000?-of-00002.gguf; do
    d=$(( $(stat -c %s "$f") - $("$LOWBIT" inspect "$f" | sed -n 's/.*data at \([0-9]*\).*/\1/p') ))
    [ $d -le 5000000 ] || big=1
done
[ -e "$WORK/sz-00002-of-00002.gguf" ] && [ $big = 0 ] && pass "--split-max-size 5M: 2 shards of at most 5e6 data bytes" || fail "--split-max-size"
"$LOWBIT" quantize "$S1" "$WORK/ks.gguf" q8_0 --keep-split --allow-requantize > /dev/null 2>&1
names() { "$LOWBIT" inspect "$1" | awk '/^  tensor /{ t = 1; next } t && NF { print $1 }'; }
same=1
for k in 1 2 3; do
    cmp -s <(names "$WORK/sp-0000$k-of-00003.gguf") <(names "$WORK/ks-0000$k-of-00003.gguf") || same=0
done
[ $same = 1 ] && pass "--keep-split: each tensor in the shard the input had it in" || fail "--keep-split layout"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/gs.gguf" q4_0 --method gptq --calib "$TEXT" --calib-samples 2 --calib-ctx 32 \
    --split-max-tensors 30 > /dev/null 2>&1 && [ -e "$WORK/gs-00002-of-00002.gguf" ] && [ ! -e "$WORK/.gs.gguf.lowbit-state" ] \
    && pass "a calibrated run (gptq) writes shards too" || fail "gptq split"
for bad in 0 5X -1; do
    "$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/u.gguf" q4_0 --split-max-size "$bad" > /dev/null 2>&1
    [ $? = 2 ] || fail "--split-max-size $bad: not a usage error"
done
pass "bad --split-max-size: usage errors"
"$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/n.gguf" --type nf4 > /dev/null 2> "$WORK/err" || fail "nf4"
grep -q "warning: .*n.gguf holds nf4, a lowbit type: llama.cpp and Ollama cannot load it" "$WORK/err" \
    && ! grep -q "lowbit type" <("$LOWBIT" quantize "$WORK/tb.gguf" "$WORK/a2.gguf" --type q4_0 2>&1) \
    && pass "a lowbit-only type: one warning line" || fail "warning: $(grep -i warn "$WORK/err")"
finish

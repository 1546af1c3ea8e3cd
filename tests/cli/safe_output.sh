# Outputs are never anything but a complete file of ours, and inputs never hang or crash us
# (issue 20): special files at OUT are refused, the temp name is unique and never followed,
# a signal leaves no temp behind (a SIGKILLed run's temp is removed by the next run), FIFO
# inputs fail at once, NaN/Inf weights are refused by name, the output path is checked
# before any work, an input truncated while mapped is a one-line error, a failed sweep
# leaves no directory.
. "$(dirname "$0")/lib.inc"
set -m # background jobs keep SIGINT (a non-interactive shell would ignore it in them)

LOWBIT=$(readlink -f "$LOWBIT")
TEXT=$(readlink -f "$TEXT")
"$LOWBIT" convert "$MODEL" "$WORK/f32.gguf" 2>/dev/null || fail "convert"
cd "$WORK" || exit 1

# expect_err NAME RC TEXT CMD...: exit code RC and one stderr line holding TEXT
expect_err() {
    local name=$1 want_rc=$2 want=$3
    shift 3
    "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    if [ "$rc" = "$want_rc" ] && [ "$(wc -l < "$WORK/err")" = 1 ] && grep -q -- "$want" "$WORK/err"; then
        pass "$name: $(cat "$WORK/err")"
    else
        fail "$name: exit $rc, stderr: $(head -c 300 "$WORK/err")"
    fi
}
temps() { ls -A "$WORK" | grep -c '\.lowbit-'; }

# 1. a FIFO or a device node at OUT is refused, and stays what it was
mkfifo "$WORK/fifo-out"
expect_err "quantize to a FIFO" 1 "not a regular file" "$LOWBIT" quantize f32.gguf fifo-out --type q4_0
expect_err "eval --save-logits to a FIFO" 1 "not a regular file" "$LOWBIT" eval f32.gguf --text "$TEXT" --save-logits fifo-out
expect_err "calibrate -o to a FIFO" 1 "not a regular file" "$LOWBIT" calibrate f32.gguf --text "$TEXT" -o fifo-out
[ -p fifo-out ] && pass "the FIFO is still a FIFO" || fail "the FIFO was replaced"
if [ "$(id -u)" = 0 ] && mknod "$WORK/null" c 1 3 2>/dev/null; then
    expect_err "quantize to a device node" 1 "not a regular file" "$LOWBIT" quantize f32.gguf null --type q4_0
    [ -c null ] && pass "the device node is still one" || fail "the device node was replaced"
else
    echo "# skip: device node at OUT (needs root and mknod)"
fi

# 2. the old predictable temp name: a symlink there is never followed, a user's file there
#    is left alone; the output is a regular file with the umask's mode
echo victim > victim
ln -s victim q.gguf.tmp
(umask 027 && "$LOWBIT" quantize f32.gguf q.gguf --type q4_0 -q) 2>/dev/null || fail "quantize beside a symlink"
[ "$(cat victim)" = victim ] && pass "symlink at OUT.tmp not followed" || fail "victim overwritten"
[ -f q.gguf ] && [ ! -L q.gguf ] && pass "OUT is a regular file" || fail "OUT is not a regular file"
[ "$(stat -c %a q.gguf)" = 640 ] && pass "mode 640 under umask 027" || fail "mode $(stat -c %a q.gguf) under umask 027"
rm q.gguf.tmp
echo mine > keep.gguf.tmp
"$LOWBIT" quantize f32.gguf keep.gguf --type q8_0 -q 2>/dev/null || fail "quantize keep.gguf"
[ "$(cat keep.gguf.tmp)" = mine ] && pass "a user's OUT.tmp is left alone" || fail "OUT.tmp destroyed"
[ "$(temps)" = 0 ] && pass "no temp left after success" || fail "temps left: $(ls -A | grep lowbit-)"

# 3. FIFO inputs fail within a second (three under the sanitizers), exit 1
limit=1000
[ "$QUICK" = 1 ] && limit=3000
for cmd in "inspect fifo-in" "eval fifo-in --text $TEXT" "quantize fifo-in x.gguf --type q4_0" \
           "eval f32.gguf --text fifo-in" "tokenize f32.gguf --file fifo-in" \
           "quantize f32.gguf x.gguf --type q4_0 --method gptq --calib fifo-in"; do
    rm -f fifo-in && mkfifo fifo-in
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    timeout 10 "$LOWBIT" $cmd > /dev/null 2> err
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $rc = 1 ] && [ $ms -lt $limit ] && grep -q "fifo-in: not a regular file" err; then
        pass "$cmd: exit 1 in $ms ms"
    else
        fail "$cmd: exit $rc in $ms ms: $(cat err)"
    fi
done

# 4. NaN, Inf and values past f16 in a weight are refused by the tensor's name
# patch_f32 FILE TENSOR INDEX HEX: 4 bytes (little-endian hex) at element INDEX of an f32 tensor
patch_f32() {
    local start off
    read -r start off < <("$LOWBIT" inspect "$1" | awk -v want="$2" '
        BEGIN { n = 0 }
        NR == 1 { data = $NF }
        NF >= 4 && $NF ~ /^[0-9]+$/ && $1 ~ /\.weight$/ { name[n] = $1; b[n] = $NF; n++ }
        END { o = 0; for (i = 0; i < n; i++) { if (name[i] == want) { print data, o; exit }
                                               o += int((b[i] + 31) / 32) * 32 } }')
    printf "$(echo "$4" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek=$((start + off + 4 * $3)) conv=notrunc status=none
}
tensors=$("$LOWBIT" inspect f32.gguf | awk '$1 ~ /\.weight$/ { print $1 }')
[ "$QUICK" = 1 ] && tensors="token_embd.weight blk.0.attn_q.weight blk.2.ffn_down.weight output_norm.weight"
i=0
for t in $tensors; do
    i=$((i + 1))
    for v in 0000c07f:NaN 0000807f:+Inf 000080ff:-Inf; do
        cp f32.gguf bad.gguf
        patch_f32 bad.gguf "$t" 7 "${v%%:*}"
        "$LOWBIT" quantize bad.gguf badq.gguf --type q4_0 > /dev/null 2> err
        if [ $? = 1 ] && grep -q "tensor '$t' holds ${v#*:} at row 0, column 7" err; then :; else
            fail "${v#*:} in $t: $(cat err)"
        fi
    done
done
pass "NaN, +Inf and -Inf in each of $i tensors refused by name"
cp f32.gguf bad.gguf
patch_f32 bad.gguf blk.1.ffn_up.weight 3 cabd4d72 # 4.07e30
expect_err "1e30 refused for q8_0" 1 "blk.1.ffn_up.weight' holds 4.07513e+30" "$LOWBIT" quantize bad.gguf badq.gguf --type q8_0
"$LOWBIT" quantize bad.gguf badq.gguf --type f32 -q 2>/dev/null && pass "1e30 kept in f32" || fail "1e30 refused for f32"
"$LOWBIT" quantize bad.gguf badq.gguf --type q8_0 --allow-nonfinite -q 2>/dev/null && pass "--allow-nonfinite goes on" \
    || fail "--allow-nonfinite"
expect_err "convert of 1e30 to f16" 1 "blk.1.ffn_up.weight' holds 4.07513e+30 at row 0, column 3, past the f16 range" \
    "$LOWBIT" convert bad.gguf badq.gguf --type f16
"$LOWBIT" convert bad.gguf badq.gguf --type bf16 2>/dev/null && pass "1e30 converted to bf16" || fail "1e30 to bf16"
rm -f bad.gguf badq.gguf

# 5. the output path is checked before any work: a GPTQ run to a missing directory fails at once
t0=$(date +%s%N)
expect_err "gptq to a missing directory" 1 "no/dir/out.gguf: cannot create" \
    "$LOWBIT" quantize f32.gguf no/dir/out.gguf --type q4_0 --method gptq --calib "$TEXT"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt $limit ] && pass "refused in $ms ms" || fail "refused only after $ms ms"
expect_err "sweep into a file" 1 "exists and is not a directory" "$LOWBIT" sweep f32.gguf --text "$TEXT" -o victim --types q8_0

# 6. a signal at a random moment of a long quantize, or while its output is being written,
#    leaves no temp; a SIGKILLed run's temp is removed by the next run of the same output
"$LOWBIT" synth --shape tiny --n-embd 512 --n-ff 1536 --n-layers 4 --type f32 -o big.gguf -q 2>/dev/null || fail "synth"
t0=$(date +%s%N)
"$LOWBIT" quantize big.gguf sig.gguf --type f16 -q 2>/dev/null || fail "quantize big.gguf"
run_ms=$((($(date +%s%N) - t0) / 1000000))
rm -f sig.gguf
for sig in TERM INT HUP KILL; do
    # at a random moment
    "$LOWBIT" quantize big.gguf sig.gguf --type f16 -q 2>/dev/null &
    pid=$!
    sleep "$(awk -v r=$RANDOM -v ms=$run_ms 'BEGIN { printf "%.3f", r / 32768 * ms / 1000 }')"
    kill -s $sig $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $sig = KILL ] || [ "$(temps)" = 0 ] || fail "SIG$sig at a random moment left $(ls -A | grep lowbit-)"
    # while writing: the temp is there when the signal comes
    "$LOWBIT" quantize big.gguf sig.gguf --type f16 -q 2>/dev/null &
    pid=$!
    seen=0
    while kill -0 $pid 2>/dev/null; do
        compgen -G '.sig.gguf.lowbit-*' > /dev/null && { kill -s $sig $pid; seen=1; break; }
    done
    wait $pid 2>/dev/null
    [ "$seen" = 1 ] || echo "# SIG$sig: the run ended before its temp was seen"
    if [ $sig = KILL ]; then
        [ "$(temps)" -le 2 ] || fail "SIGKILL left $(temps) temps"
        "$LOWBIT" quantize f32.gguf sig.gguf --type q8_0 -q 2>/dev/null || fail "the run after SIGKILL"
        [ "$(temps)" = 0 ] && pass "SIGKILL's temp (seen: $seen) removed by the next run of the same output" \
            || fail "SIGKILL's temp still there after the next run: $(ls -A | grep lowbit-)"
    else
        [ "$(temps)" = 0 ] && pass "SIG$sig at random and while writing (seen: $seen) leaves no temp" \
            || fail "SIG$sig while writing left $(ls -A | grep lowbit-)"
    fi
    rm -f sig.gguf
done

# 7. an input truncated while mapped: one line naming it, exit 1 (not a bare SIGBUS)
cp big.gguf shrink.gguf
"$LOWBIT" eval shrink.gguf --text "$TEXT" --ctx 64 > /dev/null 2> err &
pid=$!
for _ in $(seq 400); do grep -q shrink.gguf "/proc/$pid/maps" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
truncate -s 100000 shrink.gguf
wait $pid
rc=$?
if [ $rc = 1 ] && grep -q "shrink.gguf: changed while being read" err && [ "$(wc -l < err)" = 1 ]; then
    pass "input shrunk while mapped: $(cat err)"
elif [ $rc = 0 ]; then
    echo "# skip: eval finished before the truncation"
else
    fail "input shrunk while mapped: exit $rc, $(cat err)"
fi

# 8. a sweep that fails leaves no directory it made
expect_err "sweep with a missing text" 1 "no-such-text" "$LOWBIT" sweep f32.gguf --text no-such-text -o newdir --types q8_0
[ ! -e newdir ] && pass "no directory left by the failed sweep" || fail "sweep left newdir: $(ls newdir)"

# 9. a full disk (a 300 KiB tmpfs, when we may mount one): an error, no temp, no partial file,
#    no directory from a sweep
mkdir full
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=300k tmpfs full 2>/dev/null; then
    expect_err "quantize onto a full disk" 1 "full/q.gguf: write failed: No space left on device" \
        "$LOWBIT" quantize f32.gguf full/q.gguf --type f32 -q
    expect_err "sweep onto a full disk" 1 "No space left on device" "$LOWBIT" sweep f32.gguf --text "$TEXT" -o full/sw --types q8_0
    [ -z "$(ls -A full)" ] && pass "nothing left on the full disk" || fail "left on the full disk: $(ls -A full)"
    umount full
else
    echo "# skip: full disk (needs root and a tmpfs mount)"
fi
finish

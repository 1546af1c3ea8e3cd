# lowbit quantize --method gptq on the testbed inside a memory cgroup smaller than the
# whole-model code needed: the block engine holds one block, not the model, in f32. Measured on
# the testbed (13.7 MB f16), 16 windows of 256 tokens: the whole-model code was killed under a
# 120 MiB limit (146 MB anonymous peak); the block engine peaks near 80 MiB. Needs root and a
# memory controller (cgroup v1 memory.limit_in_bytes or v2 memory.max); skips otherwise, and
# under the sanitizers (their shadow memory is not the program's).
. "$(dirname "$0")/lib.inc"

LIMIT_MB=${LB_MEMLIMIT_MB:-100}
[ "$QUICK" = 1 ] && { echo "# skip: memory limits are not measured under the sanitizers"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "# skip: creating a memory cgroup needs root"; exit 77; }

CG=""
if [ -w /sys/fs/cgroup/memory ] && [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CG=/sys/fs/cgroup/memory/lowbit-test-$$
    mkdir "$CG" && echo $((LIMIT_MB << 20)) > "$CG/memory.limit_in_bytes" || CG=""
    USAGE=memory.max_usage_in_bytes
else
    for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        grep -qw memory "$root/cgroup.controllers" 2>/dev/null || continue
        echo +memory > "$root/cgroup.subtree_control" 2>/dev/null
        CG=$root/lowbit-test-$$
        mkdir "$CG" 2>/dev/null && echo $((LIMIT_MB << 20)) > "$CG/memory.max" && echo 0 > "$CG/memory.swap.max" 2>/dev/null
        [ -e "$CG/memory.max" ] || { rmdir "$CG" 2>/dev/null; CG=""; continue; }
        USAGE=memory.peak
        break
    done
fi
[ -n "$CG" ] || { echo "# skip: no memory cgroup controller can be used here"; exit 77; }
trap 'rmdir "$CG" 2>/dev/null; rm -rf "$WORK"' EXIT

TB=$SRC/models/testbed/testbed-f16.gguf
"$LOWBIT" quantize "$TB" "$WORK/free.gguf" --type q4_0 --method gptq --calib "$TEXT" --calib-samples 16 \
    --calib-ctx 256 -q > /dev/null 2> "$WORK/err" || fail "gptq without a limit: $(tail -1 "$WORK/err")"
(echo $BASHPID > "$CG/cgroup.procs" && exec "$LOWBIT" quantize "$TB" "$WORK/q.gguf" --type q4_0 --method gptq \
    --calib "$TEXT" --calib-samples 16 --calib-ctx 256 -q > /dev/null 2> "$WORK/err")
rc=$?
peak=$(( $(cat "$CG/$USAGE" 2>/dev/null || echo 0) >> 20 ))
[ $rc = 0 ] && pass "gptq on the testbed inside a $LIMIT_MB MiB cgroup (peak $peak MiB)" \
    || fail "gptq inside $LIMIT_MB MiB: exit $rc (137: killed at the limit), peak $peak MiB"
cmp -s "$WORK/free.gguf" "$WORK/q.gguf" && pass "the same bytes as without the limit" || fail "bytes differ under the limit"
finish

#!/bin/bash
# Issue 25's table: does every type lowbit writes generate at the speed its bytes allow? One
# synthetic f16 model of SHAPE, quantized by lowbit (rtn, --pure) to each type; lowbit bench
# on each with 1 and 2 threads; the weight bytes each generated token streams times tokens/s,
# as a fraction of Q4_K's in the same run. Prints a Markdown table; files and JSON go to DIR.
#
#   bench/types.sh [DIR]   environment: SHAPE (1b), TYPES (below), THREADS ("1 2"),
#                          P (64), N (32), REPS (3), LOWBIT (build/lowbit)
set -u
LOWBIT=${LOWBIT:-build/lowbit}
DIR=${1:-/tmp/lowbit-types}
SHAPE=${SHAPE:-1b}
TYPES=${TYPES:-q4_k q4_0 q8_0 q2_k q3_k iq4_xs int4_g128 uint4_g128 int4_g32 uint3_g64 int2_g64 uint2_g64 int5_g32 uint5_g128 int8_g128 int6_g256 int4_pc nf4 ternary tq2_0 tq1_0}
THREADS=${THREADS:-1 2}
P=${P:-64}
N=${N:-32}
REPS=${REPS:-3}
mkdir -p "$DIR"
num() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1" | head -1; }

F16=$DIR/$SHAPE-f16.gguf
[ -e "$F16" ] || "$LOWBIT" synth --shape "$SHAPE" --type f16 -o "$F16" -q || exit 1
for t in $TYPES; do
    [ -e "$DIR/$SHAPE-$t.gguf" ] || "$LOWBIT" quantize "$F16" "$DIR/$SHAPE-$t.gguf" --type "$t" --pure -q > /dev/null || exit 1
done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo
echo "| type | bpw | threads | pp$P tok/s | tg$N tok/s | streamed GB/s | of q4_K's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
declare -A Q4K
for th in $THREADS; do
    for t in $TYPES; do
        j="$DIR/$SHAPE-$t-t$th.json"
        "$LOWBIT" bench "$DIR/$SHAPE-$t.gguf" -p "$P" -n "$N" -t "$th" -r "$REPS" --json > "$j" 2> /dev/null || continue
        gbs=$(num "$j" tg_gbs)
        [ "$t" = q4_k ] && Q4K[$th]=$gbs
        bpw=$(awk -v b="$(num "$j" model_bytes)" -v p="$(num "$j" params)" 'BEGIN { printf "%.2f", 8 * b / p }')
        frac=$(awk -v a="$gbs" -v b="${Q4K[$th]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        printf '| %s | %s | %s | %.0f | %.1f | %.1f | %s |\n' "$t" "$bpw" "$th" "$(num "$j" pp_tps)" "$(num "$j" tg_tps)" "$gbs" "$frac"
    done
done

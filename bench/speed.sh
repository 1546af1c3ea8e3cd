#!/bin/bash
# Issue 6's speed table: synthetic models (lowbit synth) of the given shapes and types; for
# each model and thread count, lowbit bench and llama.cpp's llama-bench on the same file, one
# after the other (the machine is shared: compare figures of one run); the read bandwidth
# measured with each thread count. Prints a Markdown table; raw JSON goes to DIR.
#
#   bench/speed.sh [DIR]      environment: SHAPES ("1b"), TYPES ("f16 q8_0 q4_0 q4_k iq4_nl"),
#                             THREADS ("1 2"), P (512), N (128), REPS (3),
#                             LOWBIT (build/lowbit), LLAMA_BENCH (llama-bench, if present),
#                             SPIN (unset): also lowbit's tg with GOMP_SPINCOUNT=SPIN (OpenMP
#                             threads spin that long before they sleep; lowbit waits passively)
set -u
LOWBIT=${LOWBIT:-build/lowbit}
LLAMA_BENCH=${LLAMA_BENCH:-/tmp/llamacpp/src/build/bin/llama-bench}
DIR=${1:-/tmp/lowbit-speed}
SHAPES=${SHAPES:-1b}
TYPES=${TYPES:-f16 q8_0 q4_0 q4_k iq4_nl}
THREADS=${THREADS:-1 2}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-3}
mkdir -p "$DIR"

num() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1" | head -1; }
# llama-bench -o jsonl: one line per test; the mean tokens/s of the test with n_prompt/n_gen
llama_ts() { grep "\"n_prompt\": $2, \"n_gen\": $3" "$1" | sed -n 's/.*"avg_ts": \([0-9.e+]*\).*/\1/p' | head -1; }

for s in $SHAPES; do
    for t in $TYPES; do
        f="$DIR/$s-$t.gguf"
        [ -e "$f" ] || "$LOWBIT" synth --shape "$s" --type "$t" -o "$f" -q || exit 1
    done
done

# the read bandwidth with each thread count: the best of three probes (others' jobs only
# ever lower it)
declare -A BW
for th in $THREADS; do
    for k in 1 2 3; do
        "$LOWBIT" bench --memory -t "$th" --json > "$DIR/mem-t$th-$k.json"
        v=$(num "$DIR/mem-t$th-$k.json" mem_gbs)
        BW[$th]=$(awk -v a="${BW[$th]:-0}" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    done
done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | type | GB | threads | lowbit pp$P | llama.cpp pp$P | lowbit tg$N | lowbit tg$N spin | llama.cpp tg$N | lowbit GB/s (bw_frac) | llama.cpp GB/s (bw_frac) | read GB/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for s in $SHAPES; do
    for t in $TYPES; do
        f="$DIR/$s-$t.gguf"
        for th in $THREADS; do
            j="$DIR/$s-$t-t$th.json"
            "$LOWBIT" bench "$f" -p "$P" -n "$N" -t "$th" -r "$REPS" --mem-bw "${BW[$th]}" --json > "$j" || continue
            lpp=- ltg=- lgb=- lfr=- spin=-
            if [ -n "${SPIN:-}" ]; then
                GOMP_SPINCOUNT=$SPIN "$LOWBIT" bench "$f" -p 0 -n "$N" -t "$th" -r "$REPS" \
                    --mem-bw "${BW[$th]}" --json > "$DIR/$s-$t-t$th.spin.json" \
                    && spin=$(num "$DIR/$s-$t-t$th.spin.json" tg_tps)
            fi
            if [ -x "$LLAMA_BENCH" ]; then
                "$LLAMA_BENCH" -m "$f" -p "$P" -n "$N" -t "$th" -r "$REPS" -o jsonl > "$DIR/$s-$t-t$th.llama.jsonl" 2> /dev/null
                lpp=$(llama_ts "$DIR/$s-$t-t$th.llama.jsonl" "$P" 0)
                ltg=$(llama_ts "$DIR/$s-$t-t$th.llama.jsonl" 0 "$N")
                [ -n "$ltg" ] && lgb=$(awk -v s="$(num "$j" streamed_bytes)" -v t="$ltg" 'BEGIN { printf "%.1f", s * t / 1e9 }') \
                    && lfr=$(awk -v g="$lgb" -v b="${BW[$th]}" 'BEGIN { printf "%.2f", g / b }')
            fi
            printf "| %s | %s | %.2f | %s | %.1f | %s | %.2f | %s | %s | %.1f (%.2f) | %s (%s) | %.1f |\n" "$s" "$t" \
                "$(awk -v b="$(num "$j" model_bytes)" 'BEGIN { print b / 1e9 }')" "$th" "$(num "$j" pp_tps)" \
                "$(printf %.1f "${lpp:-0}")" "$(num "$j" tg_tps)" "$spin" "$(printf %.2f "${ltg:-0}")" \
                "$(num "$j" tg_gbs)" "$(num "$j" bw_frac)" "$lgb" "$lfr" "${BW[$th]}"
        done
    done
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

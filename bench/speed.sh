#!/bin/bash
# Issue 6's speed table: synthetic models (lowbit synth) of the given shapes and types; for
# each model and thread count, lowbit bench and llama.cpp's llama-bench on the same file, one
# after the other, ROUNDS times, keeping the best pp and tg of each tool (single runs here vary
# by up to 30%: compare figures of one run); the read bandwidth measured with each thread
# count. Prints a Markdown table; raw JSON goes to DIR. A file DIR/SHAPE-TYPE.gguf already
# there is used as it is (llama-quantize's mixes: put its Q4_K_M there as SHAPE-q4_k_m.gguf).
#
#   bench/speed.sh [DIR]      environment: SHAPES ("1b"), TYPES ("f16 q8_0 q4_0 q4_k iq4_nl"),
#                             THREADS ("1 2"), P (512), N (128), REPS (3), ROUNDS (2),
#                             LOWBIT (build/lowbit), LLAMA_BENCH (llama-bench, if present),
#                             SPIN (unset): also lowbit's tg with GOMP_SPINCOUNT=SPIN (OpenMP
#                             threads spin that long before they sleep; lowbit waits passively)
set -u
LOWBIT=${LOWBIT:-build/lowbit}
LLAMA_BENCH=${LLAMA_BENCH:-/tmp/llamacpp/build/bin/llama-bench}
DIR=${1:-/tmp/lowbit-speed}
SHAPES=${SHAPES:-1b}
TYPES=${TYPES:-f16 q8_0 q4_0 q4_k iq4_nl}
THREADS=${THREADS:-1 2}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-2}
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
            # ROUNDS alternating runs of the two tools; the best pp and tg of each
            j="$DIR/$s-$t-t$th.json" lpp=- ltg=- lgb=- lfr=- spin=- best=0 bpp=0
            rm -f "$j" # a run of this call's, never an earlier one's
            for r in $(seq "$ROUNDS"); do
                "$LOWBIT" bench "$f" -p "$P" -n "$N" -t "$th" -r "$REPS" --mem-bw "${BW[$th]}" --json > "$j.r$r" || continue
                tg=$(num "$j.r$r" tg_tps)
                if awk -v a="$tg" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$tg; cp "$j.r$r" "$j"; fi
                pp=$(num "$j.r$r" pp_tps)
                awk -v a="$pp" -v b="$bpp" 'BEGIN { exit !(a > b) }' && bpp=$pp
                if [ -x "$LLAMA_BENCH" ]; then
                    "$LLAMA_BENCH" -m "$f" -p "$P" -n "$N" -t "$th" -r "$REPS" -o jsonl > "$DIR/$s-$t-t$th.llama.jsonl.r$r" 2> /dev/null
                    v=$(llama_ts "$DIR/$s-$t-t$th.llama.jsonl.r$r" "$P" 0)
                    [ -n "$v" ] && lpp=$(awk -v a="$v" -v b="$lpp" 'BEGIN { print (b == "-" || a > b) ? a : b }')
                    v=$(llama_ts "$DIR/$s-$t-t$th.llama.jsonl.r$r" 0 "$N")
                    [ -n "$v" ] && ltg=$(awk -v a="$v" -v b="$ltg" 'BEGIN { print (b == "-" || a > b) ? a : b }')
                fi
            done
            [ -e "$j" ] || continue
            if [ -n "${SPIN:-}" ]; then
                GOMP_SPINCOUNT=$SPIN "$LOWBIT" bench "$f" -p 0 -n "$N" -t "$th" -r "$REPS" \
                    --mem-bw "${BW[$th]}" --json > "$DIR/$s-$t-t$th.spin.json" \
                    && spin=$(num "$DIR/$s-$t-t$th.spin.json" tg_tps)
            fi
            [ "$ltg" != - ] && lgb=$(awk -v s="$(num "$j" streamed_bytes)" -v t="$ltg" 'BEGIN { printf "%.1f", s * t / 1e9 }') \
                && lfr=$(awk -v g="$lgb" -v b="${BW[$th]}" 'BEGIN { printf "%.2f", g / b }')
            [ "$lpp" = - ] && lpp=0
            [ "$ltg" = - ] && ltg=0
            printf "| %s | %s | %.2f | %s | %.1f | %s | %.2f | %s | %s | %.1f (%.2f) | %s (%s) | %.1f |\n" "$s" "$t" \
                "$(awk -v b="$(num "$j" model_bytes)" 'BEGIN { print b / 1e9 }')" "$th" "$bpp" \
                "$(printf %.1f "$lpp")" "$(num "$j" tg_tps)" "$spin" "$(printf %.2f "$ltg")" \
                "$(num "$j" tg_gbs)" "$(num "$j" bw_frac)" "$lgb" "$lfr" "${BW[$th]}"
        done
    done
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

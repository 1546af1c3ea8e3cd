#!/usr/bin/env bash
# Quantization methods compared: calibrate on the first half of tinystories-valid-70.txt,
# evaluate on the second half (KL divergence and perplexity against the f32 model, ctx 128).
# Usage: bench/methods.sh [LOWBIT] [TYPES] [METHODS]   (prints a Markdown table)
# The type w8a8 (int8 weights per channel, int8 activations) runs W8A8_METHODS, each with
# every activation calibration in ACTS, instead of METHODS. Time: the whole quantize command,
# then the part in calibration forward passes + the part in the method's own work.
set -euo pipefail
cd "$(dirname "$0")/.."
LOWBIT=${1:-build/lowbit}
TYPES=${2:-q4_0 q4_1 iq4_nl int3_g32 int2_g32 w8a8}
METHODS=${3:-rtn imatrix gptq awq awq+gptq}
W8A8_METHODS=${W8A8_METHODS:-rtn smoothquant llm-int8}
ACTS=${ACTS:-dynamic minmax p99.99 kl}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
TEXT=data/tinystories-valid-70.txt
# split at the first blank line after the middle: whole stories on each side
half=$(( $(wc -c < $TEXT) / 2 ))
cut=$(awk -v h=$half 'BEGIN{n=0} {n+=length($0)+1; if (n>=h && $0=="") {print n; exit}}' $TEXT)
head -c "$cut" $TEXT > "$W/calib.txt"
tail -c +"$((cut + 1))" $TEXT > "$W/eval.txt"

MODELS="models/stories260K/stories260K.bin"
[ -e ../shared/data/models/babyllama-tok105/model5000.bin ] && MODELS="$MODELS ../shared/data/models/babyllama-tok105/model5000.bin"
echo "| model | type | method | bpw | PPL | KLD | top-1 | time (s) | calib + method (s) |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for model in $MODELS; do
    name=$(basename "$model" .bin)
    "$LOWBIT" convert "$model" "$W/ref.gguf" 2>/dev/null
    "$LOWBIT" eval "$W/ref.gguf" --text "$W/eval.txt" --json > "$W/ref.json"
    ppl=$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$W/ref.json")
    echo "| $name | f32 | - | 32 | $ppl | 0 | 100% | - | - |"
    for t in $TYPES; do
        runs=$METHODS
        [ "$t" = w8a8 ] && runs=$(for m in $W8A8_METHODS; do for a in $ACTS; do echo "$m/$a"; done; done)
        for meth in $runs; do
            extra=""
            case $meth in
            gptq-ao) m=gptq; extra="--act-order" ;;
            */*) m=${meth%/*}; extra="--act ${meth#*/}" ;;
            *) m=$meth ;;
            esac
            t0=$(date +%s.%N)
            "$LOWBIT" quantize "$model" "$W/q.gguf" --type "$t" --method "$m" $extra \
                --calib "$W/calib.txt" --calib-samples 128 --calib-ctx 128 --json > "$W/q.json" 2> "$W/err" \
                || { echo "| $name | $t | $meth | failed: $(head -c 120 "$W/err") |"; continue; }
            t1=$(date +%s.%N)
            "$LOWBIT" eval "$W/q.gguf" --ref "$W/ref.gguf" --text "$W/eval.txt" --json > "$W/e.json"
            g() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2"; }
            printf '| %s | %s | %s | %.3f | %.4f | %.5f | %.2f%% | %.1f | %.1f + %.1f |\n' "$name" "$t" "$meth" \
                "$(g bpw "$W/q.json")" "$(g ppl "$W/e.json")" "$(g kld_mean "$W/e.json")" \
                "$(echo "$(g top1 "$W/e.json") * 100" | bc -l)" "$(echo "$t1 - $t0" | bc -l)" \
                "$(g seconds_calib "$W/q.json")" "$(g seconds_method "$W/q.json")"
        done
    done
done

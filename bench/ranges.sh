#!/usr/bin/env bash
# Range estimation compared (bench/README.md, section 12): every estimator for weights (--range,
# with rtn, imatrix and gptq: METHODS) and for W8A8 static activations (--act, after
# SmoothQuant: ACTS, empty for none), on the testbed. Calibration: 64 windows of 256 tokens from a train-split book (Alice in Wonderland);
# evaluation: a valid-split book (The Time Machine, its first 200 KB) at ctx 256, perplexity
# and KL divergence against the f16 model. Needs ../shared beside the checkout.
# Usage: bench/ranges.sh [LOWBIT] [WEIGHT_TYPES] [RANGES]   (prints two Markdown tables)
set -euo pipefail
cd "$(dirname "$0")/.."
LOWBIT=${1:-build/lowbit}
TYPES=${2:-int4_pc int3_g32}
RANGES=${3:-minmax p99.9 p99 mse kl kl-count}
METHODS=${METHODS-rtn imatrix gptq}
ACTS=${ACTS-dynamic minmax p99.99 p99.9 mse kl kl-count}
CORPUS=../shared/data/text/corpus
MODEL=models/testbed/testbed-f16.gguf
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp "$CORPUS/pg11-alice-in-wonderland.txt" "$W/calib.txt"
head -c 200000 "$CORPUS/pg35-time-machine.txt" > "$W/eval.txt"
CAL="--calib $W/calib.txt --calib-samples 64 --calib-ctx 256"
"$LOWBIT" eval "$MODEL" --text "$W/eval.txt" -c 256 --save-logits "$W/ref.logits" --json > "$W/ref.json"
g() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2"; }
row() { # label..., then the quantize arguments after --
    local label=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    "$LOWBIT" quantize "$MODEL" "$W/q.gguf" "$@" --json > "$W/q.json" 2> "$W/err" \
        || { echo "| $label | failed: $(head -c 120 "$W/err") |"; return; }
    t1=$(date +%s.%N)
    "$LOWBIT" eval "$W/q.gguf" --text "$W/eval.txt" -c 256 --ref-logits "$W/ref.logits" --json > "$W/e.json"
    printf '| %s | %.3f | %.4f | %.5f | %.2f%% | %.1f |\n' "$label" "$(g bpw "$W/q.json")" \
        "$(g ppl "$W/e.json")" "$(g kld_mean "$W/e.json")" "$(echo "$(g top1 "$W/e.json") * 100" | bc -l)" \
        "$(echo "$t1 - $t0" | bc -l)"
}
echo "f16 perplexity: $(g ppl "$W/ref.json")"
echo
echo "| weights: type / method / --range | bpw | PPL | KLD | top-1 | quantize (s) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for t in $TYPES; do
    for m in $METHODS; do
        for r in $RANGES; do
            extra=""
            [ "$m" != rtn ] && extra=$CAL
            # shellcheck disable=SC2086
            row "$t / $m / $r" --type "$t" --method "$m" --range "$r" $extra
        done
    done
done
[ -z "$ACTS" ] && exit 0
echo
echo "| activations: w8a8 smoothquant --act | bpw | PPL | KLD | top-1 | quantize (s) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for a in $ACTS; do
    # shellcheck disable=SC2086
    row "$a" --type w8a8 --method smoothquant --act "$a" $CAL
done

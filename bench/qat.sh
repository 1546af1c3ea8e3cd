#!/usr/bin/env bash
# Issue 7's table: on the testbed (models/testbed), at 2 and 3 bits, the KL divergence to the
# f16 model of the best post-training method (RTN, imatrix, GPTQ, AWQ) against QAT,
# EfficientQAT and QAFT (which starts from the best PTQ file), with training throughput.
# Calibration and training: the corpus's train split; evaluation: two books of its valid split
# (ctx 256, EVAL_CHUNKS chunks). Prints a Markdown table; files go to WORK.
#   bench/qat.sh [WORK]   environment: TYPES ("int2_g32 q2_k tq2_0 int3_g32"), PTQ ("rtn imatrix
#                         gptq awq"), QAT ("qat efficientqat qaft"), STEPS (100), THREADS (2),
#                         EVAL_CHUNKS (40), REF (models/testbed/testbed-f16.gguf), LOWBIT
set -uo pipefail
cd "$(dirname "$0")/.."
LOWBIT=${LOWBIT:-build/lowbit}
REF=${REF:-models/testbed/testbed-f16.gguf}
W=${1:-/tmp/lowbit-qat}
TYPES=${TYPES:-int2_g32 q2_k tq2_0 int3_g32}
PTQ=${PTQ:-rtn imatrix gptq awq}
QAT=${QAT:-qat efficientqat qaft}
STEPS=${STEPS:-100}
TH=${THREADS:-2}
CHUNKS=${EVAL_CHUNKS:-40}
C=../shared/data/text/corpus
mkdir -p "$W"
[ -d "$C" ] || { echo "bench/qat.sh: $C is absent (../shared beside the checkout)"; exit 1; }
cat $C/pg35-time-machine.txt $C/pg2814-dubliners.txt > "$W/eval.txt"
cat $C/pg1342-pride-and-prejudice.txt $C/pg84-frankenstein.txt > "$W/calib.txt" # train split
g() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
"$LOWBIT" eval "$REF" --text "$W/eval.txt" --ctx 256 --chunks "$CHUNKS" -t "$TH" \
    --save-logits "$W/ref.logits" --json > "$W/ref.json"
kld() { # file -> "kld ppl"
    "$LOWBIT" eval "$1" --ref-logits "$W/ref.logits" --text "$W/eval.txt" --ctx 256 \
        --chunks "$CHUNKS" -t "$TH" --json > "$W/e.json" 2>/dev/null || { echo "- -"; return; }
    echo "$(g kld_mean "$W/e.json") $(g ppl "$W/e.json")"
}
qat() { # method type in out [extra...] -> "kld ppl tok/s seconds"
    local m=$1 t=$2 in=$3 out=$4; shift 4
    local t0=$(date +%s.%N)
    "$LOWBIT" qat "$in" "$out" --method "$m" ${t:+--type "$t"} --text-list models/testbed/train.list \
        --cache "$W/train.tok" --steps "$STEPS" --batch 8 --ctx 256 -t "$TH" --log-every 50 "$@" \
        > /dev/null 2> "$W/$m-$(basename "$out").log" || { echo "- - - -"; return; }
    local t1=$(date +%s.%N)
    local tps=$(sed -n 's/.*(\([0-9]*\) tokens\/s in the end-to-end.*/\1/p' "$W/$m-$(basename "$out").log")
    echo "$(kld "$out") ${tps:--} $(echo "$t1 - $t0" | bc -l)"
}
echo "reference: $REF, ppl $(g ppl "$W/ref.json") on $(($CHUNKS * 256)) tokens of the valid split"
echo
echo "| type | $(echo $PTQ | sed 's/ / | /g') | best PTQ | $(echo $QAT | sed 's/ / | /g') | best QAT / best PTQ |"
echo "| --- |$(for m in $PTQ; do printf ' ---: |'; done) --- |$(for m in $QAT; do printf ' ---: |'; done) ---: |"
for t in $TYPES; do
    row="| $t |" best="" bestk=""
    for m in $PTQ; do
        "$LOWBIT" quantize "$REF" "$W/$t-$m.gguf" --type "$t" --method "$m" --calib "$W/calib.txt" \
            --calib-samples 128 --calib-ctx 256 -t "$TH" > /dev/null 2>&1 || { row="$row - |"; continue; }
        read -r k p <<< "$(kld "$W/$t-$m.gguf")"
        row="$row $k |"
        if [ "$k" != "-" ] && { [ -z "$bestk" ] || awk -v a="$k" -v b="$bestk" 'BEGIN { exit !(a < b) }'; }; then
            best=$m bestk=$k
        fi
    done
    row="$row $best ($bestk) |"
    qbest=""
    for m in $QAT; do
        case $m in
        qaft) read -r k p tps sec <<< "$(qat qaft "" "$W/$t-$best.gguf" "$W/$t-qaft.gguf" --teacher "$REF")" ;;
        *) read -r k p tps sec <<< "$(qat "$m" "$t" "$REF" "$W/$t-$m.gguf")" ;;
        esac
        row="$row $k ($tps tok/s, $(printf %.0f "${sec:-0}") s) |"
        if [ "$k" != "-" ] && { [ -z "$qbest" ] || awk -v a="$k" -v b="$qbest" 'BEGIN { exit !(a < b) }'; }; then
            qbest=$k
        fi
    done
    ratio=$(awk -v a="${qbest:-0}" -v b="${bestk:-1}" 'BEGIN { printf "%.2f", a / b }')
    echo "$row $ratio |"
done

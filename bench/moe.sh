#!/bin/bash
# Issue 24's quality table: mixtures of experts quantized by round to nearest, the imatrix
# method and GPTQ per expert (with its rare-expert rule on and off), at Q4_K_M and Q3_K_M. For
# each family, a synthetic f16 model (tiny shape, 8 experts, 2 per token, a skewed router, the
# stories260K tokenizer); "testbed": the trained testbed upcycled to a Mixtral of 8 experts
# (synth --upcycle). Calibrated on one book, evaluated on other text: the KL divergence of each
# file's next-token distributions from the f16 model's. Prints a Markdown table; files go to DIR.
#
#   bench/moe.sh [DIR]   environment: ARCHS ("mixtral qwen3moe qwen2moe"; testbed; or GGUF files), TYPES ("q4_k_m q3_k_m"),
#                        CALIB (data/books/alice-in-wonderland.txt), SAMPLES (32), CTX (128),
#                        EVAL (data/tinystories-valid-70.txt), CHUNKS (40), LOWBIT (build/lowbit),
#                        RULE (--gptq-min-tokens of the "gptq" column: the default unless set)
set -u
LOWBIT=${LOWBIT:-build/lowbit}
DIR=${1:-/tmp/lowbit-moe}
ARCHS=${ARCHS:-mixtral qwen3moe qwen2moe}
TYPES=${TYPES:-q4_k_m q3_k_m}
CALIB=${CALIB:-data/books/alice-in-wonderland.txt}
SAMPLES=${SAMPLES:-32}
CTX=${CTX:-128}
EVAL=${EVAL:-data/tinystories-valid-70.txt}
CHUNKS=${CHUNKS:-40}
RULE=${RULE:-}
mkdir -p "$DIR"
num() { sed -n "s/.*\"$2\": \([-0-9.e+]*\).*/\1/p" "$1" | head -1; }

echo "| model | type | rtn | imatrix | gptq | gptq, rule off | experts under the rule |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for a in $ARCHS; do
    g="$DIR/$a-f16.gguf"
    if [ -f "$a" ]; then # a model file: measured as it is (e.g. a mixture of experts lowbit trained)
        g="$a"
        a=$(basename "$a" .gguf)
    elif [ "$a" = testbed ]; then # the trained testbed, upcycled: each FFN copied into 8 experts (5% noise)
        [ -e "$g" ] || "$LOWBIT" synth --upcycle models/testbed/testbed-f16.gguf --experts 8 --experts-used 2 --type f16 \
            -o "$g" -q || exit 1
    else
        [ -e "$g" ] || "$LOWBIT" synth --arch "$a" --shape tiny --type f16 --vocab models/stories260K/tok512.bin -o "$g" -q \
            || exit 1
    fi
    "$LOWBIT" eval "$g" --text "$EVAL" --ctx "$CTX" --chunks "$CHUNKS" --save-logits "$DIR/$a.lg" > /dev/null 2>&1 || exit 1
    for t in $TYPES; do
        declare -A K=()
        rare=0
        for m in rtn imatrix gptq gptq-off; do
            q="$DIR/$a-$t-$m.gguf"
            opt=""
            [ $m = gptq-off ] && opt="--gptq-min-tokens -1"
            [ $m = gptq ] && [ -n "$RULE" ] && opt="--gptq-min-tokens $RULE"
            # shellcheck disable=SC2086
            "$LOWBIT" quantize "$g" "$q" --type "$t" --method "${m%-off}" --calib "$CALIB" --calib-samples "$SAMPLES" \
                --calib-ctx "$CTX" $opt > /dev/null 2> "$DIR/log" || { tail -1 "$DIR/log"; continue; }
            [ $m = gptq ] && rare=$(grep -c "topped up (few tokens)" "$DIR/log")
            "$LOWBIT" eval "$q" --text "$EVAL" --ctx "$CTX" --chunks "$CHUNKS" --ref-logits "$DIR/$a.lg" --json \
                > "$DIR/q.json" 2> /dev/null
            K[$m]=$(num "$DIR/q.json" kld_mean)
        done
        echo "| $a | $t | ${K[rtn]} | ${K[imatrix]} | ${K[gptq]} | ${K[gptq-off]} | $rare |"
    done
done

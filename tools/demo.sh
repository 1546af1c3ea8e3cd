#!/usr/bin/env bash
# make demo: the main job on the bundled testbed (models/testbed: a 6.8M-parameter Llama
# trained on public-domain books, rows every GGUF type fits). It is quantized to three of
# llama.cpp's mixes, each by round-to-nearest (what llama-quantize does without an importance
# matrix) and by GPTQ calibrated on one book, and each file is evaluated against the original
# on another book it never saw: the table and a KLD-vs-bpw plot land in build/demo/.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
cd "$(dirname "$0")/.."
MODEL=models/testbed/testbed-f16.gguf
CALIB=data/books/alice-in-wonderland.txt
TEXT=data/books/time-machine-100k.txt
OUT=${DEMO_OUT:-build/demo}
TYPES=${DEMO_TYPES:-q4_k_m,q3_k_m,q2_k}
METHODS=${DEMO_METHODS:-rtn,gptq}

echo "== lowbit demo: the testbed ($MODEL) =="
"$LOWBIT" inspect "$MODEL" | awk "NR == 1" # (awk reads it all: no SIGPIPE)
echo "== greedy generation (temperature 0), 40 tokens =="
"$LOWBIT" run "$MODEL" -p "The Time Traveller" --temp 0 -n 40
echo
echo "== quantize ($TYPES; $METHODS, GPTQ calibrated on $CALIB) -> evaluate on $TEXT (context 256) =="
"$LOWBIT" sweep "$MODEL" --types "$TYPES" --method "$METHODS" --calib "$CALIB" --calib-samples 32 \
    --calib-ctx 256 --text "$TEXT" --ctx 256 -o "$OUT"
cat <<MSG

How to read it: KLD is how far each file's next-token distribution is from the original's
(0 = the same model), on a book none of the files was calibrated on; top-1 is how often the
most likely next token is unchanged. At the same size (bpw), GPTQ's rows should sit below
round-to-nearest's: the same bytes, closer to the original. ◆ marks the best file for its
size. bench/README.md has the full comparison with llama.cpp's importance-matrix quants.
Files: $OUT/*.gguf (llama.cpp and Ollama load them), $OUT/report.md, $OUT/report.svg.
MSG

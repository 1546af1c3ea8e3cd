#!/usr/bin/env bash
# make demo: the main job on the bundled model. stories260K (a llama2.c checkpoint) is
# generated from, then quantized to a range of GGUF types and each evaluated against the
# original on the bundled TinyStories text: the table (bits per weight, size, perplexity,
# KL divergence, top-1 agreement) and a KLD-vs-bpw plot land in build/demo/.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
cd "$(dirname "$0")/.."
MODEL=models/stories260K/stories260K.bin
TEXT=data/tinystories-valid-70.txt
OUT=${DEMO_OUT:-build/demo}
TYPES=${DEMO_TYPES:-f16,bf16,q8_0,q6_k,q5_k_m,q5_1,q5_0,q4_k_m,q4_1,q4_0,iq4_nl,q3_k_m,q2_k}

echo "== lowbit demo: stories260K =="
"$LOWBIT" inspect "$MODEL"
echo "== greedy generation (temperature 0), 48 tokens =="
"$LOWBIT" run "$MODEL" --temp 0 -n 48
echo
echo "== quantize -> evaluate against the original ($TEXT, context 128) =="
"$LOWBIT" sweep "$MODEL" --types "$TYPES" --text "$TEXT" --ctx 128 -o "$OUT"
echo
echo "(llama.cpp's llama-perplexity on the same text at -c 128: F32 PPL 4.3151)"
echo "files: $OUT/*.gguf (they load in llama.cpp), $OUT/report.md, $OUT/report.svg"

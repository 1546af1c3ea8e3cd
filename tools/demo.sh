#!/usr/bin/env bash
# make demo: the bundled stories260K model, converted to GGUF (f32, f16, bf16), generated
# from, and evaluated on the bundled TinyStories text against the original.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
cd "$(dirname "$0")/.."
MODEL=models/stories260K/stories260K.bin
TEXT=data/tinystories-valid-70.txt
OUT=${DEMO_OUT:-build/demo}
mkdir -p "$OUT"

echo "== lowbit demo: stories260K (llama2.c checkpoint) -> GGUF -> generate -> evaluate =="
"$LOWBIT" inspect "$MODEL"
echo "== greedy generation (temperature 0), 64 tokens =="
"$LOWBIT" run "$MODEL" --temp 0 -n 64
echo
printf '%-28s %10s %10s %12s %12s\n' "model" "bytes" "PPL@128" "+/-" "tok/s (pp)"
for t in orig f32 f16 bf16; do
    if [ "$t" = orig ]; then f=$MODEL; else
        f=$OUT/stories260K-$t.gguf
        "$LOWBIT" convert "$MODEL" "$f" --type "$t" 2>/dev/null
    fi
    j=$("$LOWBIT" eval "$f" --text "$TEXT" --ctx 128 --json)
    num() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" <<< "$j"; }
    printf '%-28s %10s %10.4f %12.5f %12.0f\n' "$(basename "$f")" "$(stat -c %s "$f")" \
        "$(num ppl)" "$(num ppl_stderr)" "$(num tokens_per_sec)"
done
echo "(llama.cpp's llama-perplexity on the same text at -c 128: F32 PPL 4.3151)"

#!/usr/bin/env bash
# Build the fuzz targets with clang's libFuzzer + ASan/UBSan and fuzz each for SECONDS
# (default 60), starting from the committed corpora; new interesting inputs land in
# build-fuzz/corpus/TARGET, crashes in build-fuzz/ (copy the ones worth keeping into
# tests/fuzz/corpus/TARGET so ctest replays them).  Usage: tools/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=${*:-gguf tokenizer model safetensors bpe}
B=build-fuzz
mkdir -p $B
CFLAGS="-std=c11 -D_GNU_SOURCE -DLB_VERSION=\"fuzz\" -DLB_SOURCE_DIR=\"$PWD\" -O1 -g -fsanitize=fuzzer-no-link,address,undefined -Iinclude -Isrc $(pkg-config --cflags openblas)"
SRCS=$(ls src/*/*.c)
for f in $SRCS; do
    o=$B/$(echo "$f" | tr / _).o
    [ "$o" -nt "$f" ] || clang $CFLAGS -fopenmp -c "$f" -o "$o"
done
for t in $TARGETS; do
    clang $CFLAGS -fsanitize=fuzzer -fopenmp tests/fuzz/fuzz_$t.c $B/src_*.o -o $B/fuzz_$t \
        $(pkg-config --libs lapacke openblas libcjson libpcre2-8 2>/dev/null) -lm
    mkdir -p $B/corpus/$t
    $B/fuzz_$t -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=$B/ $B/corpus/$t tests/fuzz/corpus/$t 2>&1 | tail -3
done

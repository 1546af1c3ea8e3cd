#!/usr/bin/env bash
# Build the fuzz targets with clang's libFuzzer + ASan/UBSan and fuzz each for SECONDS
# (default 60), one after another, starting from the committed corpora; new interesting
# inputs land in build-fuzz/corpus/TARGET, crash/leak/timeout inputs in build-fuzz/
# (copy the ones worth keeping into tests/fuzz/corpus/TARGET so ctest replays them).
# Each target's log is build-fuzz/TARGET.log; one summary line per target goes to stdout.
# Exits non-zero when any target finds something (or fails to build).
# Usage: tools/fuzz.sh [SECONDS] [TARGET...]   (default: every tests/fuzz/fuzz_*.c)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
if [ $# -gt 0 ]; then
    TARGETS="$*"
else
    TARGETS=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
fi
B=build-fuzz
mkdir -p $B
CFLAGS="-std=c11 -D_GNU_SOURCE -DLB_VERSION=\"fuzz\" -DLB_SOURCE_DIR=\"$PWD\" -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -Iinclude -Isrc $(pkg-config --cflags openblas)"
LIBS="$(pkg-config --libs lapacke openblas libcjson libpcre2-8) -lm"
# the library's objects (warnings are the CMake build's job), rebuilt when their source or
# any header is newer
newest_h=$(ls -t include/lowbit/*.h src/*/*.h | head -1)
OBJS=""
for f in src/*/*.c; do
    o=$B/$(echo "$f" | tr / _).o
    OBJS="$OBJS $o"
    if [ ! "$o" -nt "$f" ] || [ ! "$o" -nt "$newest_h" ]; then clang $CFLAGS -w -fopenmp -c "$f" -o "$o"; fi
done
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive UBSAN_OPTIONS=print_stacktrace=1
failed=""
for t in $TARGETS; do
    if ! clang $CFLAGS -fsanitize=fuzzer -fopenmp tests/fuzz/fuzz_$t.c $OBJS -o $B/fuzz_$t $LIBS; then
        failed="$failed $t(build)"
        continue
    fi
    mkdir -p $B/corpus/$t
    rc=0
    $B/fuzz_$t -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=$B/$t- $B/corpus/$t tests/fuzz/corpus/$t \
        >$B/$t.log 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' $B/$t.log | tail -1)
    cov=$(grep -o 'cov: [0-9]*' $B/$t.log | tail -1)
    corpus=$(ls $B/corpus/$t | wc -l)
    if [ $rc -ne 0 ]; then
        failed="$failed $t"
        echo "fuzz: $t: FINDING (exit $rc) after ${runs:-?} executions; see $B/$t.log:"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' $B/$t.log | head -5
    else
        echo "fuzz: $t: ${runs:-?} executions in ${SECS} s, ${cov:-cov: ?}, corpus $corpus inputs, no finding"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: findings in:$failed" >&2
    exit 1
fi

#!/bin/bash
# Issue 23's scaling: GPTQ (the f32 target) on the 1b shape (TinyLlama's widths, LAYERS layers:
# the cost of a block is what scales) as 1 rank x 2 threads and as 2 ranks x 1 thread, each
# REPS times, alternating, the best of each; per layer block: wall seconds, calibration and
# method seconds, and the bytes rank 0 sent (the payload of the collectives). Then eval's
# perplexity on the same model both ways. Needs the MPI build (make mpi).
#
#   bench/mpi.sh [DIR]   environment: LOWBIT (build-mpi/lowbit), LAYERS (2), SAMPLES (16),
#                        CTX (256), CALIB (data/tinystories-valid-70.txt), REPS (2), TYPE (q4_k_m)
set -u
LOWBIT=${LOWBIT:-build-mpi/lowbit}
DIR=${1:-/tmp/lowbit-mpi}
LAYERS=${LAYERS:-2}
SAMPLES=${SAMPLES:-16}
CTX=${CTX:-256}
CALIB=${CALIB:-data/tinystories-valid-70.txt}
REPS=${REPS:-2}
TYPE=${TYPE:-q4_k_m}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$DIR"
M="$DIR/1b-$LAYERS.gguf"
[ -e "$M" ] || "$LOWBIT" synth --shape 1b --n-layers "$LAYERS" --type f16 -o "$M" -q || exit 1

# run TAG RANKS THREADS: quantize, its per-block log in $DIR/TAG.jsonl
run() {
    local cmd=("$LOWBIT")
    [ "$2" -gt 1 ] && cmd=(mpirun -np "$2" --bind-to none "$LOWBIT")
    "${cmd[@]}" quantize "$M" "$DIR/out-$1.gguf" --type "$TYPE" --method gptq --calib "$CALIB" \
        --calib-samples "$SAMPLES" --calib-ctx "$CTX" -t "$3" -q --log-json "$DIR/$1.jsonl" > /dev/null 2>&1 || exit 1
}

# per layer block (blk.*), from a log: wall, calibration, method seconds, MB sent (means)
blocks() {
    python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
prev = {"seconds_calib": 0, "seconds_method": 0, "mpi_bytes_sent": 0}
out = []
for r in rows:
    d = {k: r.get(k, 0) - prev[k] for k in prev}
    if r["name"].startswith("blk."):
        out.append((r["seconds"], d["seconds_calib"], d["seconds_method"], d["mpi_bytes_sent"] / 1e6))
    prev = {k: r.get(k, 0) for k in prev}
n = len(out)
print(" ".join("%.2f" % (sum(o[i] for o in out) / n) for i in range(4)))
PY
}

best1="" best2=""
for rep in $(seq "$REPS"); do
    run r1 1 2; b=$(blocks "$DIR/r1.jsonl")
    [ -z "$best1" ] || [ "$(echo "$b $best1" | awk '{print ($1 < $5)}')" = 1 ] && best1=$b
    run r2 2 1; b=$(blocks "$DIR/r2.jsonl")
    [ -z "$best2" ] || [ "$(echo "$b $best2" | awk '{print ($1 < $5)}')" = 1 ] && best2=$b
done
cmp -s "$DIR/out-r1.gguf" "$DIR/out-r2.gguf" && same=yes || same=NO
echo "| layout | block s | calibration s | method s | MB sent by rank 0 |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "$best1" | awk '{printf "| 1 rank x 2 threads | %s | %s | %s | %s |\n", $1, $2, $3, $4}'
echo "$best2" | awk '{printf "| 2 ranks x 1 thread | %s | %s | %s | %s |\n", $1, $2, $3, $4}'
echo "same bytes: $same"

# eval: perplexity of the quantized file against the f16 model, 16 chunks of 256
for rep in $(seq "$REPS"); do
    "$LOWBIT" eval "$DIR/out-r1.gguf" --text "$CALIB" --ref "$M" --ctx "$CTX" --chunks 16 -t 2 --json > "$DIR/e1.json"
    mpirun -np 2 --bind-to none "$LOWBIT" eval "$DIR/out-r1.gguf" --text "$CALIB" --ref "$M" --ctx "$CTX" --chunks 16 -t 1 \
        --json > "$DIR/e2.json"
    for k in 1 2; do
        s=$(sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p' "$DIR/e$k.json")
        eval "cur=\${e$k:-}"
        [ -z "$cur" ] || [ "$(echo "$s $cur" | awk '{print ($1 < $2)}')" = 1 ] && eval "e$k=$s"
    done
done
k1=$(sed 's/"\(tokens_per_sec\|seconds\|threads\|ranks\|mpi_bytes_sent\)": [0-9.]*\(, \)\?//g' "$DIR/e1.json")
k2=$(sed 's/"\(tokens_per_sec\|seconds\|threads\|ranks\|mpi_bytes_sent\)": [0-9.]*\(, \)\?//g' "$DIR/e2.json")
[ "$k1" = "$k2" ] && same=yes || same=NO
echo "eval --ref, 16 chunks of $CTX: 1 rank x 2 threads ${e1}s, 2 ranks x 1 thread ${e2}s; same figures: $same"

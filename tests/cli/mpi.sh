# Under mpirun (issue 23): eval, calibrate and quantize split across 2 ranks and 3 (more ranks
# than cores: --oversubscribe) give the single process's figures and bytes, on the testbed and
# babyllama; the commands and methods that do not split refuse with a reason; a rank that fails
# takes the job down, and the message names it. Runs the MPI build of lowbit: LB_MPI_LOWBIT, this
# binary when it is one, else build-mpi/lowbit (`make mpi`; `make test` builds it first).
. "$(dirname "$0")/lib.inc"

MPI=${LB_MPI_LOWBIT:-}
[ -z "$MPI" ] && "$LOWBIT" info --json | grep -q '"mpi": true' && MPI=$LOWBIT
[ -z "$MPI" ] && [ -x "$SRC/build-mpi/lowbit" ] && MPI=$SRC/build-mpi/lowbit
command -v mpirun > /dev/null || { echo "# skip: no mpirun (make deps installs openmpi-bin)"; exit 77; }
[ -n "$MPI" ] || { echo "# skip: no MPI build of lowbit (make mpi)"; exit 77; }
[ "${LB_SANITIZE:-0}" = 1 ] && { echo "# skip: the MPI build is not sanitized (the release suite runs this)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$WORK" || exit 1
TB=$SRC/models/testbed/testbed-f16.gguf

# np N ARGS...: lowbit ARGS as one process (N = 1) or under mpirun with N ranks, one thread each
np() {
    local n=$1
    shift
    if [ "$n" = 1 ]; then "$MPI" "$@" -t 1
    else timeout 300 mpirun -np "$n" --oversubscribe --bind-to none "$MPI" "$@" -t 1; fi
}

# same_bytes NAME ARGS...: `lowbit ARGS`, its argument OUT replaced by out.N.gguf, for 1 and then
# $NPS ranks (2 3; 3 alone: uneven shares, more ranks than cores): the same bytes
NPS="2 3"
same_bytes() {
    local name=$1 n a
    shift
    for n in 1 $NPS; do
        local args=()
        for a in "$@"; do [ "$a" = OUT ] && args+=("out.$n.gguf") || args+=("$a"); done
        np $n "${args[@]}" > /dev/null 2> "err.$n" || { fail "$name, $n ranks: $(grep -v '^-\|^$' "err.$n" | head -1)"; return; }
    done
    for n in $NPS; do
        cmp -s out.1.gguf "out.$n.gguf" || { fail "$name: $n ranks wrote other bytes than one process"; return; }
    done
    pass "$name: the same bytes on 1 and $NPS ranks"
}

# the figures of eval --json without the timings and the ranks/threads
figures() { sed 's/"\(tokens_per_sec\|seconds\|threads\|ranks\|mpi_bytes_sent\)": [0-9.]*\(, \)\?//g' "$1"; }

# ---- eval: perplexity, KL divergence against the unquantized model, saved logits ----
"$MPI" quantize "$TB" q4.gguf --type q4_0 -q 2> /dev/null || fail "quantize q4_0"
for n in 1 2 3; do
    np $n eval q4.gguf --text "$TEXT" --ref "$TB" --chunks 7 --json > "eval.$n.json" 2> "err.$n" || fail "eval, $n ranks: $(head -1 "err.$n")"
    np $n eval "$TB" --text "$TEXT" --chunks 7 --save-logits "lg.$n" > /dev/null 2>&1 || fail "eval --save-logits, $n ranks"
done
grep -q '"ranks": 3' eval.3.json || fail "eval --json: no \"ranks\": 3 under 3 ranks"
grep -q '"kld_p99"' eval.1.json || fail "eval --json: no KLD figures"
for n in 2 3; do
    [ "$(figures eval.1.json)" = "$(figures "eval.$n.json")" ] && pass "eval: PPL and KLD on $n ranks are one process's" \
        || fail "eval on $n ranks: $(figures "eval.$n.json") against $(figures eval.1.json)"
    cmp -s lg.1 "lg.$n" && pass "eval --save-logits: the same file on $n ranks" || fail "eval --save-logits on $n ranks: other bytes"
done
np 3 eval q4.gguf --text "$TEXT" --chunks 7 --ref-logits lg.1 --json > ref.3.json 2> /dev/null
np 1 eval q4.gguf --text "$TEXT" --chunks 7 --ref-logits lg.1 --json > ref.1.json 2> /dev/null
[ "$(figures ref.1.json)" = "$(figures ref.3.json)" ] && grep -q kld_mean ref.1.json \
    && pass "eval --ref-logits: the same figures on 3 ranks" || fail "eval --ref-logits on 3 ranks"

# ---- calibrate and quantize: the same bytes (7 windows: uneven shares on 2 and 3 ranks) ----
CAL="--calib $TEXT --calib-samples 7 --calib-ctx 64"
same_bytes "calibrate (testbed)" calibrate "$TB" --text "$TEXT" --calib-samples 7 --ctx 64 -o OUT
for t in q4_k_m iq4_xs tq1_0 int3_g64; do same_bytes "quantize $t (testbed, rtn)" quantize "$TB" OUT --type $t -q; done
same_bytes "quantize q3_k_m --method imatrix (testbed)" quantize "$TB" OUT --type q3_k_m --method imatrix $CAL -q
same_bytes "quantize iq2_xxs --method imatrix (testbed)" quantize "$TB" OUT --type iq2_xxs --method imatrix $CAL -q
NPS=3 # the rest: one process against 3 ranks
# GPTQ: Hessians (and the f32 target's cross terms) reduced in window order, each rank GPTQ on
# a share of every matrix's rows; AWQ: its grid points and clipping rows split
same_bytes "quantize q4_k_m --method gptq (testbed)" quantize "$TB" OUT --type q4_k_m --method gptq $CAL -q
same_bytes "quantize q4_0 --method gptq --gptq-target self --act-order (testbed)" quantize "$TB" OUT --type q4_0 \
    --method gptq --gptq-target self --act-order $CAL -q
# the Hessians' exchange in bands of 1 MB (a round a band: 256 MB by default), as a 70B model's would go
LOWBIT_MPI_BAND_MB=1 same_bytes "quantize q4_k_m --method gptq, exchanged in 1 MB bands (testbed)" quantize "$TB" OUT \
    --type q4_k_m --method gptq $CAL -q
same_bytes "quantize q4_0 --method awq (testbed)" quantize "$TB" OUT --type q4_0 --method awq $CAL -q
same_bytes "quantize q3_k_m --method awq+gptq (testbed)" quantize "$TB" OUT --type q3_k_m --method awq+gptq $CAL -q
# W8A8: SmoothQuant's and LLM.int8's maxima, static activation ranges' histograms
same_bytes "quantize w8a8 --method smoothquant --act mse (testbed)" quantize "$TB" OUT --type w8a8 --method smoothquant \
    --act mse $CAL -q
same_bytes "quantize w8a8 --method llm-int8 --act p99.9 (testbed)" quantize "$TB" OUT --type w8a8 --method llm-int8 \
    --act p99.9 $CAL -q
# --target-bpw: each matrix's sensitivities measured on one rank, the table gathered
same_bytes "quantize --target-bpw 3.5 (testbed)" quantize "$TB" OUT --target-bpw 3.5 --calib "$TEXT" --bpw-windows 2 -q
# a mixture of experts: per-expert Hessians, the rare-expert prior
"$MPI" synth --arch mixtral --shape tiny --n-layers 2 --n-embd 256 --n-ff 512 --n-heads 4 --n-kv-heads 2 --n-vocab 512 \
    --type f32 --vocab "$SRC/models/stories260K/tok512.bin" -o moe.gguf -q 2> /dev/null || fail "synth mixtral"
same_bytes "quantize q4_k_m --method gptq (mixtral)" quantize moe.gguf OUT --type q4_k_m --method gptq $CAL -q
# DeepSeek-V2's: MLA's k_b and v_b GPTQ'd head by head, shared experts (experts and heads a share per rank)
"$MPI" synth --arch deepseek2 --shape tiny --n-layers 2 --type f32 --vocab "$SRC/models/stories260K/tok512.bin" \
    -o ds.gguf -q 2> /dev/null || fail "synth deepseek2"
same_bytes "quantize q4_k_m --method gptq (deepseek2)" quantize ds.gguf OUT --type q4_k_m --method gptq $CAL -q
if have_shared models/babyllama-tok105/model5000.bin; then
    BL="$SHARED/models/babyllama-tok105/model5000.bin --tokenizer $SHARED/models/babyllama-tok105/tok105.model"
    # shellcheck disable=SC2086
    same_bytes "calibrate (babyllama)" calibrate $BL --text "$TEXT" --calib-samples 5 --ctx 64 -o OUT
    # shellcheck disable=SC2086
    same_bytes "quantize q4_k --method imatrix (babyllama)" quantize $BL OUT --type q4_k --method imatrix $CAL -q
    # shellcheck disable=SC2086
    same_bytes "quantize q4_0 (babyllama, rtn)" quantize $BL OUT --type q4_0 -q
    # shellcheck disable=SC2086
    same_bytes "quantize q4_k_m --method gptq (babyllama)" quantize $BL OUT --type q4_k_m --method gptq $CAL -q
    # shellcheck disable=SC2086
    same_bytes "quantize q4_0 --method awq (babyllama)" quantize $BL OUT --type q4_0 --method awq $CAL -q
    for n in 1 3; do
        # shellcheck disable=SC2086
        np $n eval $BL --text "$TEXT" --ctx 64 --chunks 5 --json > "bl.$n.json" 2> /dev/null || fail "eval babyllama, $n ranks"
    done
    [ "$(figures bl.1.json)" = "$(figures bl.3.json)" ] && pass "eval (babyllama): the same perplexity on 3 ranks" \
        || fail "eval (babyllama) on 3 ranks: $(figures bl.3.json)"
fi

# ---- sweep: each run split across the ranks; the same report ----
for n in 1 3; do
    np $n sweep "$TB" --types q4_0,q4_k --method rtn,gptq $CAL --text "$TEXT" --ctx 64 --chunks 4 -o "sw$n" > /dev/null \
        2> "err.$n" || fail "sweep, $n ranks: $(grep -m1 lowbit "err.$n")"
done
cmp -s sw1/report.md sw3/report.md && cmp -s sw1/q4_k_m-gptq.gguf sw3/q4_k_m-gptq.gguf \
    && pass "sweep: the same report and files on 3 ranks" || fail "sweep on 3 ranks: another report or file"

# ---- resume: a run on 3 ranks stopped (SIGTERM to mpirun) after a block goes on with 2 ranks
# and with one process, from the state rank 0 kept, to one process's bytes ----
np 1 quantize "$TB" full.gguf --type q4_k_m --method gptq $CAL -q > /dev/null 2>&1 || fail "gptq, one process"
for resume_np in 2 1; do
    rm -rf o.gguf .o.gguf.lowbit-state log.jsonl
    timeout 300 mpirun -np 3 --oversubscribe --bind-to none "$MPI" quantize "$TB" o.gguf --type q4_k_m --method gptq $CAL \
        -q -t 1 --log-json log.jsonl > /dev/null 2>&1 &
    pid=$!
    while kill -0 $pid 2> /dev/null && [ "$(cat log.jsonl 2> /dev/null | wc -l)" -lt 3 ]; do sleep 0.05; done
    kill -TERM $pid 2> /dev/null
    wait $pid 2> /dev/null
    if [ -e o.gguf ]; then
        pass "resume: the run ended before the signal (nothing to resume; not a failure)"
    elif [ ! -e .o.gguf.lowbit-state/state ]; then
        fail "resume: no state after SIGTERM on 3 ranks"
    else
        np $resume_np quantize "$TB" o.gguf --type q4_k_m --method gptq $CAL -q --resume > /dev/null 2> err \
            || fail "resume on $resume_np: $(grep -m1 lowbit err)"
        cmp -s full.gguf o.gguf && [ ! -e .o.gguf.lowbit-state ] \
            && pass "resume: stopped on 3 ranks after block $(wc -l < log.jsonl), resumed on $resume_np: one process's bytes" \
            || fail "resume on $resume_np ranks: other bytes, or the state left"
    fi
done

# ---- a rank that dies (SIGKILL, rank 1 of 2, after the first blocks): the job ends at once,
# mpirun names the rank, the last checkpoint stays and resumes to one process's bytes ----
rm -rf o.gguf .o.gguf.lowbit-state log.jsonl
Q="$MPI quantize $TB o.gguf --type q4_k_m --method gptq $CAL -q -t 1"
timeout 120 mpirun --oversubscribe --bind-to none -np 1 $Q --log-json log.jsonl : -np 1 bash -c \
    "$Q & p=\$!; while kill -0 \$p 2> /dev/null && [ \$(cat log.jsonl 2> /dev/null | wc -l) -lt 3 ]; do sleep 0.05; done; kill -9 \$p; wait \$p" \
    > out 2> err
rc=$?
if [ $rc -eq 0 ]; then
    pass "a rank that dies: the run ended before the kill (nothing to check)"
elif [ $rc -ne 124 ] && grep -q "Process name: \[\[[0-9]*,1\],1\]" err && [ -e .o.gguf.lowbit-state/state ]; then
    np 2 quantize "$TB" o.gguf --type q4_k_m --method gptq $CAL -q --resume > /dev/null 2>&1
    cmp -s full.gguf o.gguf && pass "a rank that dies: the job ends ($rc) naming rank 1; --resume on 2 ranks: one process's bytes" \
        || fail "a rank that dies: resumed to other bytes"
else
    fail "a rank that dies: exit $rc; $(grep -m1 -i 'process name\|rank' err)"
fi

# ---- what does not split refuses, and a failing rank ends the job naming itself ----
np 2 run "$TB" -p "Once" -n 4 > out 2> err && fail "run under mpirun: accepted"
grep -q "split their work" err && pass "run under mpirun: refused" || fail "run under mpirun: $(head -1 err)"
S=$(date +%s)
timeout 120 mpirun --oversubscribe --bind-to none -np 1 "$MPI" eval "$TB" --text "$TEXT" --chunks 7 -t 1 : \
    -np 1 "$MPI" eval missing.gguf --text "$TEXT" --chunks 7 -t 1 > out 2> err
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "lowbit (rank 1 of 2): missing.gguf" err \
    && pass "a rank that fails: the job ends ($rc, $(($(date +%s) - S)) s), naming rank 1" \
    || fail "a rank that fails: exit $rc; $(grep -m1 -i 'rank\|missing' err)"
finish

# quantize --resume: a calibrated run killed with SIGKILL at a random block resumes from its
# last checkpoint and writes the same bytes as an uninterrupted run (gptq, awq); SIGTERM and
# SIGINT stop after the current block (exit 143, 130) with no output and no temp, the state
# kept and the command to resume on stderr; without --resume the state is refused, and a state
# of another run (other options) is refused with the reason; success removes the state. A run
# killed between its output's rename and its state's removal leaves OUT whole: --resume only
# removes the state; the state of a run whose partial output is gone is refused.
. "$(dirname "$0")/lib.inc"
set -m # background jobs keep SIGINT (a non-interactive shell would ignore it in them)

TB=$MODEL
# blocks of 0.1-0.3 s on this machine: a kill polled at 20 ms lands inside the run
CAL="--calib $TEXT --calib-samples 64 --calib-ctx 256"
cd "$WORK" || exit 1
state() { ls -A | grep -c '^\.o\.gguf\.lowbit-state$'; }
temps() { ls -A | grep -c '^\.o\.gguf\.lowbit-[0-9]'; }

# wait until the run's --log-json has $1 blocks (or the run ended)
wait_blocks() {
    while kill -0 $pid 2>/dev/null && [ "$(wc -l 2>/dev/null < log.jsonl || echo 0)" -lt "$1" ]; do sleep 0.02; done
}

for me in gptq awq; do
    "$LOWBIT" quantize "$TB" full.gguf --type q4_0 --method $me $CAL -q 2> err || fail "$me: $(tail -1 err)"
    # SIGKILL at a random block (2 .. 6 of 7), then --resume
    k=$((2 + RANDOM % 5))
    rm -f log.jsonl
    "$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method $me $CAL -q --log-json log.jsonl 2> err &
    pid=$!
    wait_blocks $k
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    done_blocks=$(wc -l < log.jsonl)
    [ ! -e o.gguf ] && [ "$(state)" = 1 ] && pass "$me: SIGKILL after block $done_blocks/7: no output, the state kept" \
        || { [ -e o.gguf ] && echo "# $me: the run ended before the kill"; }
    "$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method $me $CAL -q --resume 2> err || fail "$me resume: $(tail -1 err)"
    cmp -s full.gguf o.gguf && pass "$me: resumed after SIGKILL at block $done_blocks: the same bytes" \
        || fail "$me: the resumed output differs (killed after block $done_blocks)"
    [ "$(state)" = 0 ] && [ "$(temps)" = 0 ] && pass "$me: no state or temp after success" || fail "$me: left $(ls -A)"
    rm -f o.gguf
done

for sig in TERM INT; do # the second run continues the first's state
    rm -f log.jsonl o.gguf
    res=$([ $sig = INT ] && echo --resume)
    "$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --log-json log.jsonl $res 2> err &
    pid=$!
    wait_blocks $([ $sig = INT ] && echo 1 || echo 3)
    kill -s $sig $pid
    wait $pid
    rc=$?
    want=$([ $sig = TERM ] && echo 143 || echo 130)
    [ "$rc" = "$want" ] && pass "SIG$sig: exit $rc" || fail "SIG$sig: exit $rc, want $want: $(tail -2 err)"
    [ ! -e o.gguf ] && [ "$(temps)" = 0 ] && [ "$(state)" = 1 ] && pass "SIG$sig: no output, no temp, the state kept" \
        || fail "SIG$sig: left $(ls -A)"
    grep -q "^lowbit: to resume: lowbit quantize .* --resume$" err && pass "SIG$sig: the command to resume" \
        || fail "SIG$sig: $(cat err)"
done
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q 2> err && fail "a state there, no --resume: ran" \
    || { grep -q "an interrupted run's state is beside it .*add --resume" err && pass "no --resume: $(cat err)" || fail "no --resume: $(cat err)"; }
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq --calib "$TEXT" --calib-samples 63 --calib-ctx 256 -q --resume 2> err \
    && fail "another run's state: resumed" \
    || { grep -q "the state is of another run (the options differ)" err && pass "another run's state: $(cat err)" || fail "other run: $(cat err)"; }
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --resume 2> err || fail "resume after SIGINT: $(tail -1 err)"
"$LOWBIT" quantize "$TB" full.gguf --type q4_0 --method gptq $CAL -q 2> err || fail "gptq: $(tail -1 err)"
cmp -s full.gguf o.gguf && pass "resumed after SIGTERM, SIGINT: the same bytes" || fail "resumed after signals: bytes differ"
# killed after the rename, before the state's removal: the checkpoint past every block (next block
# L + 1 = 6, the i32 after "LBRS", the version and the four u64 fingerprints), OUT in place
stop_at() {
    rm -f o.gguf log.jsonl
    "$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --log-json log.jsonl 2> err &
    pid=$!
    wait_blocks "$1"
    kill -TERM $pid
    wait $pid
}
stop_at 3
rm .o.gguf.lowbit-state/partial.gguf
cp full.gguf o.gguf
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --resume 2> err && fail "no partial output: resumed" \
    || { grep -q "partial.gguf: missing (the state has [0-9]* of [0-9]* blocks done)" err && pass "a state without its partial output: $(cat err)" \
        || fail "no partial output: $(cat err)"; }
printf '\006\000\000\000' | dd of=.o.gguf.lowbit-state/state bs=1 seek=40 conv=notrunc status=none
touch -d '1 hour ago' o.gguf # an older OUT is not this run's: refused
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --resume 2> err && fail "an older OUT: taken as the output" \
    || pass "an older OUT beside a finished state: refused ($(tail -1 err))"
cp full.gguf o.gguf # written after the last checkpoint, as the run's rename leaves it
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --resume 2> err || fail "committed: $(tail -1 err)"
cmp -s full.gguf o.gguf && [ "$(state)" = 0 ] && pass "killed after the output's rename: --resume removes the state" \
    || fail "committed: left $(ls -A)"
# a damaged state is refused, not trusted
stop_at 3
head -c 100 .o.gguf.lowbit-state/state > cut && mv cut .o.gguf.lowbit-state/state
"$LOWBIT" quantize "$TB" o.gguf --type q4_0 --method gptq $CAL -q --resume 2> err && fail "a truncated state: resumed" \
    || { grep -q "state: truncated" err && pass "a truncated state: $(cat err)" || fail "truncated state: $(cat err)"; }
finish

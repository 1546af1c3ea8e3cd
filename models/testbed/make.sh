#!/usr/bin/env bash
# How models/testbed was made (see README.md beside this file): the tokenizer with Debian's
# spm_train (package sentencepiece 0.1.97), then lowbit train. About an hour on 2 cores.
# Run from the repository root with ../shared beside it: models/testbed/make.sh [WORK]
set -euo pipefail
W=${1:-/tmp/testbed}
C=../shared/data/text/corpus
mkdir -p "$W"
# 1. SentencePiece BPE, 4096 pieces, byte fallback, on the train split (the 50 books)
sed 's|.*/||' models/testbed/train.list | (cd $C && xargs cat) > "$W/train.txt"
spm_train --input="$W/train.txt" --model_prefix="$W/tok4096" --vocab_size=4096 --model_type=bpe \
    --byte_fallback=true --character_coverage=0.9999 --split_digits=true \
    --normalization_rule_name=identity --remove_extra_whitespaces=false \
    --allow_whitespace_only_pieces=true --input_sentence_size=3000000 \
    --shuffle_input_sentence=true --num_threads=2 --max_sentence_length=8192 \
    --seed_sentencepiece_size=1000000
# (models/testbed/tokenizer.model is that tok4096.model)
# 2. The model: 1000 steps of 2 x 8 windows of 256 tokens (4096 tokens a step, 4.1M in all).
# The machine was shared with other jobs and slower than planned, so the schedule was
# shortened twice: planned for 1500 steps, stopped after step 400 and resumed with 1250,
# stopped after step 600 and resumed with 1000 (the learning rate follows each new cosine
# from the step reached). These commands redo exactly that: the batches depend on the seed
# only, the weights on the seed and the thread count (-t 2: the gradient norm's sum).
T="build/lowbit train --text-list models/testbed/train.list --valid-list models/testbed/valid.list
   --tokenizer models/testbed/tokenizer.model --cache $W/train.tok --valid-cache $W/valid.tok
   --n-embd 256 --n-layers 6 --n-heads 4 --n-kv-heads 2 --n-ff 768 --ctx 256
   --batch 8 --accum 2 --lr 2e-3 --warmup 100 --wd 0.1 --clip 1.0 --seed 1
   --eval-every 100 --eval-windows 64 --ckpt $W/ckpt.gguf --ckpt-every 100
   --log $W/train.jsonl --log-every 10 -t 2 -o $W/testbed-f16.gguf"
$T --steps 1500 --stop-at 400
cp "$W/ckpt.gguf" "$W/ckpt-400.gguf"
$T --steps 1250 --stop-at 600 --resume "$W/ckpt-400.gguf"
cp "$W/ckpt.gguf" "$W/ckpt-600.gguf"
$T --steps 1000 --resume "$W/ckpt-600.gguf"
# 3. What is committed: the f16 output, its tokenizer (above) and the training log
cp "$W/testbed-f16.gguf" "$W/train.jsonl" models/testbed/

/* lowbit: git-style subcommands from a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train_args.h"

static const lb_command k_commands[] = {
    { "quantize", cmd_quantize, "quantize a model into a GGUF file",
      "usage: lowbit quantize IN OUT.gguf --type T [--method M] [--calib FILE]\n"
      "       lowbit quantize [options] IN [OUT.gguf] TYPE [NTHREADS]   (llama-quantize's form;\n"
      "                       without OUT: ggml-model-TYPE.gguf beside IN)\n"
      "                       [--range R] [--pure] [--act A] [--alpha X] [--outlier-threshold X]\n"
      "                       [--tensor-type REGEX=TYPE]... [--json] [-q] [--log-json FILE]\n"
      "                       [-t THREADS]\n"
      "  --type T        a type (q8_0, q4_0, q4_1, q5_0, q5_1, q6_k, iq4_nl, iq4_xs, tq1_0, tq2_0,\n"
      "                  f16, bf16, f32) or a llama.cpp mix (q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m);\n"
      "                  case-insensitive. Norms stay f32; rows a block size does not divide fall\n"
      "                  back to a type that fits (as llama-quantize does, then f16)\n"
      "  --pure          no mix rules: every weight matrix gets the type\n"
      "  --tensor-type REGEX=TYPE  tensors whose name matches REGEX (POSIX extended, anywhere in\n"
      "                  the name, as llama-quantize's) get TYPE; the first match wins;\n"
      "                  --tensor-type-file F: such entries separated by spaces or newlines\n"
      "  --output-tensor-type T, --token-embedding-type T  output.weight's and token_embd's\n"
      "                  type, before every other rule; --leave-output-tensor: output.weight\n"
      "                  as it is in IN\n"
      "  --allow-requantize  quantize tensors IN holds quantized (refused by default: quality\n"
      "                  suffers; quantize from the f16/f32 model)\n"
      "  --override-kv KEY=TYPE:VALUE  metadata that wins over the model's (TYPE int, float,\n"
      "                  bool or str; repeatable)\n"      "  --dry-run       every tensor's planned type and size, and the total; writes nothing\n"
      "                  (OUT may be left out)\n"
      "  --method M      how values are chosen: rtn (round to nearest, default), imatrix\n"
      "                  (importance-weighted, from calibration), gptq (Hessian-guided error\n"
      "                  compensation, true-sequential), awq (activation-aware scales folded\n"
      "                  into the norms, then clipping); several join with '+': awq+gptq\n"
      "                  --type w8a8 (int8 weights per channel, int8 activations) takes rtn\n"
      "                  (naive), smoothquant (--alpha X, 0.5) or llm-int8 (input columns above\n"
      "                  --outlier-threshold X, 6.0, stay f32 with their weights)\n"
      "  --act A         w8a8 activations: dynamic (per token, default), or static per tensor\n"
      "                  with a clip from calibration, by a --range estimator (minmax, pNN,\n"
      "                  mse, kl, kl-count)\n"
      "  --calib FILE    calibration text (every method but rtn; w8a8's static --act); windows:\n"
      "                  --calib-samples N (128) of --calib-ctx L tokens (128), random starts\n"
      "                  from --seed S (1234); L past the model's context needs --allow-long-ctx\n"
      "  --imatrix FILE  importance from llama-imatrix's (or lowbit calibrate's) GGUF file\n"      "  --include-weights NAME, --exclude-weights NAME  use --imatrix's entries only for the\n"
      "                  tensors whose name contains NAME, or for all but those (repeatable)\n"
      "  --damp X        GPTQ damping, a fraction of mean diag(H) (0.01; i-quants 0.05); --act-order\n"
      "  --calib-matmul M  q8 (default: calibration through the stored matrices' quantized\n"
      "                  kernels, as llama.cpp runs the file; BF16 models and Hessians on bf16\n"
      "                  where AVX512_BF16) or exact (f32 throughout)\n"
      "  --gptq-target T what GPTQ aims each layer at: f32 (default: the unquantized model's\n"
      "                  outputs, the weights refit to the quantized inputs first) or self (the\n"
      "                  layer's own outputs on the quantized inputs, as the GPTQ paper)\n"
      "  --gptq-min-tokens N  a mixture of experts: an expert routed fewer calibration tokens\n"
      "                  (default 1: those that saw none) gets its Hessian topped up to N tokens\n"
      "                  with every calibration token passed through it (width: its input\n"
      "                  width); -1: off (round to nearest an expert that saw none)\n",
      "  --range R       clip each row before quantizing: minmax (none, default), pNN (the\n"
      "                  NNth percentile of |w|, e.g. p99.9), mse (the clip minimizing the\n"
      "                  squared error), kl (the quantized histogram of |w|, weighted by |w|,\n"
      "                  nearest in KL divergence), kl-count (TensorRT's: counting values)\n"
      "                  With gptq: each block's scales come from its clipped weights; not\n"
      "                  with awq (it searches its own clipping)\n"
      "  --target-bpw X  a type per matrix for a file of at most X bits per weight: each matrix\n"
      "                  measured alone in each of --bpw-types (default q2_k, iq2_xxs, iq2_xs,\n"
      "                  iq2_s, iq3_xxs, q3_k, iq3_s, iq4_xs, q4_k, q5_k, q6_k, q8_0) on the\n"
      "                  --bpw-windows N (4) windows of the --calib text, 128 tokens (KL divergence\n"
      "                  from the unquantized model), the sum minimized under the size; --dry-run\n"
      "                  prints the table; method rtn becomes imatrix (as measured); --bpw-measure\n"
      "                  proxy: the importance-weighted squared error instead (no forward passes)\n"
      "  --target-size S  the same for a file of at most S bytes (K, M, G suffixes; the metadata\n"
      "                  counted as the input GGUF's)\n"
      "  --allow-lowbit-types  --bpw-types may hold lowbit's own types (int4_g32, nf4, km4, ...):\n"
      "                  a file llama.cpp cannot load (default: GGUF types only)\n"
      "  --allow-nonfinite  quantize weights holding NaN, Inf or values past the f16 range\n"
      "                  (refused by default: the file would evaluate to NaN)\n"
      "  --json          one JSON summary on stdout (peak_rss: the peak resident set, bytes)\n"
      "  progress        one line per block (the embedding, each layer, the head) on stderr:\n"
      "                  elapsed, ETA, peak RSS, the block's output error RTN -> method; on a\n"
      "                  terminal one redrawn line; -q: none\n"
      "  --log-json FILE one JSON object per block into FILE, as the run goes\n"
      "  --resume        continue an interrupted calibrated run (gptq, awq, imatrix) from its\n"
      "                  last finished block: its state is kept beside OUT (.OUT.lowbit-state/)\n"
      "                  until the run succeeds; the bytes are those of an uninterrupted run.\n"
      "                  SIGINT/SIGTERM stop after the current block (exit 130/143), a second\n"
      "                  one at once; without --resume a state there is refused\n"
      "  --max-memory S  what the run may hold in RAM (6G, 512M; default 3/4 of the machine's\n"
      "                  memory or of its memory cgroup's limit): past it the calibration\n"
      "                  windows' residual streams go to a file beside OUT (under mpirun:\n"
      "                  each rank's; the default is shared among the ranks of a host)\n"
      "  --split-max-size N[M|G], --split-max-tensors N  write gguf-split's shards (M, G: 10^6,\n"
      "                  10^9 bytes of data): OUT without .gguf, then -00001-of-0000N.gguf;\n"
      "                  --keep-split: the shards IN (a split GGUF) has\n" },
    { "calibrate", cmd_calibrate, "activation statistics on real text: an importance matrix",
      "usage: lowbit calibrate MODEL --text FILE -o OUT.imatrix.gguf [--calib-samples N]\n"
      "                        [--calib-ctx L] [--seed S] [--allow-long-ctx] [--json]\n"
      "  windows of L tokens (128): N random ones (seeded), or all of the text in order when\n"
      "  N is not given (L past the model's context is refused without --allow-long-ctx);\n"
      "  writes llama.cpp's importance-matrix format (llama-imatrix's), for\n"
      "  lowbit quantize --imatrix and llama-quantize --imatrix alike\n"
      "  --json   the summary as one JSON object on stdout\n", NULL },
    { "sweep", cmd_sweep, "quantize to many types, evaluate each, write a report",
      "usage: lowbit sweep IN --text FILE -o DIR [--types LIST|all] [--method LIST] [--calib FILE]\n"
      "                    [--ctx N] [--chunks K] [--allow-long-ctx] [--json]\n"
      "  --types LIST   comma-separated types or mixes (default: all)\n"
      "  --method LIST  comma-separated methods as quantize takes them (rtn, gptq, awq+gptq, ...;\n"
      "                 default rtn): every type with every method, files DIR/TYPE-METHOD.gguf;\n"
      "                 --calib FILE, --calib-samples N, --calib-ctx L, --seed S, --imatrix F as\n"
      "                 for quantize\n"
      "  --target-bpw LIST  also files of these sizes, a type per matrix by measured sensitivity\n"
      "                 (--bpw-types, --bpw-windows, --bpw-measure, --allow-lowbit-types as for\n"
      "                 quantize; needs --calib): DIR/bpw-X-METHOD.gguf, drawn as a curve, and\n"
      "                 DIR/sensitivity.svg, the heat map of every matrix in every type\n"
      "  --ref-points F a CSV of figures from elsewhere (llama.cpp's), its header naming name,\n"
      "                 bpw, kld and optionally method: listed and drawn (squares) beside\n"
      "                 the sweep's, on the same Pareto front\n"
      "  --ctx N        chunk length (128); past the model's context only with --allow-long-ctx\n"
      "  a sweep that fails removes the directory it made\n"
      "  writes DIR/TYPE.gguf for each, DIR/report.md (type, method, bpw, size, PPL, dPPL, KLD,\n"
      "  p99, top-1, fallback tensors, the Pareto front) and DIR/report.svg (KLD against bits\n"
      "  per weight, a colour per method, error bars, the front); prints the table\n"
      "  --json         prints the reference and the rows as one JSON object instead\n", NULL },
    { "run", cmd_run, "generate text from a model",
      "usage: lowbit run MODEL [--tokenizer F] [-p PROMPT] [-n N | --steps N] [--temp T]\n"
      "                  [--top-p P] [--seed S] [-t THREADS] [--json]\n"
      "  --json       the text and the speeds as one JSON object (nothing streamed)\n"
      "  MODEL        a GGUF file, a Hugging Face directory or a llama2.c checkpoint\n"
      "  -p PROMPT    text to start from (default: empty, BOS only; needed when the\n"
      "               vocabulary adds no BOS)\n"
      "  -n N         tokens to generate\n"
      "  --steps N    total positions, prompt included, as llama2.c counts (default 256)\n"
      "  --temp T     sampling temperature, 0 = greedy (default 1.0)\n"
      "  --top-p P    nucleus sampling threshold (default 0.9)\n"
      "  --seed S     random seed (default: time)\n"
      LB_CTX_OPTIONS_HELP("q8"), NULL },
    { "eval", cmd_eval, "perplexity of a model on a text, as llama-perplexity computes it",
      "usage: lowbit eval MODEL --text FILE [--ref REF | --ref-logits FILE] [--ctx N]\n"
      "                   [--chunks K] [--json] [--save-logits FILE] [--tokenizer F] [-t N]\n"
      "       lowbit eval BASE_MODEL -f FILE --kl-divergence-base OUT\n"
      "       lowbit eval MODEL --kl-divergence-base FILE --kl-divergence   (llama-perplexity's)\n"
      "  --text FILE, -f FILE  the text, cut into chunks of --ctx tokens\n"
      "  --ref REF            a reference model (e.g. the unquantized one): adds the KL\n"
      "                       divergence report of llama-perplexity --kl-divergence\n"
      "  --ref-logits FILE    the same against a saved file: --save-logits's or llama-perplexity's\n"
      "  --ctx N, -c N        chunk length in tokens (default 128; llama-perplexity's is 512:\n"
      "                       give -c 512 to compare); past the model's context only with\n"
      "                       --allow-long-ctx (then with a warning)\n"
      "  --chunks K           evaluate only the first K chunks\n"
      "  --save-logits FILE   store the scored positions' logits (f32, for --ref-logits)\n"
      "  --kl-divergence-base FILE  alone: write llama-perplexity's base file (log-probabilities\n"
      "                       in 16 bits); with --kl-divergence: the reference, either format\n"
      "                       (llama.cpp's holds its tokens and context: no --text needed)\n"
      "  --json               one JSON object on stdout\n"
      LB_CTX_OPTIONS_HELP("exact: the reference"), NULL },
    { "convert", cmd_convert, "convert a model between containers, without quantizing",
      "usage: lowbit convert IN OUT [--type f32|f16|bf16|keep] [--to gguf|hf|hf-gptq] [--tokenizer F]\n"
      "                             [--json]   (one JSON object: what was written, the import)\n"
      "  IN may be a GGUF file, a Hugging Face directory (config.json, safetensors,\n"
      "  tokenizer.json), a GPTQ or AWQ checkpoint directory (AutoGPTQ, GPTQModel: 4 and 8\n"
      "  bits, any group, sym or not, act-order; AutoAWQ GEMM) or a llama2.c checkpoint\n"
      "  --to gguf    OUT is a GGUF file (default)\n"
      "  --to hf      OUT is a new HF directory: config.json, model.safetensors, tokenizer.json\n"
      "  --to hf-gptq OUT is a new GPTQ checkpoint (transformers, vLLM) of a model whose\n"
      "               matrices are q4_0, q8_0, int4_gN or int8_gN (quantize --method gptq)\n"
      "  --type T     the weight matrices' type (default f32; keep for a GPTQ/AWQ import,\n"
      "               whose groups become q4_0/q4_1/q8_0 blocks, exactly where a block\n"
      "               holds one group; the error of the others is reported); norms stay f32\n", NULL },
    { "tokenize", cmd_tokenize, "print the token ids of a text",
      "usage: lowbit tokenize MODEL (-p TEXT | --file F) [--no-bos] [--pieces] [--tokenizer F]\n"
      "                       [--json]\n"
      "  MODEL may be a model, a vocabulary-only GGUF, or a tokenizer file\n"
      "  --json       {\"n_tokens\", \"ids\": [...], \"pieces\": [...]} on one line\n", NULL },
    { "bench", cmd_bench, "prompt and generation speed, bytes, peak memory, bandwidth",
      "usage: lowbit bench MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json | -o FMT] [--mem-bw GBS]\n"
      "       lowbit bench --memory [-t N] [--mem-mib 512] [--json]\n"
      "  -p N         prompt processing: one batch of N random tokens from an empty cache (pp)\n"
      "  -n N         generation: N tokens one at a time from an empty cache (tg); 0 skips\n"
      "  -r REPS      timed repetitions after one warm-up (5): median, min and max\n"
      "  -p, -n, -t   take llama-bench's comma lists (-p 128,512 -t 1,2): every thread count\n"
      "               runs each pp and tg test, one row each\n"
      "  -o FMT       those rows as llama-bench prints them: md (the default for lists), csv,\n"
      "               json (an array) or jsonl (an object a line)\n"
      "  --mem-bw X   the read bandwidth in GB/s (default: measured in the same run, the best\n"
      "               of five probes: 8-byte, AVX2 and AVX-512 loads over --mem-mib, and one\n"
      "               token's Q4_K and Q8_0 products with a matrix of half of it; printed with\n"
      "               the CPUs the threads ran on)\n"
      "  --memory     measure the read bandwidth of main memory alone (those probes)\n"
      "  --json       keys pp_tps, tg_tps, model_bytes, peak_rss, bw_frac, mem_gbs, tg_gbs, ...\n"
      "  bw_frac: weight bytes streamed per generated token x tg tokens/s, over the bandwidth\n"
      LB_CTX_OPTIONS_HELP("q8"), NULL },
    { "train", cmd_train, "train a model from scratch on text",
      "usage: lowbit train --text F [--text F ...] --tokenizer TOK -o OUT.gguf [options]\n"
      "  --tokenizer TOK      a tokenizer (SentencePiece .model, llama2.c .bin, GGUF, HF dir)\n"
      "  --shape S            tiny (default), 1b, 7b, 8b; changed by --n-embd --n-ff\n"
      "                       --n-layers --n-heads --n-kv-heads --n-ctx; --tied: output = embedding\n"
      "  --type T             the output's weights: f16 (default), f32, bf16\n"
      "  --init MODEL         go on training MODEL (its family, shape and tokenizer; fine-tuning,\n"
      "                       e.g. a mixture of experts made by synth --upcycle) instead of a new one\n"
      "  --arch A             the family (llama; qwen2, qwen3, phi3, gemma2, gemma3, and the\n"
      "                       mixtures of experts mixtral, qwen3moe: --experts N (8), --experts-used K\n"
      "                       (2), --n-ff-exp N (qwen3moe: n_ff / 2), --moe-aux X the load-balancing\n"
      "                       loss's weight (0.01))\n"
      "  --ternary            BitNet b1.58: block matrices ternary (absmean), the inputs of the\n"
      "                       block linears int8 per token; written as TQ2_0 (llama.cpp runs it)\n"
      LB_TRAIN_OPTIONS_HELP
      "  defaults: 1000 steps, lr 1e-3, warmup 100, weight decay 0.1\n", NULL },
    { "qat", cmd_qat, "quantization-aware training: qat, efficientqat, qaft",
      "usage: lowbit qat IN OUT.gguf --type T --text F [--method qat|efficientqat|qaft]\n"
      "                  [--teacher REF] [--steps N] [options]\n"
      "  --type T             a type or mix as quantize takes it (qaft: default the input's own)\n"
      "  --method qat         weights and step sizes trained under fake quantization from IN\n"
      "                       (unquantized)\n"
      "           efficientqat  Block-AP (each block to the f32 block's outputs on\n"
      "                       --bap-windows W (128) windows, --bap-epochs E (2), --bap-lr X),\n"
      "                       then E2E-QP: codes frozen, step sizes trained end to end\n"
      "           qaft        fine-tune a PTQ result IN (rtn, gptq, awq output) distilled from\n"
      "                       --teacher REF (the unquantized model)\n"
      "  --loss kd|ce         KL divergence to the teacher's logits on the text (default; the\n"
      "                       teacher is --teacher REF, else IN itself) or cross-entropy\n"
      "  --no-lsq             the format's own quantizer with a straight-through gradient\n"
      "                       everywhere (default: learned step sizes where the grid is uniform)\n"
      "  --scale-lr X         the step sizes' learning rate relative to the weights' (1)\n"
      LB_TRAIN_OPTIONS_HELP
      "  defaults: 200 steps, lr 1e-3 (Block-AP's too), warmup 10, no weight decay\n", NULL },
    { "synth", cmd_synth, "write a random-weight model of a real shape",
      "usage: lowbit synth --shape tiny|1b|7b|8b -o OUT.gguf [--arch A] [--type T] [--seed S]\n"
      "                    [--vocab F] [--n-embd N] [--n-ff N] [--n-layers N] [--n-heads N]\n"
      "                    [--n-kv-heads N] [--head-dim N] [--n-vocab N] [--ctx N] [--rope-theta X]\n"
      "                    [--sliding-window N] [--experts N] [--experts-used K] [--n-ff-exp N]\n"
      "                    [--n-ff-shexp N] [deepseek2: --q-lora N --kv-lora N --rope-dim N\n"
      "                    --v-head-dim N --dense-lead N --shared-experts N --router softmax|v3\n"
      "                    --expert-groups G --groups-used U] [-q] [-t THREADS] [--json]\n"
      "  --json        the file's shape, bytes and time as one JSON object\n"
      "  --arch A      llama (default), qwen2 (q/k/v biases), qwen3 (q/k head norms), phi3\n"
      "                (gate and up in one ffn_up), gemma2 (post-norms, GELU, soft-capping,\n"
      "                every other layer windowed), gemma3 (q/k head norms, 5 windowed layers\n"
      "                of 6 with RoPE base 10000); mixtures of experts: mixtral, qwen3moe (q/k\n"
      "                head norms), qwen2moe (q/k/v biases, a shared expert), deepseek2\n"
      "                (DeepSeek-V2/V3: latent attention, dense first layers, shared experts);\n"
      "                the shape's sizes, that family's tensors\n"
      "  deepseek2     --kv-lora N the latent (4 x the non-rotary part), --rope-dim N rotary\n"
      "                values a query head (head_dim / 2), --v-head-dim N (the rest), --q-lora N\n"
      "                q through a low-rank pair (0: wq), --dense-lead N dense first layers (1),\n"
      "                --shared-experts N (2, --n-ff-exp wide each), --router v3: sigmoid, a\n"
      "                selection bias, renormalized, times 2.5; --expert-groups G with\n"
      "                --groups-used U: DeepSeek-V3's expert groups\n"
      "  --upcycle DENSE     instead: a mixture of experts from a trained dense model (llama to\n"
      "                mixtral, qwen3 to qwen3moe): each FFN copied into --experts experts, each\n"
      "                copy's weights times (1 + --noise X (0.05) N(0, 1)), a skewed random router\n"
      "  --sliding-window N  gemma2/gemma3: the window (default: a quarter of --ctx)\n"
      "  --experts N   a mixture of experts: N experts (8), K of them per token (--experts-used,\n"
      "                2), each --n-ff-exp wide (n_ff / 2; Mixtral's: n_ff), a shared expert\n"
      "                --n-ff-shexp wide (qwen2moe: n_ff); the router is skewed, so the last\n"
      "                experts are rare\n"
      "  --shape S     tiny (256 wide, 4 layers), 1b (TinyLlama-1.1B), 7b (Llama-2-7B), 8b\n"
      "                (Llama-3-8B); the flags change any dimension of it\n"
      "  --type T      every weight matrix's GGUF type (default f16); norms stay f32\n"
      "  --vocab F     a tokenizer (e.g. models/stories260K/tok512.bin, a GGUF), padded with\n"
      "                unused pieces; default: a generated SentencePiece vocabulary\n"
      "  weights: normal, a log-normal spread per row, 1 input channel in 256 eight times\n"
      "  larger; the file is written as it is generated (a 7B model needs little memory)\n", NULL },
    { "inspect", cmd_inspect, "show a file's metadata and tensors",
      "usage: lowbit inspect FILE [--json]\n"
      "  --json   one JSON object: the metadata (arrays as their type and length), the tensors\n", NULL },
    { "info", cmd_info, "version, CPU features and storage types",
      "usage: lowbit info [--json]\n"
      "  the types table says which types llama.cpp and Ollama load (the others: lowbit only)\n", NULL },
};

const lb_command *lb_find_command(const char *name) {
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (strcmp(k_commands[i].name, name) == 0) return &k_commands[i];
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "lowbit %s: quantize LLMs on a CPU, write GGUF, measure what was lost\n\n"
               "usage: lowbit <command> [options]   ('lowbit <command> --help' for more)\n\n",
            LB_VERSION);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
}

/* OpenMP's worker threads spin while they wait (OMP_WAIT_POLICY=active, libgomp's default),
 * which costs lowbit up to 10x on a loaded machine: its parallel regions are short and
 * separated by serial work. Sleeping at once costs generation instead: a token is ~150 short
 * matrix-vector products, each a wake-up (1b Q4_0 at -t 2: 22.5 tok/s passive, 36.6 with
 * 10000 spins, 38.3 with 10^6; with one core busy elsewhere 18.8 passive, 10.7 with 10000).
 * So `run` and `bench` spin 10000 rounds (~0.1 ms) before sleeping, every other command
 * sleeps at once. The policy is read when the runtime loads, before main: unless the user
 * chose one (OMP_WAIT_POLICY or GOMP_SPINCOUNT), we set it and start again. */
static void choose_wait_policy(int argc, char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    const bool generates = argc > 1 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "bench"));
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    if (generates && setenv("GOMP_SPINCOUNT", "10000", 1) != 0) return;
    execv("/proc/self/exe", argv); /* on failure: run on, with the default policy */
}

/* Under mpirun every rank runs the command; the commands that split their work (eval's chunks,
 * calibrate's windows, quantize's windows and rows) print on rank 0 alone, the others refuse to
 * run twice. A rank that fails takes the job down (lb_dist_abort), so none waits on it. */
static int dispatch(int argc, char **argv);

int main(int argc, char **argv) {
    choose_wait_policy(argc, argv);
    lb_error err = { 0 };
    if (lb_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "lowbit: %s\n", err.msg);
        lb_dist_abort(LB_EXIT_ERROR); /* when MPI started */
        return LB_EXIT_ERROR;
    }
    const int rc = dispatch(argc, argv);
    if (rc != LB_EXIT_OK && rc < 128) lb_dist_abort(rc); /* >= 128: every rank stopped on a signal, together */
    lb_dist_finalize();
    return rc;
}

static bool distributed(const char *cmd) {
    static const char *const k_split[] = { "eval", "calibrate", "quantize", "sweep" };
    for (size_t i = 0; i < sizeof k_split / sizeof k_split[0]; i++)
        if (!strcmp(cmd, k_split[i])) return true;
    return false;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return LB_EXIT_USAGE;
    }
    if (lb_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        if (argc > 2 && lb_find_command(argv[2])) return lb_print_help(argv[2]);
        usage(stdout);
        return LB_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lowbit %s\n", LB_VERSION);
        return LB_EXIT_OK;
    }
    const lb_command *c = lb_find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "lowbit: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return LB_EXIT_USAGE;
    }
    if (lb_dist_size() > 1 && !distributed(c->name)) {
        if (lb_dist_rank() == 0)
            fprintf(stderr, "lowbit %s: runs as one process; under mpirun only eval, calibrate, quantize and "
                            "sweep split their work (%d ranks here)\n", c->name, lb_dist_size());
        return LB_EXIT_USAGE;
    }
    if (lb_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return LB_EXIT_ERROR; /* rank 0 prints */
    lb_cli_install_signals();
    return c->run(argc - 1, argv + 1);
}

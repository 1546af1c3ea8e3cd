/* Training on a CPU: from scratch (`lowbit train`) and under quantization (`lowbit qat`).
 *
 * The data: text files tokenized once with the model's tokenizer into one stream of ids
 * (a BOS before each file), cached in a small file (lb_tokens_load_or_build). Training draws
 * windows of ctx+1 tokens at random offsets from a seeded generator whose state is part of
 * the checkpoint, so a resumed run sees the same batches as an uninterrupted one.
 * Validation is the mean cross-entropy over fixed, consecutive windows of another stream.
 *
 * The optimizer is AdamW (decoupled weight decay on matrices and embeddings, not on norms),
 * the global gradient norm clipped, the learning rate warmed up linearly and then decayed on
 * a cosine to min_lr_frac * lr. Checkpoints are GGUF files: the model's f32 tensors (so
 * eval/run/quantize read a checkpoint as a model), the Adam moments, and the loop's state
 * under lowbit.train.* keys. */
#ifndef LOWBIT_TRAIN_H
#define LOWBIT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data ---- */
typedef struct lb_tokens {
    int32_t *ids;
    int64_t  n;
} lb_tokens;

/* Tokenize the files (a BOS first in each when the vocabulary adds one); with cache_path,
 * reuse that file when it was written for the same files (sizes and names) and vocabulary,
 * else write it. */
lb_status lb_tokens_load_or_build(lb_tokens *out, const lb_vocab *v, const char *const *files,
                                  int32_t n_files, const char *cache_path, lb_error *err);
/* Read / write a token cache file (magic "LBTK"); the key identifies what it was built from. */
lb_status lb_tokens_read_cache(lb_tokens *out, const char *path, uint64_t key, int32_t n_vocab,
                               lb_error *err);
lb_status lb_tokens_write_cache(const lb_tokens *t, const char *path, uint64_t key, int32_t n_vocab,
                                lb_error *err);
void      lb_tokens_free(lb_tokens *t);

/* ---- the loop ---- */
typedef struct lb_train_opts {
    int32_t     batch;        /* sequences per micro-batch */
    int32_t     ctx;          /* tokens per sequence */
    int32_t     accum;        /* micro-batches per optimizer step */
    int64_t     steps;        /* optimizer steps in all */
    float       lr, min_lr_frac, weight_decay, clip, beta1, beta2, eps;
    int64_t     warmup;       /* steps */
    uint64_t    seed;
    int64_t     eval_every;   /* steps between validations (0: only at the end) */
    int32_t     eval_windows; /* validation windows of ctx tokens */
    int64_t     ckpt_every;   /* steps between checkpoints (0: only at the end) */
    const char *ckpt_path;    /* NULL: no checkpoints */
    const char *resume_path;  /* a checkpoint to continue from, or NULL */
    double      max_seconds;  /* stop (with a checkpoint) after this long; 0: no limit */
    int64_t     stop_at;      /* stop (with a checkpoint) after this step of the schedule; 0: none */
    /* progress and summary lines (no newline) for the caller to show; step: the step line a
     * terminal may redraw in place. NULL: quiet (the library never prints). */
    void      (*report)(void *user, const char *line, bool step);
    void       *report_user;
    FILE       *log;          /* one JSON object per line per log_every steps, or NULL */
    int64_t     log_every;
    bool        ternary;      /* from scratch only: BitNet b1.58, the block matrices ternary
                                 (absmean, lowbit's "ternary" type) and the inputs of the block
                                 linears int8 per token (absmax), straight-through gradients;
                                 written as TQ2_0 */
    const char *arch;         /* from scratch: the family (arch.h, lowbit's name), NULL: llama;
                                 mixtral and qwen3moe train their experts (cfg's expert fields) */
    float       moe_aux;      /* a mixture of experts' load-balancing loss weight (0.01) */
    const struct lb_model *init; /* continue from this model's weights (its family, shape and
                                    tying; cfg must be its config), or NULL: from scratch */
} lb_train_opts;

lb_train_opts lb_train_default_opts(void);

typedef struct lb_train_result {
    int64_t steps_done;
    int64_t tokens_seen;
    double  train_loss;    /* mean over the last logged interval */
    double  valid_loss;    /* last validation (NAN when none) */
    double  seconds;
    double  tokens_per_sec;
} lb_train_result;

/* Train a model from scratch with configuration cfg (n_ctx_train >= opts->ctx), or on from
 * opts->init's weights, on train and write it to out_path as GGUF in out_type (f32, f16,
 * bf16; ternary: the block matrices TQ2_0), with vocab as its tokenizer. valid may be NULL. */
lb_status lb_train_from_scratch(const lb_llama_config *cfg, bool tied, lb_vocab *vocab,
                                const lb_tokens *train, const lb_tokens *valid,
                                const lb_train_opts *opts, const char *out_path, lb_type out_type,
                                lb_train_result *res, lb_error *err);

/* ---- quantization-aware training ---- */
typedef enum lb_qat_method {
    LB_QAT_QAT       = 0, /* train weights and step sizes under fake quantization from the
                             unquantized model */
    LB_QAT_EFFICIENT = 1, /* EfficientQAT: Block-AP (each block, weights and steps, to the f32
                             block's outputs), then E2E-QP (codes frozen, steps end to end) */
    LB_QAT_QAFT      = 2, /* fine-tune a PTQ result (its own types), distilled from the f32
                             teacher */
} lb_qat_method;

typedef struct lb_qat_params {
    lb_qat_method   method;
    const char     *type;          /* a recipe ("q2_k", "int2_g32", ...); NULL: the input's
                                      own tensor types (QAFT from a quantized file) */
    bool            lsq;           /* learned step sizes where the format allows */
    bool            distill;       /* loss KL(teacher || model) (the default) instead of
                                      cross-entropy on the text */
    const lb_model *teacher;       /* the f32 reference; NULL: the input itself */
    float           scale_lr_mult; /* step sizes' learning rate / the weights' */
    lb_train_opts   opts;          /* the end-to-end phase (E2E-QP's for efficientqat) */
    int32_t         bap_windows;   /* Block-AP: calibration windows of opts.ctx tokens */
    int32_t         bap_epochs;
    float           bap_lr;        /* Block-AP weights' learning rate */
} lb_qat_params;

lb_qat_params lb_qat_default_params(lb_qat_method m);

/* Train `in` under quantization on `train` and write the quantized GGUF to out_path. */
lb_status lb_qat_run(const lb_model *in, const lb_qat_params *p, const lb_tokens *train,
                     const lb_tokens *valid, const char *out_path, lb_train_result *res,
                     lb_error *err);

#ifdef __cplusplus
}
#endif
#endif

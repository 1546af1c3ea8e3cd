/* Synthetic models: random weights in the shapes of real models, for size and speed work and
 * as test models of each architecture (arch.h). The file is a GGUF that lowbit and llama.cpp
 * load; it is written
 * as it is generated (a 7B file never sits in memory). Weights are normal with a spread per
 * output row (log-normal, sigma 0.3) and a few outlier input channels (1 in 256, x8); each
 * row is drawn from its own seeded stream, so the bytes depend on the seed only. */
#ifndef LOWBIT_SYNTH_H
#define LOWBIT_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_synth_params {
    lb_llama_config cfg;        /* the shape (lb_synth_shape gives the known ones) */
    lb_type         type;       /* every weight matrix, embedding and output included (a GGUF
                                   type whose block divides the rows); norms are f32 */
    uint64_t        seed;
    const char     *vocab_path; /* a tokenizer (any file lb_vocab_load_any reads), padded with
                                   unused pieces to cfg.n_vocab; NULL: a generated
                                   SentencePiece vocabulary (specials, bytes, letters, pairs) */
    lb_progress_fn  progress;   /* may be NULL: called as the values are written */
    void           *progress_user;
    const char     *arch;       /* an architecture of arch.h by lowbit's name ("llama", "qwen2",
                                   "mixtral"); NULL: llama. cfg.head_dim 0: n_embd / n_heads.
                                   A mixture of experts: cfg's expert fields, 0 for the defaults
                                   (lb_synth_moe_defaults) */
} lb_synth_params;

/* "tiny" (256 wide, 4 layers, 512 tokens), "1b" (TinyLlama-1.1B), "7b" (Llama-2-7B),
 * "8b" (Llama-3-8B). LB_ERR_PARAM for another name. */
lb_status lb_synth_shape(const char *name, lb_llama_config *cfg, lb_error *err);

/* A mixture of experts' sizes left 0 in c: 8 experts, 2 used per token, experts n_ff / 2 wide
 * (Mixtral's: n_ff), a shared expert n_ff wide (Qwen2-MoE). */
void lb_synth_moe_defaults(const lb_arch *a, lb_llama_config *c);

/* Write the model to path (through path.tmp). */
lb_status lb_synth_write(const char *path, const lb_synth_params *p, lb_error *err);

/* Sparse upcycling (Komatsuzaki et al., 2022): a mixture of experts made from a trained dense
 * model. Its attention, norms, embeddings and head as they are; each layer's FFN copied into
 * n_expert experts, each copy's weights times (1 + noise * N(0, 1)) so that the experts differ;
 * the router random and skewed as synth's. Renormalized over the chosen experts, the layer
 * computes the dense FFN when noise is 0. llama becomes mixtral, qwen3 qwen3moe. */
typedef struct lb_upcycle_params {
    int32_t  n_expert, n_expert_used; /* 0: 8 and 2 */
    float    noise;                   /* the experts' spread, e.g. 0.05 */
    uint64_t seed;
    lb_type  type;                    /* the matrices' storage: f32, f16 or bf16 */
} lb_upcycle_params;
lb_status lb_synth_upcycle(const char *path, const lb_model *dense, const lb_upcycle_params *p, lb_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* A model being trained (any family of arch.h but for RoPE scaling): every parameter f32 in one buffer (with its gradient
 * beside it), the activations of one micro-batch of B sequences of T tokens kept for the
 * backward pass, and the forward/backward of the whole model or of one block (Block-AP
 * trains a block alone).
 *
 * Parameters are "slots", in this order: token_embd [V, E], output_norm [E], output [V, E]
 * (empty when tied to the embedding), then per layer the architecture table's layer slots in
 * lb_layer's order: attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down, the biases, head
 * norms and post-norms, those the family does not have empty (shapes [out, in] row-major,
 * as GGUF stores them).
 *
 * Quantization-aware training plugs in at two points:
 *   - wf[s]: the weight slot s's products read in the forward pass (and in the input
 *     gradients of the backward): the parameter itself, or a fake-quantized copy the caller
 *     refreshes before each forward. Gradients always land in g (the gradient with respect
 *     to the weight the products used; the straight-through estimator is the caller's);
 *   - act_bits: the inputs of the block linears are quantized per token (absmax, symmetric,
 *     BitNet b1.58's activations) in the forward pass, with a straight-through gradient. */
#ifndef LB_TRAIN_TMODEL_H
#define LB_TRAIN_TMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "lowbit/model.h"
#include "moe_train.h"

enum {
    LB_TS_TOK_EMBD, LB_TS_OUTPUT_NORM, LB_TS_OUTPUT, LB_TS_GLOBAL, /* then per layer: */
};
/* A layer's slots are the architecture table's (arch.h): slot k is role LB_ROLE_LAYER_FIRST + k;
 * the training model fills Llama's and leaves the others empty (0 rows). */
#define LB_TL(role)     ((int)(role) - LB_ROLE_LAYER_FIRST)
#define LB_TL_COUNT     LB_LAYER_SLOTS
#define LB_TL_ATTN_NORM LB_TL(LB_ROLE_ATTN_NORM)
#define LB_TL_WQ        LB_TL(LB_ROLE_ATTN_Q)
#define LB_TL_WK        LB_TL(LB_ROLE_ATTN_K)
#define LB_TL_WV        LB_TL(LB_ROLE_ATTN_V)
#define LB_TL_WO        LB_TL(LB_ROLE_ATTN_OUTPUT)
#define LB_TL_FFN_NORM  LB_TL(LB_ROLE_FFN_NORM)
#define LB_TL_GATE      LB_TL(LB_ROLE_FFN_GATE)
#define LB_TL_UP        LB_TL(LB_ROLE_FFN_UP)
#define LB_TL_DOWN      LB_TL(LB_ROLE_FFN_DOWN)
#define LB_TL_BQ        LB_TL(LB_ROLE_ATTN_Q_BIAS)
#define LB_TL_BK        LB_TL(LB_ROLE_ATTN_K_BIAS)
#define LB_TL_BV        LB_TL(LB_ROLE_ATTN_V_BIAS)
#define LB_TL_QNORM     LB_TL(LB_ROLE_ATTN_Q_NORM)
#define LB_TL_KNORM     LB_TL(LB_ROLE_ATTN_K_NORM)
#define LB_TL_ATTN_POST LB_TL(LB_ROLE_ATTN_POST_NORM)
#define LB_TL_FFN_POST  LB_TL(LB_ROLE_FFN_POST_NORM)
#define LB_TSLOT(l, k)  (LB_TS_GLOBAL + (l) * LB_TL_COUNT + (k))

typedef struct lb_tslot {
    int64_t off;    /* into w and g */
    int64_t rows;   /* out features (1 for a norm) */
    int64_t cols;   /* in features / row length */
    bool    matrix; /* a weight matrix or the embedding: decayed, quantized by QAT */
    char    name[48]; /* GGUF name */
} lb_tslot;

/* One layer's saved activations (N = B*T rows); the families' extras: q and k before their
 * head norms (qr, kr, with rstd_q, rstd_k), the attention's and the FFN's outputs before their
 * post-norms (o, f, with rstd_o, rstd_f). */
typedef struct lb_tlayer_acts {
    float *x, *rstd1, *xn1, *q, *k, *v, *p, *att, *h, *rstd2, *xn2, *gate, *up, *act;
    float *qr, *kr, *rstd_q, *rstd_k, *o, *rstd_o, *f, *rstd_f;
    lb_tmoe_acts moe; /* a mixture of experts' routing and experts (moe_train.h) */
} lb_tlayer_acts;

typedef struct lb_tmodel {
    const lb_arch  *arch;          /* its family (arch.h): which slots, what the forward does */
    lb_llama_config cfg;
    bool            tied;
    int32_t         n_slots;
    lb_tslot       *slots;
    int64_t         n_params;
    float          *w, *g;         /* parameters and their gradients */
    const float   **wf;            /* per slot: the weights the forward reads (default w+off) */
    int32_t         act_bits;      /* 0: f32 activations; else per-token absmax (e.g. 8) */
    /* activations for micro-batches of B x T */
    int32_t         B, T;
    lb_tlayer_acts *acts;          /* n_layers */
    float          *xf, *rstdf, *xnf, *logits; /* final residual, norm, logits [N, V] */
    float          *dx, *dxn, *dq, *dk, *dv, *datt, *dgate, *dup, *dact; /* backward scratch */
    float          *dq2, *dk2, *dpost;            /* the head norms' and post-norms' */
    float          *capped;        /* [N, V] soft-capped logits (Gemma), for the backward */
    float          *rope_cos, *rope_sin; /* [T, D/2] */
    float          *rope_cos_swa, *rope_sin_swa; /* Gemma 3's windowed layers' (own base) */
    void           *act_block;
    int32_t        *moe_idx;       /* the layers' routing indices (moe_train.h) */
    float          *moe_scratch;   /* and the experts' backward scratch */
    float           moe_aux;       /* the load-balancing loss's weight (0: none): the loss adds
                                      moe_aux * tokens * lb_tmoe_balance of each layer */
    float           moe_scale;     /* the step's scale, for the backward */
} lb_tmodel;

/* A model of family arch (NULL: llama) and configuration cfg with weights drawn N(0, 0.02)
 * (wo and down scaled by 1/sqrt(2 n_layers)), norms 1, biases 0; tied: no separate output
 * matrix. */
lb_status lb_tmodel_init_random(lb_tmodel *tm, const lb_arch *arch, const lb_llama_config *cfg, bool tied,
                                uint64_t seed, lb_error *err);
/* The f32 copy of a loaded model's weights (any storage type, dequantized). */
lb_status lb_tmodel_init_from(lb_tmodel *tm, const lb_model *m, lb_error *err);
void      lb_tmodel_free(lb_tmodel *tm);

/* Allocate the activations for micro-batches of B sequences of T tokens (T <= the model's
 * context); called again with another size, it reallocates. */
lb_status lb_tmodel_set_batch(lb_tmodel *tm, int32_t B, int32_t T, lb_error *err);

/* The first layer's input of n tokens into x [n, E] (Gemma's scaled by sqrt(E)). */
void lb_tmodel_embed(const lb_tmodel *tm, const float *emb, const int32_t *tokens, int64_t n, float *x);
/* Forward over tokens [B*T] up to the logits (tm->logits, [B*T, V]). */
void lb_tmodel_forward(lb_tmodel *tm, const int32_t *tokens);
/* Forward + cross-entropy against targets [B*T] (-1: not counted) + backward: adds
 * scale * d(sum of losses)/dθ into g (scale = 1 / tokens of the whole step, typically).
 * Returns the summed loss; *count the counted targets. With teacher != NULL ([B*T, V]
 * logits) the loss is KL(teacher || model) summed over rows instead. */
double lb_tmodel_step(lb_tmodel *tm, const int32_t *tokens, const int32_t *targets,
                      const float *teacher, float scale, int64_t *count);
/* The load-balancing losses of the last forward (moe_aux * tokens * lb_tmoe_balance, summed over
 * the layers; 0 without experts): part of what lb_tmodel_step's gradient minimizes, not of the
 * losses it and lb_tmodel_loss return. */
double lb_tmodel_balance_loss(const lb_tmodel *tm);
/* Loss only (no gradients): summed cross-entropy, *count targets. */
double lb_tmodel_loss(lb_tmodel *tm, const int32_t *tokens, const int32_t *targets, int64_t *count);

/* One block alone: x [B*T, E] in, out [B*T, E] (may be x); keeps the activations of layer l. */
void lb_tmodel_block_forward(lb_tmodel *tm, int32_t l, const float *x, float *out);
/* Backward of block l from dout [B*T, E] (overwritten with d/dx): adds weight gradients. */
void lb_tmodel_block_backward(lb_tmodel *tm, int32_t l, float *dout);

/* An lb_model whose f32 tensors view tm's parameters (valid while tm lives and is not
 * reallocated), with vocab borrowed: save it with lb_model_save_gguf / lb_model_write_gguf.
 * Free with lb_model_free. */
lb_status lb_tmodel_as_model(const lb_tmodel *tm, lb_vocab *vocab, const char *name, lb_model **out,
                             lb_error *err);

#endif

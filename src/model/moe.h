/* A mixture of experts' FFN for the forward pass (moe.c): routing and the chosen experts. */
#ifndef LB_MODEL_MOE_H
#define LB_MODEL_MOE_H

#include <stdbool.h>

#include "kernels/matmul.h"
#include "lowbit/model.h"
#include "weights.h"

/* The forward pass's matrices and buffers the FFN works in (B: the context's batch). */
typedef struct lb_moe_io {
    lb_weights       *w;
    lb_matmul_mode    mode;
    float            *scratch;       /* the products' */
    float            *router;        /* [B, n_expert] */
    float            *xe, *oe;       /* [B, E]: an expert's tokens, its output */
    float            *gate, *up;     /* [B, the largest FFN] */
    int32_t          *sel, *pick;    /* [B, n_expert_used]: the chosen experts; an expert's choices */
    float            *selw;          /* [B, n_expert_used]: their weights */
    void            (*act)(float *g, const float *u, int64_t n); /* g = act(g) * u */
    lb_forward_hook   hook;          /* the context's (model.h), or NULL */
    void             *hook_user;
    lb_tensor_role    stop_at;       /* stop once the hook has seen this input (LB_ROLE_COUNT: never) */
    lb_forward_hook   probe;         /* lb_context_set_probe's, or NULL */
    void             *probe_user;
    const uint8_t    *probe_experts;
    uint64_t          read;          /* bytes of expert matrices multiplied so far */
} lb_moe_io;

#define LB_MOE_MAX_EXPERTS 4096 /* lb_model_validate's bound */

/* Softmax (or sigmoid: c->moe_gating) of each token's router logits [T, n_expert] (in place:
 * they become probabilities), the n_expert_used largest of them plus bias (NULL: none; within
 * c's chosen groups, if any) into sel, their probabilities into w (renormalized when norm, then
 * times c->moe_w_scale). */
void lb_moe_route(const lb_llama_config *c, bool norm, const float *bias, float *logits, int32_t T, int32_t *sel,
                  float *w);

/* out [T, E] = layer l's mixture of experts (and shared expert) of xn [T, E], the normed
 * FFN input (which the caller showed the hook as LB_ROLE_FFN_GATE). The hook sees each
 * expert's inputs and the shared expert's down input (or the probe, in a probe pass:
 * lb_context_set_probe); false: stopped at io->stop_at (out undefined). */
bool lb_moe_ffn(const lb_model *m, int32_t l, lb_moe_io *io, const float *xn, int32_t T, float *out);

#endif

/* A mixture of experts' FFN for training (moe_train.c): forward and backward of the routed
 * experts of one layer, as the inference forward computes them (model/moe.c: softmax, the
 * n_expert_used largest, renormalized when the family does), plus the gradient of a
 * load-balancing loss (Switch Transformer's: aux * X * sum_e f_e P_e, f_e the share of the
 * choices that went to expert e, P_e its mean probability) that keeps experts in use. */
#ifndef LB_TRAIN_MOE_TRAIN_H
#define LB_TRAIN_MOE_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lowbit/model.h"

/* One layer's saved routing and expert activations, for N tokens and K choices each; the
 * (token, choice) pairs are kept grouped by expert (order, start). */
typedef struct lb_tmoe_acts {
    float   *probs;  /* [N, X] */
    float   *w;      /* [N, K]: the chosen experts' weights */
    int32_t *sel;    /* [N, K] */
    int32_t *order;  /* [N*K]: pair t*K + k, grouped by expert, in token order within one */
    int32_t *start;  /* [X + 1]: expert e's pairs are order[start[e] .. start[e+1]) */
    float   *xe;     /* [N*K, E]: each pair's input, in order */
    float   *gate, *up, *act; /* [N*K, FX] */
    float   *eo;     /* [N*K, E]: each pair's expert output (unweighted) */
} lb_tmoe_acts;

/* The shape and weights: router [X, E], the experts' gate and up [X, FX, E], down [X, E, FX]
 * (GGUF's stacked layout, rows of E or FX values). */
typedef struct lb_tmoe {
    int64_t      N, E, FX;
    int32_t      X, K;
    bool         norm; /* renormalize the chosen weights (Mixtral, Qwen3-MoE) */
    const lb_llama_config *cfg; /* the router's settings (model/moe.h's lb_moe_route) */
    const float *wr, *wg, *wu, *wd;
} lb_tmoe;

/* Floats and int32s of one layer's activations. */
size_t lb_tmoe_acts_floats(const lb_tmoe *m);
size_t lb_tmoe_acts_ints(const lb_tmoe *m);
/* Floats of the backward's scratch (shared by the layers). */
size_t lb_tmoe_scratch_floats(const lb_tmoe *m);
/* Place one layer's activations in f (lb_tmoe_acts_floats) and i (lb_tmoe_acts_ints). */
void   lb_tmoe_acts_place(lb_tmoe_acts *a, const lb_tmoe *m, float *f, int32_t *i);

/* out [N, E] = the layer's experts of xn [N, E] (no residual); fills a. */
void lb_tmoe_forward(const lb_tmoe *m, lb_tmoe_acts *a, const float *xn, float *out);
/* The load-balancing loss of the last forward, per token: X * sum_e f_e P_e (1 when balanced). */
double lb_tmoe_balance(const lb_tmoe *m, const lb_tmoe_acts *a);
/* From dy [N, E] (the gradient at out): the weights' gradients added into gr, gg, gu, gd (the
 * router's through the chosen weights and the gradient of aux * N * lb_tmoe_balance, f_e held
 * as the piecewise constant it is), and dxn [N, E] written (=). */
void lb_tmoe_backward(const lb_tmoe *m, const lb_tmoe_acts *a, float aux, const float *dy, const float *xn,
                      float *gr, float *gg, float *gu, float *gd, float *dxn, float *scratch);

#endif

/* Fake quantization for quantization-aware training: before each forward pass every
 * quantized weight slot of the trained model is replaced (tm->wf) by its quantize-dequantize
 * image; after the backward pass the gradient with respect to that image becomes a gradient
 * of the latent weights (straight-through estimator) and of the step sizes.
 *
 * Two kinds of tensors:
 *   - uniform-grid types (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and lowbit's INTn with groups or per
 *     row): LSQ (Esser et al. 2020). Each group's step s (and minimum m for affine types) is
 *     a trained parameter, started at the format's own round-to-nearest choice:
 *       symmetric  v = w / s,        q = clamp(round(v), qmin, qmax),  ŵ = s q
 *       affine     v = (w - m) / s,  q = clamp(round(v), 0, qmax),     ŵ = s q + m
 *     ∂ŵ/∂w = 1 inside the range and 0 outside (clipped), ∂ŵ/∂s = q - v inside and q
 *     outside, ∂ŵ/∂m = 0 inside and 1 outside. s and m are rounded as the file stores them
 *     (f16 in blocks, f32 per row) in the forward pass, so the file holds exactly the
 *     trained model: lb_fq_store writes s, m and each q into the format's blocks.
 *   - every other type (k-quants, IQ4, TQ, NF4, FP8, ternary, ...): the format's own
 *     quantizer and dequantizer, the gradient passed straight through; the stored tensor is
 *     the format's quantization of the latent weights, which is what the forward pass saw.
 * Frozen codes (EfficientQAT's E2E-QP): q is fixed to its current value and only s and m
 * train (ŵ = s q [+ m]). */
#ifndef LB_TRAIN_FAKEQUANT_H
#define LB_TRAIN_FAKEQUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "optim.h"
#include "tmodel.h"

typedef struct lb_fq_tensor {
    int32_t  slot;
    lb_type  type;
    int64_t  rows, cols;
    bool     lsq;
    bool     affine;
    bool     f32_header;   /* per-row types: f32 s and m; blocks: f16 */
    int32_t  group;        /* values per step size */
    int32_t  qmin, qmax;
    float   *s, *m;        /* [rows * cols / group]; m NULL when symmetric */
    float   *gs, *gm;
    int16_t *codes;        /* frozen codes, or NULL */
    float   *wq;           /* the fake-quantized weights the forward reads */
    uint8_t *buf;          /* generic types: the quantized rows */
} lb_fq_tensor;

typedef struct lb_fakequant {
    lb_tmodel      *tm;
    lb_fq_tensor   *t;
    int32_t         n;
    lb_param_group *groups;   /* s and m of the LSQ tensors, for the optimizer */
    int32_t         n_groups;
    bool            frozen;
    int32_t         only_layer; /* >= 0: refresh and backward touch this layer's tensors only */
} lb_fakequant;

/* Fake-quantize every slot whose types[slot] is a quantized type (types: one per slot;
 * F32/F16/BF16 slots stay as they are). lsq = false: every tensor takes the generic path.
 * scale_lr_mult: the step sizes' learning rate relative to the weights'. */
lb_status lb_fq_init(lb_fakequant *fq, lb_tmodel *tm, const lb_type *types, bool lsq,
                     float scale_lr_mult, lb_error *err);
void      lb_fq_free(lb_fakequant *fq);

void lb_fq_refresh(lb_fakequant *fq);      /* before a forward pass */
void lb_fq_backward(lb_fakequant *fq);     /* after the backward passes of a step */
void lb_fq_after_update(lb_fakequant *fq); /* keep steps away from zero */
/* Fix the codes at their current values (E2E-QP); the latent weights stop mattering. */
lb_status lb_fq_freeze(lb_fakequant *fq, lb_error *err);
/* Re-fit the step sizes of the LSQ tensors of one layer (or all: layer < 0) to the latent
 * weights by the format's round-to-nearest rule. */
void lb_fq_reset_scales(lb_fakequant *fq, int32_t layer);

/* The stored bytes of fake-quantized slot i of fq->t (malloc'd into *out, *nbytes). */
lb_status lb_fq_store(const lb_fakequant *fq, int32_t i, void **out, size_t *nbytes, lb_error *err);

/* Hooks for lb_train_loop (user = fq). */
void lb_fq_hook_before(void *fq);
void lb_fq_hook_after_backward(void *fq);
void lb_fq_hook_after_update(void *fq);

#endif

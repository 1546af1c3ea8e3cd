/* The operations of the Llama family for training: each forward with the backward that
 * gives the gradients of its inputs (and of its weights), in f32, rows split across the
 * OpenMP threads (lb_threads_get), GEMMs through single-threaded OpenBLAS calls per thread.
 * Layout: activations are row-major [n, dim] with n = B*T tokens (sequence b's token t is
 * row b*T + t); weights are [out, in] as in GGUF (y = x · Wᵀ).
 * Conventions of the backward functions:
 *   - weight gradients (dw) are always ACCUMULATED (+=): gradient accumulation over steps
 *     and tied weights come for free; the caller zeroes them;
 *   - input gradients say in each comment whether they are written (=) or added (+=).
 * tests/unit/test_train_ops.c checks every backward against finite differences of an
 * independent f64 forward. */
#ifndef LB_TRAIN_OPS_H
#define LB_TRAIN_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* y[n, out] = x[n, in] · w[out, in]ᵀ */
void lb_op_linear_fwd(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out);
/* dx[n, in] = dy · w (or += when dx_add); dw[out, in] += dyᵀ · x. dx may be NULL (not
 * wanted), dw may be NULL (frozen weight). */
void lb_op_linear_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      int64_t n, int64_t in, int64_t out, bool dx_add);

/* y = w ⊙ x / sqrt(mean(x²) + eps) per row; rstd[n] keeps 1/sqrt(mean(x²) + eps). */
void lb_op_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int64_t n,
                       int64_t dim, float eps);
/* dx += ∂/∂x; dw += ∂/∂w (dw may be NULL). */
void lb_op_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                       const float *rstd, int64_t n, int64_t dim);

/* RoPE in place on x[n, n_heads * D], adjacent pairs (GGUF layout) rotated by the angle
 * pos * freq_j, pos = row % T; cos/sin tables [T, D/2] (entry pos*(D/2)+j). The backward
 * (dx = Rᵀ dy) is the same rotation by the negated angle, in place on the gradient. */
void lb_op_rope_fwd(float *x, int64_t n, int32_t T, int32_t n_heads, int32_t D, const float *cos_t,
                    const float *sin_t);
void lb_op_rope_bwd(float *dx, int64_t n, int32_t T, int32_t n_heads, int32_t D, const float *cos_t,
                    const float *sin_t);

/* How the scores are made: scale (0: 1/sqrt(D)); soft-capping c (0: none): scores become
 * c·tanh(s/c) before the mask; a sliding window w (0: none): token t sees t-w+1 .. t (Gemma,
 * Mistral). */
typedef struct lb_op_att {
    float   scale, softcap;
    int32_t window;
} lb_op_att;

/* Causal attention per sequence with grouped KV heads (head h reads KV head h / (H/KVH)):
 *   q [B*T, H*D], k and v [B*T, KVH*D], o [B*T, H*D];
 *   p [B, H, T, T]: the softmax probabilities (row t: zero outside what t sees), saved for the
 *   backward; scores = q kᵀ · scale, shaped by *a (may be NULL: plain causal attention). */
void lb_op_attention_fwd(float *o, float *p, const float *q, const float *k, const float *v,
                         int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t D, const lb_op_att *a);
/* dq, dk, dv written (=), from do_ and the saved p. */
void lb_op_attention_bwd(float *dq, float *dk, float *dv, const float *do_, const float *p,
                         const float *q, const float *k, const float *v, int32_t B, int32_t T,
                         int32_t H, int32_t KVH, int32_t D, const lb_op_att *a);

/* h = silu(g) ⊙ u over n values; backward writes dg and du (=). */
void lb_op_swiglu_fwd(float *h, const float *g, const float *u, int64_t n);
void lb_op_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n);

/* h = gelu(g) ⊙ u, GELU's tanh approximation (Gemma); backward writes dg and du (=). */
void lb_op_geglu_fwd(float *h, const float *g, const float *u, int64_t n);
void lb_op_geglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n);

/* y[t, :] += b (a bias over n rows of dim); backward: db += the column sums of dy. */
void lb_op_bias_fwd(float *y, const float *b, int64_t n, int64_t dim);
void lb_op_bias_bwd(float *db, const float *dy, int64_t n, int64_t dim);

/* x = c·tanh(x/c) in place over n values; backward: dy *= 1 - (y/c)² from the capped y. */
void lb_op_softcap_fwd(float *x, int64_t n, float c);
void lb_op_softcap_bwd(float *dy, const float *y, int64_t n, float c);

/* x[t, :] = emb[tokens[t], :]; backward: demb[tokens[t], :] += dx[t, :]. */
void lb_op_embed_fwd(float *x, const float *emb, const int32_t *tokens, int64_t n, int64_t dim);
void lb_op_embed_bwd(float *demb, const float *dx, const int32_t *tokens, int64_t n, int64_t dim);

/* Cross-entropy of logits[n, V] against targets (rows with target < 0 are ignored).
 * Returns the SUM of -log softmax(row)[target] over the counted rows (f64) and their number
 * in *count. When dlogits is not NULL it receives (=) scale * (softmax - onehot) for counted
 * rows and 0 for ignored ones; dlogits may be the logits buffer itself. */
double lb_op_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int64_t n,
                           int32_t V, float scale, int64_t *count);

/* Distillation: KL(teacher || student) per row, summed over the n rows (f64), the teacher
 * given as logits[n, V] too. dlogits (=, may alias the student's logits) receives
 * scale * (softmax(student) - softmax(teacher)). */
double lb_op_kl_distill(float *dlogits, const float *logits, const float *teacher, int64_t n,
                        int32_t V, float scale);

#endif

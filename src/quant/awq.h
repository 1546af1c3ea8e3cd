/* AWQ's two searches on one group of linears sharing an input (Lin et al., "AWQ", 2024),
 * on the input's second moment H = E[x x^T] (f32, [n, n]) instead of stored activations:
 * the output error of a quantized W is tr((W - Wq) H (W - Wq)^T) = E||W x - Wq x||^2.
 *   scales: s = mean|x|^alpha, normalized so that sqrt(max s * min s) = 1, alpha on a grid
 *           of LB_AWQ_GRID points in [0, 1] (0: s = 1, plain RTN), the alpha minimizing the
 *           group's summed error of Q(W diag s) diag(1/s);
 *   clip:   per row and block of the type, |w| clamped at r * max|w| (r = 1, 0.975, ..., 0.525),
 *           the blocks of a row in order, each taking the r minimizing the whole row's output
 *           error given the blocks before it (one pass of coordinate descent on d H d^T, the
 *           cross-block terms included: without them int2 clipping ran up the row errors'
 *           shared part, and babyllama int2_g32 lost to RTN).
 * The model-level method (folding s into the model, layer by layer) is method_awq.c. */
#ifndef LB_QUANT_AWQ_H
#define LB_QUANT_AWQ_H

#include "lowbit/quant.h"

#define LB_AWQ_GRID      20 /* alpha points in [0, 1] */
#define LB_AWQ_CLIP_GRID 20 /* clip ratios 1 .. 0.525 */

typedef struct lb_awq_linear {
    const float *W;          /* [n_out, n] f32, row-major */
    int64_t      n_out;
    lb_type      type;       /* planned storage type */
    const float *importance; /* [n] of the unscaled input (mean x^2), or NULL */
} lb_awq_linear;

/* Output error of W quantized to t, absolute: sum over rows of d H d^T with
 * d = W - Q(Wsrc diag s) diag(1/s) (Wsrc NULL: W; s NULL: 1); importance is scaled by 1/s^2
 * as the input is. *ref (may be NULL) receives tr(W H W^T). NAN when out of memory. */
double lb_awq_error(const float *W, const float *Wsrc, int64_t n_out, int64_t n, lb_type t,
                    const float *importance, const float *s, const float *H, double *ref);

/* The scale search over the group's nl linears: writes s [n] and *alpha; *e_best and *e_rtn
 * (alpha = 0) are the summed absolute errors. */
lb_status lb_awq_search_scales(const lb_awq_linear *ls, int nl, int64_t n, const float *mean_abs,
                               const float *H, float *s, float *alpha, double *e_best,
                               double *e_rtn, lb_error *err);

/* The clipping search on W [n_out, n] (in place), H of W's input (already scaled when W
 * is). Row-scaled types clip whole rows; whole-tensor types (one scale per tensor) are left
 * alone. *mean_ratio receives the mean clip ratio chosen (1: nothing clipped). */
lb_status lb_awq_clip(float *W, int64_t n_out, int64_t n, lb_type t, const float *importance,
                      const float *H, double *mean_ratio, lb_error *err);

#endif

/* Range estimation: where values are clipped before they are quantized. One set of four
 * estimators serves weight rows (quantize --range) and activations (W8A8 static --act, one
 * clip per tensor input from calibration):
 *   minmax    no clipping: the largest |x|
 *   pNN       the NNth percentile of |x| (p99.9: decimals allowed)
 *   mse       the clip minimizing the squared error after the quantizer's round trip (a grid
 *             of 20 clips from max|x| down to max|x|/20, then a golden-section search around
 *             the best); weights use the format's own quantizer and their importance
 *   kl        entropy calibration: the clip whose quantized histogram is nearest, in KL
 *             divergence, to the real one (TensorRT's search: 128 levels, thresholds from
 *             the histogram's 128th bin up). The histogram weighs each value by its
 *             magnitude |x| (times the importance, for weights): its share of what a linear
 *             layer sums, so that a few large values are not outweighed by millions of
 *             near-zero ones
 *   kl-count  the same on a histogram counting values, TensorRT's own (its first bin, the
 *             near-zero values, dropped as TensorRT does): LLM activations' peak at 0 then
 *             dominates and their large values are clipped hard (bench/README.md, section 12) */
#ifndef LOWBIT_RANGE_H
#define LOWBIT_RANGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_range_kind {
    LB_RANGE_MINMAX     = 0,
    LB_RANGE_PERCENTILE = 1,
    LB_RANGE_MSE        = 2,
    LB_RANGE_KL         = 3,
    LB_RANGE_KL_COUNT   = 4,
} lb_range_kind;

typedef struct lb_range {
    lb_range_kind kind;
    double        pct; /* for LB_RANGE_PERCENTILE, in (0, 100] */
} lb_range;

/* "minmax", "p99.9", "mse", "kl", "kl-count"; LB_ERR_PARAM otherwise. */
lb_status   lb_range_parse(const char *s, lb_range *out);
/* The name for metadata and logs, as parsed (static or into buf). */
const char *lb_range_name(const lb_range *r, char *buf, size_t cap);

/* Weights: the clip for one row of n values stored as type t (INFINITY: none), the
 * importance (per column, may be NULL) weighting its errors and energies. */
float lb_range_clip_row(const float *x, int64_t n, lb_type t, const lb_range *r,
                        const float *importance);
/* Clip each of nr rows of n values in place, as lb_range_clip_row chooses. */
void  lb_range_apply(float *rows, int64_t nr, int64_t n, lb_type t, const lb_range *r,
                     const float *importance);

#ifdef __cplusplus
}
#endif

#endif

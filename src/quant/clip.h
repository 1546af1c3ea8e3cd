/* The range estimators of lowbit/range.h on one description of the values to clip, shared by
 * weight rows (range.c) and activations (act_range.c). */
#ifndef LB_QUANT_CLIP_H
#define LB_QUANT_CLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "lowbit/range.h"

typedef struct lb_clip_sample {
    /* the histogram of |x| on [0, amax] in nb bins: how many values fall in each bin
     * (count) and their summed weight * |x| (mass; weight: importance, or 1) */
    int32_t       nb;
    float         amax;
    const double *count, *mass;
    /* the values themselves when the caller holds them (a weight row): exact percentiles */
    const float  *x;
    int64_t       n;
    /* the quantizer: its grid's magnitudes, zero included (int8: 128), and its squared error
     * after clipping at c (for mse; NULL: the symmetric uniform grid over the histogram,
     * lb_clip_hist_error) */
    int32_t       levels;
    double      (*error)(void *user, float c);
    void         *user;
} lb_clip_sample;

/* The clip r chooses for s, in (0, amax] (amax for minmax, or when nothing is gained). */
float lb_clip_choose(const lb_range *r, const lb_clip_sample *s);

/* Add n values x (weights w per value, may be NULL) to a histogram of nb bins on [0, amax]
 * (values past amax go into the last bin). */
void lb_clip_hist_add(double *count, double *mass, int32_t nb, float amax, const float *x,
                      int64_t n, const float *w);

/* The squared error of a histogram's values (at their bins' midpoints, four per bin) on a
 * symmetric uniform grid of `levels` magnitudes clipped at c: the mse error of activations. */
double lb_clip_hist_error(const double *count, int32_t nb, float amax, int32_t levels, float c);

/* ---- weights: what clipping did, for the per-block report ---- */
typedef struct lb_range_stats {
    int64_t rows, clipped;        /* rows seen, rows clipped */
    double  ratio_sum, ratio_min; /* each row's clip / max |w| (1 when not clipped) */
    double  err, err_minmax, norm; /* (importance-weighted) squared error of the rows as stored
                                    * and as the format stores them unclipped; sum of squares */
    bool    weighted;              /* by importance (a diagonal estimate of the output error) */
} lb_range_stats;

/* lb_range_apply, adding each row's clip to s (when not NULL; thread-safe). */
void lb_range_apply_stats(float *rows, int64_t nr, int64_t n, lb_type t, const lb_range *r,
                          const float *importance, lb_range_stats *s);
/* Add the errors of tensor t stored as type (q: its bytes) to s. Nothing when memory is short. */
void lb_range_stats_errors(lb_range_stats *s, const lb_tensor *t, lb_type type, const void *q,
                           const float *importance);

#endif

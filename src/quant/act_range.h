/* Static activation ranges for W8A8 (per block input, one clip range each), calibrated on
 * real activations: min/max (the largest |x|), a percentile of |x|, or TensorRT's entropy
 * calibration (the clip whose 128-level quantized histogram is nearest, in KL divergence, to
 * the 2048-bin histogram of |x|). LLM.int8's outlier columns are left out. */
#ifndef LB_QUANT_ACT_RANGE_H
#define LB_QUANT_ACT_RANGE_H

#include "lowbit/quant.h"

#define LB_ACT_HIST_BINS 2048
#define LB_ACT_KL_LEVELS 128 /* int8 symmetric: |q| in 0 .. 127 */

/* Fill aq->inputs[*].range by running the windows through m (whose own activation
 * quantization, if any, is not applied) with calibration a (not dynamic). */
lb_status lb_act_ranges(lb_actq *aq, const lb_model *m, const int32_t *windows, int32_t n_windows,
                        int32_t n_ctx, const lb_act_calib *a, lb_error *err);

/* The clip of a histogram of |x| (nb bins of width w from 0): KL (TensorRT) and percentile. */
float lb_act_kl_clip(const double *hist, int32_t nb, float w);
float lb_act_percentile_clip(const double *hist, int32_t nb, float w, double pct);

#endif

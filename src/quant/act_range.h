/* Static activation ranges for W8A8 (per block input, one clip range each), calibrated on
 * real activations by a range estimator (lowbit/range.h) on each input's histogram of |x|
 * (LB_ACT_HIST_BINS bins on [0, max |x|]). LLM.int8's outlier columns are left out. */
#ifndef LB_QUANT_ACT_RANGE_H
#define LB_QUANT_ACT_RANGE_H

#include "lowbit/quant.h"

#define LB_ACT_HIST_BINS 2048

/* Fill aq->inputs[*].range by running the windows through m (whose own activation
 * quantization, if any, is not applied) with calibration a (not dynamic); and amax
 * [n_layers * LB_INPUT_COUNT], when not NULL, with each input's max |x|. */
lb_status lb_act_ranges(lb_actq *aq, const lb_model *m, const int32_t *windows, int32_t n_windows,
                        int32_t n_ctx, const lb_act_calib *a, float *amax, lb_error *err);

#endif

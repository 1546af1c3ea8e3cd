/* Calibration: windows of real text run through the model, with statistics of every
 * linear layer's input accumulated on the way (forward hooks):
 *   per channel j: sum x_j^2 (the importance matrix llama.cpp's imatrix holds, as a mean),
 *   sum |x_j|, max |x_j|; optionally the Hessian H = sum x x^T (GPTQ's, up to 2/N).
 * Inputs are identified by (layer, input role): LB_ROLE_ATTN_Q (shared by q, k, v),
 * LB_ROLE_ATTN_OUTPUT, LB_ROLE_FFN_GATE (shared by gate, up), LB_ROLE_FFN_DOWN, and
 * LB_ROLE_OUTPUT (layer -1). */
#ifndef LOWBIT_CALIB_H
#define LOWBIT_CALIB_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_calib_params {
    int32_t  n_samples;  /* windows; <= 0: as many as the text holds (sequential) */
    int32_t  n_ctx;      /* tokens per window, BOS first */
    uint64_t seed;       /* random window starts; ignored when sequential */
    bool     sequential; /* consecutive non-overlapping windows from the start */
} lb_calib_params;

/* Tokenize text and cut it into windows: *out holds *n_windows x n_ctx tokens (malloc'd). */
lb_status lb_calib_windows(const lb_vocab *v, const char *text, size_t len,
                           const lb_calib_params *p, int32_t **out, int32_t *n_windows,
                           lb_error *err);

typedef struct lb_act_stats {
    int32_t        layer;
    lb_tensor_role role;
    int32_t        n;       /* channels (the linear's in_features) */
    int64_t        count;   /* tokens seen */
    double        *sum_x2;  /* [n] */
    double        *sum_abs; /* [n] */
    float         *max_abs; /* [n] */
    double        *H;       /* [n, n] sum x x^T, or NULL when not collected */
} lb_act_stats;

typedef struct lb_calib lb_calib;

/* Statistics for every input of m; hessians: also collect H (n^2 doubles per input). */
lb_status lb_calib_create(lb_calib **out, const lb_model *m, bool hessians, lb_error *err);
void      lb_calib_free(lb_calib *c); /* accepts NULL */

/* Accumulate only this input (layer, role), or everything with layer = LB_CALIB_ALL. */
#define LB_CALIB_ALL (-2)
void lb_calib_select(lb_calib *c, int32_t layer, lb_tensor_role role);
/* Forget what was accumulated for (layer, role) (or everything with LB_CALIB_ALL). */
void lb_calib_clear(lb_calib *c, int32_t layer, lb_tensor_role role);

/* Run the windows through ctx's model (ctx must hold n_ctx positions in one batch),
 * accumulating the selected statistics. With a layer limit set on ctx, forward passes stop
 * early. */
lb_status lb_calib_run(lb_calib *c, lb_context *ctx, const int32_t *windows, int32_t n_windows,
                       int32_t n_ctx, lb_error *err);

/* The statistics of the input that weight role `role` of `layer` multiplies (q, k, v share
 * one; gate and up share one; output: layer -1). NULL when there is none. */
const lb_act_stats *lb_calib_get(const lb_calib *c, int32_t layer, lb_tensor_role role);

/* Per-channel importance (mean x^2), n floats into out; false when no tokens were seen. */
bool lb_act_importance(const lb_act_stats *s, float *out);

#ifdef __cplusplus
}
#endif
#endif

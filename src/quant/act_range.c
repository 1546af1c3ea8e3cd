/* Static activation ranges (act_range.h): two passes over the calibration windows with a
 * forward hook, the first for each input's max |x|, the second for its histograms of |x| on
 * [0, max] (counts and masses; skipped for min/max); then each input's clip by the range
 * estimator (clip.h), the int8 grid's error measured on the histogram. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act_range.h"
#include "clip.h"
#include "core/fail.h"

typedef struct {
    const lb_actq *aq;
    float         *amax; /* [L * 4] */
    double        *hist; /* [L * 4][2][bins] counts and masses, or NULL in the first pass */
} range_state;

static void range_hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T,
                       int32_t n) {
    if (expert >= 0) return; /* W8A8 has no experts */
    range_state *r  = user;
    const int    in = lb_block_input_of(role);
    if (in < 0 || layer < 0 || layer >= r->aq->n_layers) return;
    const int64_t        k  = (int64_t)layer * LB_INPUT_COUNT + in;
    const lb_actq_input *ai = &r->aq->inputs[k];
    float                mx = r->amax[k];
    double              *h  = r->hist ? r->hist + k * 2 * LB_ACT_HIST_BINS : NULL;
    for (int32_t t = 0; t < T; t++) {
        const float *row = x + (size_t)t * (size_t)n;
        for (int32_t j0 = 0, o = 0; j0 < n;) { /* runs of columns between the outliers */
            const int32_t j1 = o < ai->n_outliers ? ai->outliers[o] : n;
            if (h) lb_clip_hist_add(h, h + LB_ACT_HIST_BINS, LB_ACT_HIST_BINS, mx, row + j0, j1 - j0, NULL);
            for (int32_t j = j0; !h && j < j1; j++) mx = fmaxf(mx, fabsf(row[j]));
            j0 = j1 + (j1 < n), o += j1 < n;
        }
    }
    r->amax[k] = mx;
}

static lb_status run_pass(lb_context *ctx, range_state *r, const int32_t *win, int32_t nw,
                          int32_t n_ctx, lb_error *err) {
    lb_context_set_hook(ctx, range_hook, r);
    lb_status st = LB_OK;
    for (int32_t w = 0; w < nw && !st; w++) {
        const float *logits;
        lb_context_reset(ctx);
        st = lb_forward(ctx, win + (size_t)w * (size_t)n_ctx, n_ctx, &logits, err);
    }
    lb_context_set_hook(ctx, NULL, NULL);
    return st;
}

lb_status lb_act_ranges(lb_actq *aq, const lb_model *m, const int32_t *windows, int32_t n_windows,
                        int32_t n_ctx, const lb_act_calib *a, float *amax, lb_error *err) {
    const int64_t ni  = (int64_t)aq->n_layers * LB_INPUT_COUNT;
    const int32_t nb  = LB_ACT_HIST_BINS;
    range_state   r   = { .aq = aq };
    lb_context   *ctx = NULL;
    lb_status     st  = LB_OK;
    r.amax            = calloc((size_t)ni, sizeof *r.amax);
    LB_GOTO_IF(!r.amax, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_context_create(&ctx, m, n_ctx, n_ctx, err));
    LB_TRY(run_pass(ctx, &r, windows, n_windows, n_ctx, err));
    if (a->range.kind != LB_RANGE_MINMAX) {
        r.hist = calloc((size_t)(ni * 2 * nb), sizeof *r.hist);
        LB_GOTO_IF(!r.hist, err, LB_ERR_NOMEM, "out of memory");
        LB_TRY(run_pass(ctx, &r, windows, n_windows, n_ctx, err));
    }
    for (int64_t k = 0; k < ni; k++) {
        const float mx = r.amax[k];
        float       c  = mx;
        if (r.hist && mx > 0) {
            const double  *h = r.hist + k * 2 * nb; /* mse: the int8 grid over the histogram */
            lb_clip_sample s = { .nb = nb, .amax = mx, .count = h, .mass = h + nb, .levels = 1 << (aq->bits - 1) };
            c = lb_clip_choose(&a->range, &s);
        }
        aq->inputs[k].range = c > 0 ? c : 1e-6f; /* an input never seen non-zero */
        if (amax) amax[k] = mx;
    }
fail:
    lb_context_free(ctx);
    free(r.amax);
    free(r.hist);
    return st;
}

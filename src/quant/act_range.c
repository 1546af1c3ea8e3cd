/* Static activation ranges (act_range.h): two passes over the calibration windows with a
 * forward hook, the first for each input's max |x|, the second for its histograms of |x| on
 * [0, max] (counts and masses; skipped for min/max); then each input's clip by the range
 * estimator (clip.h), the int8 grid's error measured on the histogram. Each window's go into
 * the sums whole, in window order; under MPI the windows go round the ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act_range.h"
#include "clip.h"
#include "core/dist.h"
#include "core/fail.h"

typedef struct {
    const lb_actq *aq;
    float         *amax; /* [L * 4] */
    double        *hist; /* [L * 4][2][bins] counts and masses, or NULL in the first pass */
    /* a window's, until it is whole (fold): so the sums take the windows in order on any
     * number of MPI ranks (a step runs window kR + r on rank r) */
    float         *w_amax;
    double        *w_hist, *all; /* [ni * 2 * bins]; every rank's (MPI) */
    int64_t        ni;
} range_state;

static void range_hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T,
                       int32_t n) {
    if (expert >= 0) return; /* W8A8 has no experts */
    range_state *r  = user;
    const int    in = lb_block_input_of(role);
    if (in < 0 || layer < 0 || layer >= r->aq->n_layers) return;
    const int64_t        k  = (int64_t)layer * LB_INPUT_COUNT + in;
    const lb_actq_input *ai = &r->aq->inputs[k];
    float                mx = r->hist ? r->amax[k] : r->w_amax[k]; /* the second pass bins [0, max] */
    double              *h  = r->hist ? r->w_hist + k * 2 * LB_ACT_HIST_BINS : NULL;
    for (int32_t t = 0; t < T; t++) {
        const float *row = x + (size_t)t * (size_t)n;
        for (int32_t j0 = 0, o = 0; j0 < n;) { /* runs of columns between the outliers */
            const int32_t j1 = o < ai->n_outliers ? ai->outliers[o] : n;
            if (h) lb_clip_hist_add(h, h + LB_ACT_HIST_BINS, LB_ACT_HIST_BINS, mx, row + j0, j1 - j0, NULL);
            for (int32_t j = j0; !h && j < j1; j++) mx = fmaxf(mx, fabsf(row[j]));
            j0 = j1 + (j1 < n), o += j1 < n;
        }
    }
    if (!h) r->w_amax[k] = mx;
}

/* the step's windows into amax (max) or hist (sums, in window order), their buffers cleared */
static lb_status fold(range_state *r, lb_error *err) {
    const int     R  = lb_dist_size();
    const size_t  nh = (size_t)r->ni * 2 * LB_ACT_HIST_BINS;
    const size_t  bytes = r->hist ? nh * sizeof *r->w_hist : (size_t)r->ni * sizeof *r->w_amax;
    const void   *src   = r->hist ? (const void *)r->w_hist : (const void *)r->w_amax;
    if (R > 1) LB_TRY_RET(lb_dist_allgather(src, bytes, r->all, err));
    for (int q = 0; q < R; q++) {
        const void *v = R > 1 ? (const char *)r->all + (size_t)q * bytes : src;
        if (r->hist)
            for (size_t i = 0; i < nh; i++) r->hist[i] += ((const double *)v)[i];
        else
            for (int64_t k = 0; k < r->ni; k++) r->amax[k] = fmaxf(r->amax[k], ((const float *)v)[k]);
    }
    if (r->hist) memset(r->w_hist, 0, nh * sizeof *r->w_hist);
    else memset(r->w_amax, 0, (size_t)r->ni * sizeof *r->w_amax);
    return LB_OK;
}

static lb_status run_pass(lb_context *ctx, range_state *r, const int32_t *win, int32_t nw,
                          int32_t n_ctx, lb_error *err) {
    const int R = lb_dist_size(), me = lb_dist_rank();
    lb_context_set_hook(ctx, range_hook, r);
    lb_status st = LB_OK;
    for (int32_t w0 = 0; w0 < nw && !st; w0 += R) {
        const float  *logits;
        const int32_t w = w0 + me;
        lb_status     sw = LB_OK;
        if (w < nw) {
            lb_context_reset(ctx);
            sw = lb_forward(ctx, win + (size_t)w * (size_t)n_ctx, n_ctx, &logits, err);
        }
        st = lb_dist_agree(sw, err);
        if (!st) st = fold(r, err);
    }
    lb_context_set_hook(ctx, NULL, NULL);
    return st;
}

lb_status lb_act_ranges(lb_actq *aq, const lb_model *m, const int32_t *windows, int32_t n_windows,
                        int32_t n_ctx, const lb_act_calib *a, float *amax, lb_error *err) {
    const int64_t ni  = (int64_t)aq->n_layers * LB_INPUT_COUNT;
    const int32_t nb  = LB_ACT_HIST_BINS;
    range_state   r   = { .aq = aq, .ni = ni };
    lb_context   *ctx = NULL;
    lb_status     st  = LB_OK;
    const size_t  nh  = (size_t)ni * 2 * (size_t)nb;
    r.amax            = calloc((size_t)ni, sizeof *r.amax);
    r.w_amax          = calloc((size_t)ni, sizeof *r.w_amax);
    r.all             = lb_dist_size() > 1 ? malloc((size_t)lb_dist_size() * nh * sizeof(double)) : NULL;
    LB_GOTO_IF(!r.amax || !r.w_amax || (lb_dist_size() > 1 && !r.all), err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_context_create(&ctx, m, n_ctx, n_ctx, err));
    LB_TRY(run_pass(ctx, &r, windows, n_windows, n_ctx, err));
    if (a->range.kind != LB_RANGE_MINMAX) {
        r.hist   = calloc(nh, sizeof *r.hist);
        r.w_hist = calloc(nh, sizeof *r.w_hist);
        LB_GOTO_IF(!r.hist || !r.w_hist, err, LB_ERR_NOMEM, "out of memory");
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
    free(r.w_amax);
    free(r.w_hist);
    free(r.all);
    return st;
}

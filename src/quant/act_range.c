/* Static activation ranges (act_range.h): two passes over the calibration windows with a
 * forward hook, the first for each input's max |x|, the second for its histogram of |x| on
 * [0, max] (skipped for min/max); then each input's clip from its histogram. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act_range.h"
#include "core/fail.h"

typedef struct {
    const lb_actq *aq;
    float         *amax; /* [L * 4] */
    double        *hist; /* [L * 4 * bins], or NULL in the first pass */
} range_state;

static void range_hook(void *user, int32_t layer, lb_tensor_role role, const float *x, int32_t T,
                       int32_t n) {
    range_state *r  = user;
    const int    in = lb_block_input_of(role);
    if (in < 0 || layer < 0 || layer >= r->aq->n_layers) return;
    const int64_t        k  = (int64_t)layer * LB_INPUT_COUNT + in;
    const lb_actq_input *ai = &r->aq->inputs[k];
    float                mx = r->amax[k];
    double              *h  = r->hist ? r->hist + k * LB_ACT_HIST_BINS : NULL;
    const float          iw = h && mx > 0 ? (float)LB_ACT_HIST_BINS / mx : 0;
    for (int32_t t = 0; t < T; t++)
        for (int32_t j = 0, o = 0; j < n; j++) {
            if (o < ai->n_outliers && ai->outliers[o] == j) {
                o++;
                continue;
            }
            const float a = fabsf(x[(size_t)t * (size_t)n + (size_t)j]);
            if (!h) {
                mx = a > mx ? a : mx;
            } else {
                int32_t b = (int32_t)(a * iw);
                h[b < LB_ACT_HIST_BINS ? b : LB_ACT_HIST_BINS - 1] += 1;
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

float lb_act_percentile_clip(const double *hist, int32_t nb, float w, double pct) {
    double total = 0, acc = 0;
    for (int32_t i = 0; i < nb; i++) total += hist[i];
    for (int32_t i = 0; i < nb; i++) {
        acc += hist[i];
        if (acc >= pct / 100.0 * total) return w * (float)(i + 1);
    }
    return w * (float)nb;
}

float lb_act_kl_clip(const double *hist, int32_t nb, float w) {
    double *p = malloc((size_t)nb * sizeof *p), *q = malloc((size_t)nb * sizeof *q);
    double  best = INFINITY, above = 0;
    int32_t best_i = nb;
    if (!p || !q) goto done;
    for (int32_t i = 0; i < nb; i++) above += hist[i];
    for (int32_t i = 0; i < LB_ACT_KL_LEVELS - 1 && i < nb; i++) above -= hist[i];
    for (int32_t i = LB_ACT_KL_LEVELS; i <= nb; i++) {
        above -= hist[i - 1]; /* now: the mass beyond bin i-1, clipped into it */
        double ps = 0, qs = 0;
        for (int32_t k = 0; k < i; k++) p[k] = hist[k];
        p[i - 1] += above;
        for (int32_t j = 0; j < LB_ACT_KL_LEVELS; j++) { /* i bins into 128 levels */
            const int32_t a = (int32_t)((int64_t)j * i / LB_ACT_KL_LEVELS);
            const int32_t b = (int32_t)((int64_t)(j + 1) * i / LB_ACT_KL_LEVELS);
            double        sum = 0;
            int32_t       nz  = 0;
            for (int32_t k = a; k < b; k++) sum += hist[k], nz += p[k] != 0;
            for (int32_t k = a; k < b; k++) q[k] = p[k] != 0 ? sum / nz : 0;
        }
        for (int32_t k = 0; k < i; k++) ps += p[k], qs += q[k];
        if (!(ps > 0) || !(qs > 0)) continue;
        double kl = 0;
        for (int32_t k = 0; k < i; k++) {
            if (p[k] == 0) continue;
            const double pk = p[k] / ps, qk = fmax(q[k] / qs, 1e-12);
            kl += pk * log(pk / qk);
        }
        if (kl < best) best = kl, best_i = i;
    }
done:
    free(p);
    free(q);
    return w * (float)best_i;
}

lb_status lb_act_ranges(lb_actq *aq, const lb_model *m, const int32_t *windows, int32_t n_windows,
                        int32_t n_ctx, const lb_act_calib *a, lb_error *err) {
    const int64_t ni  = (int64_t)aq->n_layers * LB_INPUT_COUNT;
    range_state   r   = { .aq = aq };
    lb_context   *ctx = NULL;
    lb_status     st  = LB_OK;
    r.amax            = calloc((size_t)ni, sizeof *r.amax);
    LB_GOTO_IF(!r.amax, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_context_create(&ctx, m, n_ctx, n_ctx, err));
    LB_TRY(run_pass(ctx, &r, windows, n_windows, n_ctx, err));
    if (a->kind != LB_ACT_MINMAX) {
        r.hist = calloc((size_t)(ni * LB_ACT_HIST_BINS), sizeof *r.hist);
        LB_GOTO_IF(!r.hist, err, LB_ERR_NOMEM, "out of memory");
        LB_TRY(run_pass(ctx, &r, windows, n_windows, n_ctx, err));
    }
    for (int64_t k = 0; k < ni; k++) {
        const float   mx = r.amax[k], w = mx / LB_ACT_HIST_BINS;
        const double *h  = r.hist ? r.hist + k * LB_ACT_HIST_BINS : NULL;
        float         c  = mx;
        if (h && mx > 0)
            c = a->kind == LB_ACT_KL ? lb_act_kl_clip(h, LB_ACT_HIST_BINS, w)
                                     : lb_act_percentile_clip(h, LB_ACT_HIST_BINS, w, a->pct);
        aq->inputs[k].range = c > 0 ? c : 1e-6f; /* an input never seen non-zero */
    }
fail:
    lb_context_free(ctx);
    free(r.amax);
    free(r.hist);
    return st;
}

/* W8A8 (recipe "w8a8": int8 weights per output channel, int8 activations): the methods
 * that prepare it, and the activation quantization written with the file (actq.h).
 *   rtn          naive: weights rounded per channel, activations as they come
 *   smoothquant  (Xiao et al. 2023) s_j = max|X_j|^alpha / max|W_j|^(1-alpha) (alpha 0.5) per
 *                input channel, folded exactly (fold.h) into attn_norm (q/k/v), ffn_norm
 *                (gate/up), and, as AWQ does, up's rows (down) and v's rows (o, without GQA):
 *                activation outliers move into the weights, which per-channel int8 absorbs
 *                better. The paper smooths the norm-fed inputs only; down's input
 *                (silu(gate) * up) has a Llama's widest activation ranges, and smoothing it
 *                halves stories260K's static-W8A8 KL divergence (bench/README.md)
 *   llm-int8     (Dettmers et al. 2022) input columns whose calibrated max |x| exceeds a
 *                threshold (6.0) stay f32, with the weight columns that multiply them: the
 *                int8 weights are stored here with those columns zeroed, and the f32 columns go
 *                into the file beside them (outliers are fixed at calibration, not per batch)
 * After the methods (lb_method_w8a8_acts): activations are dynamic per token, or static per
 * tensor with ranges calibrated on the model as the methods left it (act_range.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_range.h"
#include "core/fail.h"
#include "fold.h"
#include "quant_internal.h"

static bool is_w8a8(const lb_quant_params *p) { return !strcmp(p->recipe->name, "w8a8"); }

static lb_status need_w8a8(const lb_method_ctx *c, const char *name, lb_error *err) {
    LB_RETURN_IF(!is_w8a8(c->p), err, LB_ERR_PARAM, "method %s is a W8A8 method: use it with "
                 "--type w8a8", name);
    for (int32_t i = 0; i < c->n; i++)
        LB_RETURN_IF(c->data[i], err, LB_ERR_PARAM, "method %s changes the weights, so it must "
                     "come before methods that store them", name);
    return LB_OK;
}

/* max |x| per channel of every input of c->model on the calibration windows */
static lb_status calibrate_max(lb_method_ctx *c, lb_calib **cal, lb_error *err) {
    lb_context *ctx = NULL;
    lb_status   st  = LB_OK;
    const double t0 = lb_time_sec();
    *cal            = NULL;
    LB_TRY(lb_method_windows(c, err));
    LB_TRY(lb_context_create(&ctx, c->model, c->p->calib.n_ctx, c->p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(cal, c->model, false, err));
    LB_TRY(lb_calib_run(*cal, ctx, c->windows, c->n_windows, c->p->calib.n_ctx, err));
    c->summary->seconds_calib += lb_time_sec() - t0;
fail:
    lb_context_free(ctx);
    return st;
}

static lb_status actq_of(lb_method_ctx *c, lb_error *err) {
    if (c->actq) return LB_OK;
    return lb_actq_create(&c->actq, c->model->cfg.n_layers,
                          !c->p->act.calibrated ? LB_ACTQ_DYNAMIC : LB_ACTQ_STATIC, err);
}

lb_status lb_method_smoothquant(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p     = c->p;
    const double           alpha = p->smooth_alpha > 0 ? p->smooth_alpha : 0.5;
    lb_calib              *cal   = NULL;
    float                 *s = NULL, *wmax = NULL;
    lb_status              st;
    LB_TRY(need_w8a8(c, "smoothquant", err));
    LB_TRY(calibrate_max(c, &cal, err));
    const double t0 = lb_time_sec();
    if (!c->owned) {
        lb_model *work;
        LB_TRY(lb_model_clone_f32(c->model, &work, err));
        lb_method_set_model(c, work);
    }
    lb_model     *work = c->owned;
    const int64_t E = work->cfg.n_embd, F = work->cfg.n_ff, Q = (int64_t)work->cfg.n_heads * work->cfg.head_dim;
    const int64_t mx = E > F ? (E > Q ? E : Q) : (F > Q ? F : Q);
    s    = malloc((size_t)mx * sizeof *s);
    wmax = malloc((size_t)mx * sizeof *wmax);
    LB_GOTO_IF(!s || !wmax, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t l = 0; l < work->cfg.n_layers; l++)
        for (int g = 0; g < LB_INPUT_COUNT; g++) {
            const lb_block_input in = (lb_block_input)g;
            const lb_act_stats  *as = lb_calib_get(cal, l, lb_block_input_role(in));
            const int64_t        n  = as->n;
            lb_tensor_role       roles[3];
            const int            nr = lb_block_input_readers(work, l, in, roles);
            if (lb_fold_blocker(work, in)) {
                if (l == 0) lb_method_log(p, "%s: not smoothed (%s)", lb_block_input_name(in), lb_fold_blocker(work, in));
                continue;
            }
            memset(wmax, 0, (size_t)n * sizeof *wmax);
            for (int k = 0; k < nr; k++) {
                int64_t      n_out;
                const float *W = lb_fold_weight(work, l, roles[k], &n_out, NULL);
                for (int64_t r = 0; r < n_out; r++)
                    for (int64_t j = 0; j < n; j++) wmax[j] = fmaxf(wmax[j], fabsf(W[r * n + j]));
            }
            float xm0 = 0, xm1 = 0, wm0 = 0, wm1 = 0;
            for (int64_t j = 0; j < n; j++) {
                const float x = as->max_abs[j];
                s[j]          = x > 0 && wmax[j] > 0
                                    ? fmaxf((float)(pow(x, alpha) / pow(wmax[j], 1 - alpha)), 1e-5f)
                                    : 1.0f;
                xm0 = fmaxf(xm0, x), xm1 = fmaxf(xm1, x / s[j]);
                wm0 = fmaxf(wm0, wmax[j]), wm1 = fmaxf(wm1, wmax[j] * s[j]);
            }
            lb_fold_scales(work, l, in, s);
            for (int k = 0; k < nr; k++) { /* importance follows the input: 1/s^2 */
                const int32_t i = lb_method_find(c->tensors, c->n, l, roles[k]);
                if (i >= 0 && c->importance[i])
                    for (int64_t j = 0; j < n; j++) c->importance[i][j] /= s[j] * s[j];
            }
            lb_method_log(p, "blk.%d %-8s smoothed (alpha %.2f): max|x| %.3f -> %.3f, max|w| "
                          "%.3f -> %.3f", l, lb_block_input_name(in), alpha, (double)xm0,
                          (double)xm1, (double)wm0, (double)wm1);
        }
    c->summary->seconds_method += lb_time_sec() - t0;
fail:
    lb_calib_free(cal);
    free(s);
    free(wmax);
    return st;
}

/* the int8 weight of tensor i with the outlier columns zeroed, stored into c->data[i]; the
 * f32 columns into *cols [n_out, k] */
static lb_status split_weight(lb_method_ctx *c, int32_t i, const lb_actq_input *ai, float **cols,
                              lb_error *err) {
    const lb_tensor *t = c->tensors[i].t;
    const int64_t    n = t->ne[0], n_out = t->ne[1], k = ai->n_outliers;
    const lb_type    type = c->plans[i].type;
    const size_t     rs   = lb_row_size(type, n);
    float           *W = malloc((size_t)(n * n_out) * sizeof *W);
    *cols              = malloc((size_t)(k * n_out) * sizeof **cols);
    void *q            = malloc(rs * (size_t)n_out);
    if (!W || !*cols || !q) {
        free(W);
        free(q);
        return lb_fail(err, LB_ERR_NOMEM, "out of memory");
    }
    for (int64_t r = 0; r < n_out; r++) {
        lb_tensor_get_row_f32(t, r, W + r * n);
        for (int64_t o = 0; o < k; o++) {
            (*cols)[r * k + o]          = W[r * n + ai->outliers[o]];
            W[r * n + ai->outliers[o]] = 0.0f;
        }
    }
    lb_quantize_rows(type, q, W, n_out, n, c->importance[i]);
    free(W);
    c->data[i] = q;
    return LB_OK;
}

lb_status lb_method_llm_int8(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p   = c->p;
    const float            thr = (float)(p->outlier_threshold > 0 ? p->outlier_threshold : 6.0);
    lb_calib              *cal = NULL;
    lb_status              st;
    int32_t                total = 0, inputs = 0;
    LB_TRY(need_w8a8(c, "llm-int8", err));
    LB_TRY(calibrate_max(c, &cal, err));
    const double t0 = lb_time_sec();
    LB_TRY(actq_of(c, err));
    c->actq->outlier_threshold = thr;
    for (int32_t l = 0; l < c->model->cfg.n_layers; l++)
        for (int in = 0; in < LB_INPUT_COUNT; in++) {
            const lb_act_stats *as = lb_calib_get(cal, l, lb_block_input_role((lb_block_input)in));
            lb_actq_input      *ai = lb_actq_at(c->actq, l, (lb_block_input)in);
            int32_t             k  = 0;
            for (int32_t j = 0; j < as->n; j++) k += as->max_abs[j] > thr;
            if (k == 0 || ai->n_outliers) continue;
            ai->outliers = malloc((size_t)k * sizeof *ai->outliers);
            LB_GOTO_IF(!ai->outliers, err, LB_ERR_NOMEM, "out of memory");
            for (int32_t j = 0; j < as->n; j++)
                if (as->max_abs[j] > thr) ai->outliers[ai->n_outliers++] = j;
            lb_tensor_role roles[3];
            const int      nr = lb_block_input_readers(c->model, l, (lb_block_input)in, roles);
            lb_method_log(p, "blk.%d %-8s %d of %d columns above %.1f stay f32 (first: %d, max|x| %.2f)%s",
                          l, lb_block_input_name((lb_block_input)in), k, as->n, (double)thr,
                          ai->outliers[0], (double)as->max_abs[ai->outliers[0]],
                          2 * k > as->n ? "; most of the input: raise --outlier-threshold" : "");
            for (int r = 0; r < nr; r++) {
                const int32_t i = lb_method_find(c->tensors, c->n, l, roles[r]);
                LB_GOTO_IF(i < 0, err, LB_ERR_PARAM, "llm-int8: blk.%d has no %s", l, lb_role_stem(roles[r]));
                LB_TRY(split_weight(c, i, ai, &ai->w_outliers[r], err));
                /* the f32 columns are written beside the int8 rows: the true size and bpw */
                const int64_t n_out = c->tensors[i].t->ne[1];
                const size_t  extra = (size_t)k * (size_t)n_out * sizeof(float);
                c->summary->bytes_out += extra;
                lb_method_log(p, "%-24s %d of %d input columns kept in f32 (%lld x %d, %.1f KB)",
                              c->tensors[i].name, k, as->n, (long long)n_out, k, (double)extra / 1e3);
            }
            total += k, inputs++;
        }
    lb_method_log(p, "llm-int8: %d outlier columns in %d inputs (threshold %.1f); they are counted "
                  "in the size and bits per weight", total, inputs, (double)thr);
    c->summary->seconds_method += lb_time_sec() - t0;
fail:
    lb_calib_free(cal);
    return st;
}

lb_status lb_method_w8a8_acts(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p = c->p;
    if (!is_w8a8(p)) return LB_OK;
    lb_status st;
    LB_TRY(actq_of(c, err));
    lb_actq *aq = c->actq;
    aq->mode    = !p->act.calibrated ? LB_ACTQ_DYNAMIC : LB_ACTQ_STATIC;
    char buf[16];
    snprintf(aq->calibration, sizeof aq->calibration, "%s", lb_act_calib_name(&p->act, buf, sizeof buf));
    if (aq->mode == LB_ACTQ_DYNAMIC) return lb_w8a8_report(c, err);
    LB_RETURN_IF(!p->calib_text, err, LB_ERR_PARAM, "static activation ranges (--act %s) need "
                 "calibration text (--calib FILE)", aq->calibration);
    LB_TRY(lb_method_windows(c, err));
    const double t0 = lb_time_sec();
    float *amax = malloc((size_t)aq->n_layers * LB_INPUT_COUNT * sizeof *amax);
    LB_RETURN_IF(!amax, err, LB_ERR_NOMEM, "out of memory");
    st = lb_act_ranges(aq, c->model, c->windows, c->n_windows, p->calib.n_ctx, &p->act, amax, err);
    c->summary->seconds_calib += lb_time_sec() - t0;
    for (int32_t l = 0; !st && l < aq->n_layers; l++) { /* each clip against the max |x| seen */
        char line[160];
        int  len = 0;
        for (int in = 0; in < LB_INPUT_COUNT && len < (int)sizeof line; in++) {
            const float cl = lb_actq_at(aq, l, (lb_block_input)in)->range, mx = amax[l * LB_INPUT_COUNT + in];
            len += snprintf(line + len, sizeof line - (size_t)len, "%s %s %.3f/%.3f", in ? "," : "",
                            lb_block_input_name((lb_block_input)in), (double)cl, (double)mx);
        }
        lb_method_log(p, "blk.%d activation clip/max (%s):%s", l, aq->calibration, line);
    }
    free(amax);
    if (st) return st;
    LB_TRY(lb_w8a8_report(c, err));
fail:
    return st;
}

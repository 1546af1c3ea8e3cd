/* The per-layer report of a W8A8 quantization: for every linear, on (up to 8 of) the
 * calibration windows run through the model as the methods left it (smoothed, or with
 * LLM.int8's outlier columns), the relative output error ||X W^T - X' W'^T||^2 / ||X W^T||^2
 * of the int8 weights alone (X' = X), of the activation quantization alone (W' = W: per
 * token or with the static range, outlier columns in f32) and of both, as the file will run
 * them. X is each linear's input in the f32 model, so each figure is the layer's own error,
 * not what earlier layers passed on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/fail.h"
#include "quant_internal.h"

#define REPORT_WINDOWS 8

typedef struct {
    lb_method_ctx *c;
    double        *se;     /* [n][3] squared errors: weights, activations, both */
    double        *sy;     /* [n] squared outputs */
    float         *W, *Wq; /* [n_out, n] the weight as f32, as the file holds it */
    float         *xq;     /* [T, n] the quantized input */
    float         *Y[4];   /* [T, n_out] X W, X Wq, Xq W, Xq Wq */
    uint8_t       *q;      /* a tensor's stored bytes */
} report;

/* W (f32) and Wq (what the file holds: int8 rows, outlier columns back in f32) of tensor i */
static void weights_of(report *r, int32_t i, const lb_actq_input *ai, int reader) {
    const lb_tensor *t = r->c->tensors[i].t;
    const lb_type    type = r->c->plans[i].type;
    const int64_t    n = t->ne[0], n_out = t->ne[1];
    const size_t     rs = lb_row_size(type, n);
    for (int64_t o = 0; o < n_out; o++) lb_tensor_get_row_f32(t, o, r->W + o * n);
    const uint8_t *q = r->c->data[i];
    if (!q) {
        lb_quantize_rows(type, r->q, r->W, n_out, n, r->c->importance[i]);
        q = r->q;
    }
    for (int64_t o = 0; o < n_out; o++) {
        lb_type_get_traits(type)->to_float(r->Wq + o * n, q + (size_t)o * rs, n);
        for (int32_t k = 0; r->c->data[i] && k < ai->n_outliers; k++) /* stored as 0 */
            r->Wq[o * n + ai->outliers[k]] = ai->w_outliers[reader][o * ai->n_outliers + k];
    }
}

static void hook(void *user, int32_t layer, lb_tensor_role role, int32_t expert, const float *x, int32_t T, int32_t n) {
    if (expert >= 0) return; /* W8A8 has no experts */
    report   *r  = user;
    const int in = lb_block_input_of(role);
    if (layer < 0 || in < 0) return;
    const lb_actq_input *ai = lb_actq_at(r->c->actq, layer, (lb_block_input)in);
    memcpy(r->xq, x, (size_t)T * (size_t)n * sizeof *x);
    lb_actq_apply(r->c->actq, layer, role, r->xq, T, n);
    lb_tensor_role roles[3];
    const int      nr = lb_block_input_readers(r->c->model, layer, (lb_block_input)in, roles);
    for (int k = 0; k < nr; k++) {
        const int32_t i = lb_method_find(r->c->tensors, r->c->n, layer, roles[k]);
        if (i < 0 || !lb_type_get_traits(r->c->plans[i].type)->is_quantized) continue;
        const int64_t n_out = r->c->tensors[i].t->ne[1];
        weights_of(r, i, ai, k);
        const float *A[4] = { x, x, r->xq, r->xq }, *B[4] = { r->W, r->Wq, r->W, r->Wq };
        for (int p = 0; p < 4; p++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, (blasint)n_out, n, 1.0f, A[p], n,
                        B[p], n, 0.0f, r->Y[p], (blasint)n_out);
        for (int64_t e = 0; e < (int64_t)T * n_out; e++) {
            const double y = r->Y[0][e];
            r->sy[i] += y * y;
            for (int p = 1; p < 4; p++) r->se[i * 3 + p - 1] += (r->Y[p][e] - y) * (r->Y[p][e] - y);
        }
    }
}

lb_status lb_w8a8_report(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p = c->p;
    if (!p->calib_text) {
        lb_method_log(p, "w8a8: no calibration text, no per-layer output errors");
        return LB_OK;
    }
    const lb_llama_config *g  = &c->model->cfg;
    const int32_t          T  = p->calib.n_ctx;
    const int64_t          mx = g->n_ff > g->n_embd ? g->n_ff : g->n_embd;
    const int64_t          mo = mx > (int64_t)g->n_heads * g->head_dim ? mx : (int64_t)g->n_heads * g->head_dim;
    report                 r  = { .c = c };
    lb_context            *ctx = NULL;
    lb_status              st  = LB_OK;
    r.se = calloc((size_t)c->n * 3, sizeof *r.se);
    r.sy = calloc((size_t)c->n, sizeof *r.sy);
    r.W  = malloc((size_t)(mo * mo) * sizeof *r.W);
    r.Wq = malloc((size_t)(mo * mo) * sizeof *r.Wq);
    r.xq = malloc((size_t)T * (size_t)mo * sizeof *r.xq);
    r.q  = malloc(lb_row_size(LB_TYPE_F32, mo) * (size_t)mo);
    for (int k = 0; k < 4; k++) r.Y[k] = malloc((size_t)T * (size_t)mo * sizeof *r.Y[k]);
    LB_GOTO_IF(!r.se || !r.sy || !r.W || !r.Wq || !r.xq || !r.q || !r.Y[0] || !r.Y[1] || !r.Y[2] || !r.Y[3],
               err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_method_windows(c, err));
    const double t0 = lb_time_sec();
    LB_TRY(lb_context_create(&ctx, c->model, T, T, err));
    lb_context_set_hook(ctx, hook, &r);
    const int32_t nw = c->n_windows < REPORT_WINDOWS ? c->n_windows : REPORT_WINDOWS;
    for (int32_t w = 0; w < nw; w++) {
        const float *logits;
        lb_context_reset(ctx);
        LB_TRY(lb_forward(ctx, c->windows + (size_t)w * (size_t)T, T, &logits, err));
    }
    double sum[3] = { 0, 0, 0 };
    int    count  = 0;
    for (int32_t i = 0; i < c->n; i++) {
        if (!(r.sy[i] > 0)) continue;
        const double *e = r.se + i * 3;
        lb_method_log(p, "%-26s w8a8 output error: weights %.6f, activations %.6f, both %.6f",
                      c->tensors[i].name, e[0] / r.sy[i], e[1] / r.sy[i], e[2] / r.sy[i]);
        for (int k = 0; k < 3; k++) sum[k] += e[k] / r.sy[i];
        count++;
    }
    lb_method_log(p, "w8a8: %d matrices on %d windows, summed output error: weights %.5f, "
                  "activations %.5f, both %.5f", count, nw, sum[0], sum[1], sum[2]);
    c->summary->seconds_method += lb_time_sec() - t0;
fail:
    lb_context_free(ctx);
    free(r.se);
    free(r.sy);
    free(r.W);
    free(r.Wq);
    free(r.xq);
    free(r.q);
    for (int k = 0; k < 4; k++) free(r.Y[k]);
    return st;
}

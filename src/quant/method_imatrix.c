/* The imatrix method: one calibration pass over the unquantized model, then each tensor is
 * stored by its format's quantizer weighted by the per-channel importance of its input
 * (mean x^2), as llama-quantize --imatrix does with llama-imatrix's statistics. */
#include <stdlib.h>

#include "core/fail.h"
#include "quant_internal.h"

/* importance of every tensor from one calibration pass over the unquantized model */
lb_status lb_method_imatrix(lb_method_ctx *c, lb_error *err) {
    const lb_model        *m   = c->model;
    const lb_quant_params *p   = c->p;
    const lb_named_tensor *ts  = c->tensors;
    const int32_t          n   = c->n;
    float                **imp = c->importance;
    lb_quant_summary      *sum = c->summary;
    lb_context *ctx = NULL;
    lb_calib   *cal = NULL;
    lb_status   st  = LB_OK;
    const double t0 = lb_time_sec();
    LB_TRY(lb_method_windows(c, err));
    LB_TRY(lb_context_create(&ctx, m, p->calib.n_ctx, p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(&cal, m, false, err));
    LB_TRY(lb_calib_run(cal, ctx, c->windows, c->n_windows, p->calib.n_ctx, err));
    for (int32_t i = 0; i < n; i++) {
        const lb_act_stats *s = ts[i].t->ne[1] > 1 ? lb_calib_get(cal, ts[i].layer, ts[i].role) : NULL;
        if (!s) continue;
        imp[i] = malloc((size_t)s->n * sizeof *imp[i]);
        LB_GOTO_IF(!imp[i], err, LB_ERR_NOMEM, "out of memory");
        if (!lb_act_importance(s, imp[i])) {
            free(imp[i]);
            imp[i] = NULL;
        }
    }
    sum->seconds_calib = lb_time_sec() - t0;
fail:
    lb_calib_free(cal);
    lb_context_free(ctx);
    return st;
}


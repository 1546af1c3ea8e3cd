/* The imatrix method, on one block (engine.c): the statistics of the block's inputs on the
 * calibration windows through the unquantized model (the engine's second stream), then each
 * of its tensors is stored by its format's quantizer weighted by the per-channel importance of
 * its input (mean x^2), as llama-quantize --imatrix does with llama-imatrix's statistics. A tied
 * embedding takes the head's input statistics; a mixture of experts' experts each their own, from
 * the tokens routed to them (1s for one no token chose, as llama-quantize). */
#include <stdlib.h>

#include "core/fail.h"
#include "quant_internal.h"

lb_status lb_expert_importance(const lb_calib *cal, const lb_named_tensor *t, float **out, lb_error *err) {
    const int64_t n = t->t->ne[0], X = t->t->ne[2];
    bool          any = false;
    *out              = malloc((size_t)(n * X) * sizeof **out);
    LB_RETURN_IF(!*out, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < X; e++) {
        const lb_act_stats *s = lb_calib_get_expert(cal, t->layer, t->role, (int32_t)e);
        const bool          seen = s && s->n == n && lb_act_importance(s, *out + e * n);
        for (int64_t j = 0; !seen && j < n; j++) (*out)[e * n + j] = 1.0f;
        any |= seen;
    }
    if (!any) {
        free(*out);
        *out = NULL;
    }
    return LB_OK;
}

lb_status lb_method_imatrix(lb_method_ctx *c, lb_error *err) {
    const int32_t L    = c->model->cfg.n_layers;
    const bool    head = c->layer == L;
    const double  t0   = lb_time_sec();
    lb_status     st   = LB_OK;
    lb_calib_select(c->cal, LB_CALIB_ALL, LB_ROLE_COUNT); /* the pass runs this block alone */
    /* the chain's last block method: nothing after it reads the unquantized stream at this
     * layer, so the pass also advances it (the engine then does not) */
    LB_TRY(lb_calib_run_states(c->cal, c->ctx_r, c->sr, c->last && !head ? LB_CALIB_NEXT : LB_CALIB_STAY, err));
    for (int32_t i = 0; i < c->n; i++) {
        const lb_named_tensor *t = &c->tensors[i];
        const bool mine = head ? t->layer < 0 && (t->role == LB_ROLE_OUTPUT || t->role == LB_ROLE_TOKEN_EMBD)
                               : t->layer == c->layer;
        if (mine && (lb_slot_of(t->role)->flags & LB_SLOT_STACKED) && !c->importance[i]) { /* experts: each its own */
            LB_TRY(lb_expert_importance(c->cal, t, &c->importance[i], err));
            continue;
        }
        const lb_act_stats *s = mine && t->t->ne[1] > 1 ? lb_calib_get(c->cal, t->layer, t->role) : NULL;
        if (!s || c->importance[i]) continue;
        c->importance[i] = malloc((size_t)s->n * sizeof *c->importance[i]);
        LB_GOTO_IF(!c->importance[i], err, LB_ERR_NOMEM, "out of memory");
        if (!lb_act_importance(s, c->importance[i])) {
            free(c->importance[i]);
            c->importance[i] = NULL;
        }
    }
fail:
    c->summary->seconds_calib += lb_time_sec() - t0;
    return st;
}

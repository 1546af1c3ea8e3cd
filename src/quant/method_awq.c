/* The awq method: AWQ over a whole model, on a working f32 copy that replaces the model the
 * writer (or GPTQ after it: "awq+gptq") quantizes. Layer by layer, input by input (q/k/v,
 * then o, then gate/up, then down), each group's input statistics are gathered on the
 * working copy as it stands (earlier groups already scaled and clipped, earlier layers
 * already quantized when AWQ is the last method), then:
 *   1. scales: awq.h's alpha search, folded exactly into what produces the input (fold.h);
 *      o's scales would go into v's rows, impossible with grouped-query attention: skipped,
 *      and said so;
 *   2. clipping: awq.h's per-block clip search on each linear, with the input's statistics
 *      scaled as the input now is; not when GPTQ follows in the chain ("awq+gptq"): GPTQ
 *      compensates rounding errors against the weights it is given, and clipped weights would
 *      make it reproduce the clipping (measured: babyllama q4_0 KLD 0.022 with clipping,
 *      0.016 without, GPTQ alone 0.016).
 *   3. alone (not followed by GPTQ) AWQ is true-sequential, as GPTQ is: the token embedding
 *      is stored first and each layer's linears when the layer is done (data[i], in their
 *      planned types), the working copy taking the stored values, so every layer is
 *      calibrated on what the file holds before it.
 * Importance already given (--imatrix, or "imatrix+awq") is rescaled with the input (1/s^2).
 * Reports each linear's output error, RTN of the original against what AWQ leaves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "core/fail.h"
#include "fold.h"
#include "quant_internal.h"

static bool quantized(lb_type t) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    return tr && tr->is_quantized;
}

typedef struct {
    lb_method_ctx *c;
    lb_model      *work;
    float         *H;        /* [n, n] the input's E[x x^T], scaled as the input is */
    float         *mean_abs; /* [n] */
    float         *s;        /* [n] */
    float         *orig;     /* [3][stride] the readers before AWQ */
    size_t         stride;   /* max n_out * max n */
    double         err_rtn, err_awq;
    int32_t        n_reported;
    bool           clip;     /* false when GPTQ follows: it must aim at the unclipped weights */
} awq_state;

/* one input of one layer: search, fold, clip, report */
static lb_status awq_group(awq_state *a, int32_t l, lb_block_input in, const lb_act_stats *stats,
                           lb_error *err) {
    lb_method_ctx         *c = a->c;
    const lb_quant_params *p = c->p;
    lb_tensor_role         roles[3];
    const int              nr = lb_block_input_readers(in, roles);
    const int64_t          n  = stats->n;
    lb_awq_linear          ls[3];
    int32_t                idx[3];
    double                 e_rtn[3], ref[3];
    int                    nq = 0;
    lb_status              st = LB_OK;
    for (int k = 0; k < nr; k++) {
        const int32_t i = lb_method_find(c->tensors, c->n, l, roles[k]);
        if (i < 0 || !quantized(c->plans[i].type)) continue;
        int64_t n_out, nn;
        float  *W = lb_fold_weight(a->work, l, roles[k], &n_out, &nn);
        idx[nq]   = i;
        ls[nq++]  = (lb_awq_linear){ W, n_out, c->plans[i].type, c->importance[i] };
    }
    if (nq == 0) {
        lb_method_log(p, "blk.%d %-8s: no quantized linear reads it (nothing to do)", l,
                      lb_block_input_name(in));
        return LB_OK;
    }
    const double cnt = stats->count > 0 ? (double)stats->count : 1.0;
    for (int64_t i = 0; i < n * n; i++) a->H[i] = (float)(stats->H[i] / cnt);
    for (int64_t j = 0; j < n; j++) a->mean_abs[j] = (float)(stats->sum_abs[j] / cnt);
    for (int k = 0; k < nq; k++) {
        e_rtn[k] = lb_awq_error(ls[k].W, NULL, ls[k].n_out, n, ls[k].type, ls[k].importance, NULL,
                                a->H, &ref[k]);
        LB_RETURN_IF(isnan(e_rtn[k]), err, LB_ERR_NOMEM, "awq: out of memory");
        memcpy(a->orig + (size_t)k * a->stride, ls[k].W,
               (size_t)(ls[k].n_out * n) * sizeof(float));
    }
    const char *blocker = lb_fold_blocker(a->work, in);
    float       alpha   = 0;
    for (int64_t j = 0; j < n; j++) a->s[j] = 1.0f;
    if (blocker) {
        lb_method_log(p, "blk.%d %-8s: no AWQ scales (%s); clipping only", l,
                      lb_block_input_name(in), blocker);
    } else {
        double e_best, e0;
        LB_TRY(lb_awq_search_scales(ls, nq, n, a->mean_abs, a->H, a->s, &alpha, &e_best, &e0, err));
        if (alpha > 0) {
            lb_fold_scales(a->work, l, in, a->s);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) a->H[i * n + j] /= a->s[i] * a->s[j];
            for (int k = 0; k < nr; k++) { /* importance of every reader, quantized or not */
                const int32_t i = lb_method_find(c->tensors, c->n, l, roles[k]);
                if (i >= 0 && c->importance[i])
                    for (int64_t j = 0; j < n; j++) c->importance[i][j] /= a->s[j] * a->s[j];
            }
        }
    }
    for (int k = 0; k < nq; k++) {
        float *W     = (float *)ls[k].W;
        double ratio = 1;
        if (a->clip) LB_TRY(lb_awq_clip(W, ls[k].n_out, n, ls[k].type, ls[k].importance, a->H, &ratio, err));
        float *Wf = a->orig + (size_t)k * a->stride; /* unclipped, now scaled */
        for (int64_t r = 0; r < ls[k].n_out; r++)
            for (int64_t j = 0; j < n; j++) Wf[r * n + j] *= a->s[j];
        const double e = lb_awq_error(Wf, W, ls[k].n_out, n, ls[k].type, ls[k].importance, NULL,
                                      a->H, NULL);
        LB_RETURN_IF(isnan(e), err, LB_ERR_NOMEM, "awq: out of memory");
        const double rr = ref[k] > 0 ? e_rtn[k] / ref[k] : 0, ra = ref[k] > 0 ? e / ref[k] : 0;
        a->err_rtn += rr;
        a->err_awq += ra;
        a->n_reported++;
        lb_method_log(p, "%-26s %-6s output error: RTN %.6f -> AWQ %.6f (%.2fx)  alpha %.2f, "
                      "clip %.3f", c->tensors[idx[k]].name, lb_type_name(ls[k].type), rr, ra,
                      ra > 0 ? rr / ra : 0.0, (double)alpha, ratio);
    }
fail:
    return st;
}

/* AWQ alone is the last method: tensor i of the working copy is stored now, in its planned
 * type, and the working copy holds what the file will (later layers are calibrated on it) */
static lb_status awq_store(lb_method_ctx *c, int32_t i, lb_error *err) {
    if (!quantized(c->plans[i].type) || c->data[i]) return LB_OK;
    return lb_method_round_trip(c->tensors[i].t, c->plans[i].type, c->importance[i], &c->data[i], err);
}

lb_status lb_method_awq(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p   = c->p;
    lb_quant_summary      *sum = c->summary;
    lb_context            *ctx = NULL;
    lb_calib              *cal = NULL;
    lb_calib_states       *states = NULL; /* each window at the current layer's input */
    lb_status              st  = LB_OK;
    const char            *me  = strstr(p->method, "awq");
    awq_state              a   = { .c = c, .clip = !(me && strstr(me, "gptq")) };
    for (int32_t i = 0; i < c->n; i++)
        LB_RETURN_IF(c->data[i], err, LB_ERR_PARAM, "awq changes the weights, so it must come "
                     "before methods that store them (e.g. awq+gptq, not gptq+awq)");
    LB_TRY(lb_method_windows(c, err));
    if (!a.clip) lb_method_log(p, "awq: scales only; GPTQ follows and does the rounding (clipping "
                               "would change the weights GPTQ aims at)");
    if (!c->owned) {
        lb_model *work;
        LB_TRY(lb_model_clone_f32(c->model, &work, err));
        lb_method_set_model(c, work);
    }
    a.work                   = c->owned;
    const lb_llama_config *g = &a.work->cfg;
    const int64_t          E = g->n_embd, F = g->n_ff, Q = (int64_t)g->n_heads * g->head_dim;
    int64_t                mx = E > F ? E : F;
    mx                        = mx > Q ? mx : Q;
    int64_t max_out           = E > F ? E : F;
    max_out                   = max_out > Q ? max_out : Q;
    a.H        = malloc((size_t)(mx * mx) * sizeof *a.H);
    a.mean_abs = malloc((size_t)mx * sizeof *a.mean_abs);
    a.s        = malloc((size_t)mx * sizeof *a.s);
    a.stride   = (size_t)(max_out * mx);
    a.orig     = malloc(3 * a.stride * sizeof *a.orig);
    LB_GOTO_IF(!a.H || !a.mean_abs || !a.s || !a.orig, err, LB_ERR_NOMEM, "awq: out of memory");
    LB_TRY(lb_context_create(&ctx, a.work, p->calib.n_ctx, p->calib.n_ctx, err));
    LB_TRY(lb_calib_create(&cal, a.work, true, err));
    lb_progress bar;
    if (p->progress) lb_progress_begin(&bar, "awq", g->n_layers);
    const int32_t ie = lb_method_find(c->tensors, c->n, -1, LB_ROLE_TOKEN_EMBD);
    if (a.clip && ie >= 0) LB_TRY(awq_store(c, ie, err));
    LB_TRY(lb_calib_states_create(&states, a.work, c->windows, c->n_windows, p->calib.n_ctx, err));
    for (int32_t l = 0; l < g->n_layers; l++) {
        for (int in = 0; in < LB_INPUT_COUNT; in++) {
            const lb_tensor_role role = lb_block_input_role((lb_block_input)in);
            const double         t0   = lb_time_sec();
            lb_calib_select(cal, l, role);
            lb_calib_clear(cal, l, role);
            LB_TRY(lb_calib_run_states(cal, ctx, states, err));
            const double t1 = lb_time_sec();
            sum->seconds_calib += t1 - t0;
            LB_TRY(awq_group(&a, l, (lb_block_input)in, lb_calib_get(cal, l, role), err));
            sum->seconds_method += lb_time_sec() - t1;
        }
        for (int32_t i = 0; a.clip && i < c->n; i++)
            if (c->tensors[i].layer == l) LB_TRY(awq_store(c, i, err));
        const double t0 = lb_time_sec(); /* the next layer's inputs, through this one as it is now */
        if (l + 1 < g->n_layers) LB_TRY(lb_calib_states_advance(states, ctx, err));
        sum->seconds_calib += lb_time_sec() - t0;
        if (p->progress) lb_progress_update(&bar, l + 1);
    }
    if (p->progress) lb_progress_end(&bar);
    sum->err_rtn += a.err_rtn;
    sum->err_method += a.err_awq;
    lb_method_log(p, "awq: %d matrices, summed output error RTN %.5f -> AWQ %.5f (%.2fx)",
                  a.n_reported, a.err_rtn, a.err_awq, a.err_awq > 0 ? a.err_rtn / a.err_awq : 0.0);
fail:
    lb_calib_states_free(states);
    lb_calib_free(cal);
    lb_context_free(ctx);
    free(a.H);
    free(a.mean_abs);
    free(a.s);
    free(a.orig);
    return st;
}

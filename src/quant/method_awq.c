/* The awq method, on one block (engine.c). Input by input (q/k/v, then o, then gate/up, then
 * down), each group's statistics are gathered on the block as it stands (earlier groups
 * already scaled and clipped), then:
 *   1. scales: awq.h's alpha search, folded exactly into what produces the input (fold.h);
 *      o's scales would go into v's rows, impossible with grouped-query attention: skipped,
 *      and said so;
 *   2. clipping: awq.h's per-block clip search on each linear, with the input's statistics
 *      scaled as the input now is; not when GPTQ follows in the chain ("awq+gptq"): GPTQ
 *      compensates rounding errors against the weights it is given, and clipped weights would
 *      make it reproduce the clipping (measured: babyllama q4_0 KLD 0.022 with clipping,
 *      0.016 without, GPTQ alone 0.016).
 *   3. last in the chain, AWQ is true-sequential, as GPTQ is: it runs on the engine's quantized
 *      stream and stores the block's linears when the block is done (the embedding is stored
 *      before the layers), so every block is calibrated on what the file holds before it.
 *      Followed by GPTQ, it runs on the unquantized stream and changes the unquantized block,
 *      which GPTQ then quantizes.
 * Importance already given (--imatrix, or "imatrix+awq") is rescaled with the input (1/s^2).
 * Reports each linear's output error, RTN of the original against what AWQ leaves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awq.h"
#include "core/dist.h"
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

/* lb_awq_clip; under MPI on a share of the rows each (a row's clip is its own), gathered on
 * every rank; the mean ratio over the ranks' rows */
static lb_status clip_rows(float *W, int64_t n_out, int64_t n, lb_type t, const float *importance, const float *H,
                           double *ratio, lb_error *err) {
    if (lb_dist_size() == 1 || lb_type_get_traits(t)->whole_tensor)
        return lb_awq_clip(W, n_out, n, t, importance, H, ratio, err);
    int64_t lo, hi;
    lb_dist_share_rows(n_out, 1, lb_dist_rank(), &lo, &hi);
    LB_TRY_RET(lb_dist_agree(lb_awq_clip(W + lo * n, hi - lo, n, t, importance, H, ratio, err), err));
    double sum = hi > lo ? *ratio * (double)(hi - lo) : 0.0; /* no rows: no ratio (0/0) */
    LB_TRY_RET(lb_dist_gather_rows(W, n_out, (size_t)n * sizeof *W, 1, err));
    LB_TRY_RET(lb_dist_sum(&sum, 1, err));
    *ratio = sum / (double)n_out;
    return LB_OK;
}

/* one input of one layer: search, fold, clip, report */
static lb_status awq_group(awq_state *a, int32_t l, lb_block_input in, const lb_act_stats *stats,
                           lb_error *err) {
    lb_method_ctx         *c = a->c;
    const lb_quant_params *p = c->p;
    lb_tensor_role         roles[3];
    const int              nr = lb_block_input_readers(c->model, l, in, roles);
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
        if (a->clip) LB_TRY(clip_rows(W, ls[k].n_out, n, ls[k].type, ls[k].importance, a->H, &ratio, err));
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

lb_status lb_method_awq(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p   = c->p;
    lb_quant_summary      *sum = c->summary;
    lb_context            *ctx;
    lb_calib_states       *states;
    lb_status              st  = LB_OK;
    awq_state              a   = { .c = c, .clip = !c->stored_later };
    const int32_t          l   = c->layer;
    if (l >= c->model->cfg.n_layers) { /* the head: AWQ has no scales for it; the totals */
        if (c->last) {
            sum->err_rtn += c->awq_rtn;
            sum->err_method += c->awq_err;
        }
        lb_method_log(p, "awq: %d matrices, summed output error RTN %.5f -> AWQ %.5f (%.2fx)", c->awq_n,
                      c->awq_rtn, c->awq_err, c->awq_err > 0 ? c->awq_rtn / c->awq_err : 0.0);
        return LB_OK;
    }
    if (l == 0 && !a.clip)
        lb_method_log(p, "awq: scales only; GPTQ follows and does the rounding (clipping would change "
                      "the weights GPTQ aims at)");
    lb_engine_target(c, &a.work, &ctx, &states);
    const lb_llama_config *g = &a.work->cfg;
    const int64_t          E = g->n_embd, F = g->n_ff, Q = (int64_t)g->n_heads * g->head_dim;
    int64_t                mx = E > F ? E : F;
    mx                        = mx > Q ? mx : Q;
    a.H        = malloc((size_t)(mx * mx) * sizeof *a.H);
    a.mean_abs = malloc((size_t)mx * sizeof *a.mean_abs);
    a.s        = malloc((size_t)mx * sizeof *a.s);
    a.stride   = (size_t)(E * (F > Q ? (F > E ? F : E) : (Q > E ? Q : E))); /* the largest linear */
    a.orig     = malloc(3 * a.stride * sizeof *a.orig);
    LB_GOTO_IF(!a.H || !a.mean_abs || !a.s || !a.orig, err, LB_ERR_NOMEM, "awq: out of memory");
    for (int in = 0; in < LB_INPUT_COUNT; in++) {
        const lb_tensor_role role = lb_block_input_role((lb_block_input)in);
        const double         t0   = lb_time_sec();
        lb_calib_select(c->cal_h, l, role);
        LB_TRY(lb_calib_clear(c->cal_h, l, role, err));
        LB_TRY(lb_calib_run_states(c->cal_h, ctx, states, LB_CALIB_STAY, err));
        const double t1 = lb_time_sec();
        sum->seconds_calib += t1 - t0;
        st = awq_group(&a, l, (lb_block_input)in, lb_calib_get(c->cal_h, l, role), err);
        lb_calib_release(c->cal_h, l, role);
        if (st) goto fail;
        sum->seconds_method += lb_time_sec() - t1;
    }
    for (int32_t i = 0; c->last && i < c->n; i++) /* stored now: the next block's inputs come through them */
        if (c->tensors[i].layer == l && quantized(c->plans[i].type)) LB_TRY(lb_engine_store(c, i, err));
    c->awq_rtn += a.err_rtn;
    c->awq_err += a.err_awq;
    c->awq_n += a.n_reported;
    c->block_rtn += a.err_rtn;
    c->block_method += a.err_awq;
fail:
    free(a.H);
    free(a.mean_abs);
    free(a.s);
    free(a.orig);
    return st;
}

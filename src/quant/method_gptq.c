/* GPTQ on one block (engine.c), true-sequential: the block's inputs come through the blocks
 * before it as the file holds them (the engine's quantized stream), and within a block q/k/v,
 * then o, then gate/up, then down, each group's statistics gathered on the block as quantized
 * so far. The target is the unquantized model's output (unless self_target): the same windows
 * run through the unquantized model beside (the engine's second stream), and each weight is
 * refit to the quantized inputs first (lb_gptq_retarget), so GPTQ also makes up for the error
 * earlier layers passed on. The token embedding is stored by the engine before the layers
 * (rounded to nearest, as the file holds it), the output head comes last (a tied one is the
 * embedding, already fixed: GPTQ on it, last, left every layer calibrated on f32 embeddings:
 * babyllama int3_g32 KLD 0.92 against 0.60 this way; with a q8_0 embedding, at 4 bits, within 5%
 * either way). Each matrix whose type has blocks (or per-row or per-tensor scales and grid
 * access) goes through lb_gptq_quantize (gptq.c); others are stored by their format's
 * quantizer. Reports each matrix's output error, RTN against GPTQ. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/fail.h"
#include "formats/grid.h"
#include "quant_internal.h"

/* GPTQ can take the tensor: a block type whose blocks divide its rows, or a row-scaled type
 * (per channel, per tensor) with grid access, the row being its block */
bool lb_gptq_able(lb_type t, int64_t ncols) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (!tr || !tr->is_quantized) return false;
    if (tr->row_size) return lb_type_grid(t) != NULL;
    return tr->block_size > 1 && ncols % tr->block_size == 0;
}

/* The reports' output errors, RTN of the original against GPTQ's result, on a sample of rows:
 * every step-th row (report_step), so a report costs about REPORT_ROWS rows' quadratic forms
 * (n^2 each) whatever the matrix. On every row they cost as much as the refit and GPTQ together
 * on the 1b shape (and 10 s for its output head). The original's rows are read again from the
 * unquantized model; on the f32 target the sums take w A w (A = sum X_ref^T X_ref: the
 * calibration's ||X_ref w||^2 of the same rows, lb_calib_ref_rows) and W C, else H alone. */
typedef struct { /* doubles only: summed over the ranks as an array (lb_dist_sum) */
    double num_rtn, num_gq, den, wcq_rtn, wcq_gq;
    double waw; /* sum over the sampled rows of w A w (the f32 target) */
} err_sums;
#define ERR_SUMS_N  (sizeof(err_sums) / sizeof(double))
#define REPORT_ROWS 512

/* the output errors, RTN and GPTQ, from the sums */
static void error_of(const err_sums *e, bool target, double *e_rtn, double *e_gq) {
    if (target) {
        *e_rtn = e->waw > 0 ? (e->waw - 2 * e->wcq_rtn + e->num_rtn) / e->waw : 0;
        *e_gq  = e->waw > 0 ? (e->waw - 2 * e->wcq_gq + e->num_gq) / e->waw : 0;
    } else {
        *e_rtn = e->den > 0 ? e->num_rtn / e->den : 0;
        *e_gq  = e->den > 0 ? e->num_gq / e->den : 0;
    }
}

/* the reports' rows of a tensor of nr rows: every step-th */
static int64_t report_step(int64_t nr) { return nr <= REPORT_ROWS ? 1 : nr / REPORT_ROWS; }

/* the first sampled row at or after lo, and how many of [lo, hi) are sampled */
static int64_t first_sampled(int64_t lo, int64_t step) { return (lo + step - 1) / step * step; }
static int64_t n_sampled(int64_t lo, int64_t hi, int64_t step) {
    return hi > first_sampled(lo, step) ? (hi - 1 - first_sampled(lo, step)) / step + 1 : 0;
}

/* rows [lo, hi) of X (n wide) that the reports take, packed into out; their count */
static int64_t sample_rows(const float *X, int64_t lo, int64_t hi, int64_t step, int64_t n, float *out) {
    int64_t k = 0;
    for (int64_t r = first_sampled(lo, step); r < hi; r += step, k++)
        memcpy(out + k * n, X + (r - lo) * n, (size_t)n * sizeof *out);
    return k;
}

/* the sums over the sampled rows of [lo, hi): Wq from row lo, WC the sampled rows' W C. RTN of
 * a type whose scale spans the tensor (never split: [lo, hi) is all of it) takes every row,
 * then the sampled ones' */
static lb_status errors(lb_method_ctx *c, int32_t i, int64_t lo, int64_t hi, const float *Wq, const double *H,
                        const float *WC, err_sums *out, lb_error *err) {
    const lb_named_tensor *nt   = &c->tensors[i];
    const lb_tensor       *src  = lb_model_tensor(c->ref, nt->layer, nt->role); /* the weights GPTQ was given */
    const lb_type          type = c->plans[i].type;
    const bool             whole = lb_type_get_traits(type)->whole_tensor;
    const int64_t          n = src->ne[0], step = report_step(src->ne[1]);
    const int64_t          m = n_sampled(lo, hi, step), mq = whole ? hi - lo : m; /* the rows RTN takes */
    const size_t           rs = lb_row_size(type, n);
    float                 *o = malloc((size_t)((mq ? mq : 1) * n) * sizeof *o), *q = malloc((size_t)((m ? m : 1) * n) * sizeof *q);
    float                 *g = malloc((size_t)((m ? m : 1) * n) * sizeof *g);
    uint8_t               *qb = malloc(rs * (size_t)(mq ? mq : 1));
    err_sums               e  = { 0 };
    lb_status              st = LB_OK;
    LB_GOTO_IF(!o || !q || !g || !qb, err, LB_ERR_NOMEM, "out of memory");
    for (int64_t k = 0, r = whole ? lo : first_sampled(lo, step); k < mq; k++, r += whole ? 1 : step)
        lb_tensor_get_row_f32(src, r, o + k * n);
    lb_quantize_rows(type, qb, o, mq, n, NULL); /* RTN, for the comparison */
    for (int64_t k = 0, r = first_sampled(lo, step); k < m; k++, r += step) {
        const int64_t at = whole ? r - lo : k; /* (at >= k: o's sampled rows move down in order) */
        lb_type_get_traits(type)->to_float(q + k * n, qb + (size_t)at * rs, n);
        if (at != k) memcpy(o + k * n, o + at * n, (size_t)n * sizeof *o);
    }
    sample_rows(Wq, lo, hi, step, n, g);
    if (WC) { /* ||W X - Q X'||^2 = w A w - 2 w C q + q H q */
        for (int64_t x = 0; x < m * n; x++) e.wcq_rtn += (double)WC[x] * q[x], e.wcq_gq += (double)WC[x] * g[x];
        e.num_rtn = lb_quad_sum(q, q, H, m, n);
        e.num_gq  = lb_quad_sum(g, g, H, m, n);
    } else { /* ||(W - Q) X||^2 / ||W X||^2 */
        e.den = lb_quad_sum(o, o, H, m, n);
        for (int64_t x = 0; x < m * n; x++) q[x] = (float)((double)o[x] - q[x]), g[x] = (float)((double)o[x] - g[x]);
        e.num_rtn = lb_quad_sum(q, q, H, m, n);
        e.num_gq  = lb_quad_sum(g, g, H, m, n);
    }
    LB_GOTO_IF(isnan(e.num_rtn) || isnan(e.num_gq) || isnan(e.den), err, LB_ERR_NOMEM, "out of memory");
    e.waw = out->waw;
    *out  = e;
fail:
    free(o), free(q), free(g), free(qb);
    return st;
}

/* The rows of tensor i (nr of them) this rank takes: under MPI a share each (GPTQ's rows are
 * independent given H), gathered on every rank after; all of them for a type whose scale spans
 * the tensor, or on one rank. */
static bool my_rows(const lb_method_ctx *c, int32_t i, int64_t nr, int64_t *lo, int64_t *hi) {
    const bool split = lb_dist_size() > 1 && !lb_type_get_traits(c->plans[i].type)->whole_tensor;
    *lo = 0, *hi = nr;
    if (split) lb_dist_share_rows(nr, LB_GPTQ_ROWS, lb_dist_rank(), lo, hi); /* a row's BLAS calls: one process's */
    return split;
}

/* The f32 target's refit of tensor i (this rank's rows) on its input's factor f: *WC gets the
 * report's sampled rows' W C (of the weights as given), then the rows are refit (damped as GPTQ
 * is: for the lattices 0.05; with 0.01 here pure IQ2_XXS on the testbed gave 0.0602 KLD
 * against 0.0545). A local status: gptq_tensor makes it every rank's. */
static lb_status refit_tensor(lb_method_ctx *c, int32_t i, const double *C, const lb_gptq_factor *f, float **WC,
                              lb_error *err) {
    lb_tensor    *wk = lb_engine_tensor(c, i);
    const int64_t n = wk->ne[0], nr = wk->ne[1];
    int64_t       lo, hi;
    my_rows(c, i, nr, &lo, &hi);
    float        *Wm = (float *)wk->data + lo * n;
    const int64_t step = report_step(nr), ms = n_sampled(lo, hi, step) + 1; /* (+1: none is no buffer) */
    *WC                = malloc((size_t)(ms * n) * sizeof **WC);
    LB_RETURN_IF(!*WC, err, LB_ERR_NOMEM, "out of memory");
    const int64_t k = sample_rows(Wm, lo, hi, step, n, *WC);
    LB_TRY_RET(lb_rows_times(*WC, C, k, n, *WC, err));
    return lb_gptq_retarget_f(Wm, hi - lo, C, f, err);
}

/* GPTQ on tensor i of the block on its input's factor f (the refit done: WC, its sampled
 * rows' W C, given on the f32 target with waw, the sum of w A w over every rank's sampled rows,
 * ||X_ref w||^2, and taken here). mine: this rank's status so far. */
static lb_status gptq_tensor(lb_method_ctx *c, int32_t i, const lb_act_stats *s, lb_gptq_factor *f, double waw,
                             float *WC, lb_status mine, lb_error *err) {
    const lb_quant_params *p    = c->p;
    const lb_named_tensor *wt   = &c->tensors[i];
    const lb_type          type = c->plans[i].type;
    lb_tensor             *wk   = lb_engine_tensor(c, i);
    float        *W = (float *)wk->data; /* the block's f32 copy: updated in place */
    const int64_t n = wk->ne[0], nr = wk->ne[1];
    const size_t  rs = lb_row_size(type, n);
    int64_t       lo, hi;
    const bool    split = my_rows(c, i, nr, &lo, &hi);
    const int64_t mr = hi - lo; /* this rank's rows, from lo */
    float        *Wm = W + lo * n;
    uint8_t      *q   = malloc(rs * (size_t)nr);
    float        *imp = malloc((size_t)n * sizeof *imp);
    err_sums      e   = { .waw = split && lb_dist_rank() > 0 ? 0 : waw }; /* the ranks' e are summed */
    lb_status     st  = LB_OK; /* mine: this rank's rows' work (under MPI every rank learns it) */
    if (!mine && (!q || !imp)) mine = lb_fail(err, LB_ERR_NOMEM, "out of memory");
    const bool has_imp = imp && lb_act_importance(s, imp);
    lb_gptq_params gp = p->gptq;
    gp.range          = p->range;
    if (!mine) mine = lb_gptq_quantize_f(Wm, mr, f, type, &gp, has_imp ? imp : NULL, q + (size_t)lo * rs, err);
    if (!mine) mine = errors(c, i, lo, hi, Wm, s->H, WC, &e, err);
    LB_TRY(split ? lb_dist_agree(mine, err) : mine);
    if (split) {
        LB_TRY(lb_dist_gather_rows(W, nr, (size_t)n * sizeof *W, LB_GPTQ_ROWS, err));
        LB_TRY(lb_dist_gather_rows(q, nr, rs, LB_GPTQ_ROWS, err));
        LB_TRY(lb_dist_sum(&e.num_rtn, ERR_SUMS_N, err));
    }
    double e_rtn = 0, e_gq = 0;
    error_of(&e, WC != NULL, &e_rtn, &e_gq);
    c->summary->err_rtn += e_rtn;
    c->summary->err_method += e_gq;
    c->block_rtn += e_rtn;
    c->block_method += e_gq;
    lb_method_log(p, "%-26s %-6s output error: RTN %.6f -> GPTQ %.6f (%.2fx)", wt->name, lb_type_name(type),
          e_rtn, e_gq, e_gq > 0 ? e_rtn / e_gq : 0.0);
    c->data[i] = q;
    q          = NULL;
    lb_engine_stored(c, i);
fail:
    free(q);
    free(imp);
    free(WC);
    return st;
}

/* GPTQ on the readers roles[0..nr) of input `in` of block c->layer (c->layer == n_layers: the
 * head): its Hessian (and the f32 target's cross terms) on the calibration streams, then each
 * reader in turn; a reader GPTQ cannot take is stored by its format's quantizer. The FFN's
 * input: the streams stay at each window's residual after the attention, where the passes
 * after start. The layer's last input (last_in): the unquantized stream runs the whole layer in
 * the cross pass and so advances (the engine then does not). */
static lb_status gptq_input(lb_method_ctx *c, lb_tensor_role in, const lb_tensor_role *roles, int nr, bool last_in,
                            lb_error *err) {
    const lb_quant_params *p  = c->p;
    const int32_t          li = c->layer == c->model->cfg.n_layers ? -1 : c->layer;
    const bool             target = c->sr && !p->gptq.self_target;
    double                *C = NULL, waw[3] = { 0, 0, 0 }, sums[3];
    float                 *rows = NULL; /* on the f32 target: the reports' rows of each reader GPTQ takes */
    int64_t                ends[3], m = 0;
    int32_t                idx[3], grp[3], ng = 0, last = -1;
    lb_gptq_factor        *fac[3] = { NULL, NULL, NULL };
    bool                   shared[3] = { false, false, false }; /* fac[k] is an earlier reader's */
    float                 *WC[3] = { NULL, NULL, NULL };        /* the f32 target's sampled rows' W C */
    lb_status              st = LB_OK, mine[3] = { LB_OK, LB_OK, LB_OK }; /* a reader's local status */
    bool                   work = false; /* a reader GPTQ takes (a router alone stays f32) */
    for (int k = 0; k < nr; k++) {
        idx[k] = lb_method_find(c->tensors, c->n, li, roles[k]);
        work |= idx[k] >= 0 && c->plans[idx[k]].type != LB_TYPE_F32;
        grp[k] = -1;
        if (idx[k] < 0 || !lb_gptq_able(c->plans[idx[k]].type, c->tensors[idx[k]].t->ne[0])) continue;
        last = k;
        if (!target) continue;
        const int64_t nro = lb_engine_tensor(c, idx[k])->ne[1];
        m += n_sampled(0, nro, report_step(nro));
        ends[ng] = m, grp[k] = ng++;
    }
    if (!work) return LB_OK;
    const double t0 = lb_time_sec();
    const bool   to_ffn = in == LB_ROLE_FFN_GATE && li >= 0; /* the streams stay at the FFN after */
    lb_calib_select(c->cal_h, li, in);
    LB_TRY(lb_calib_clear(c->cal_h, li, in, err));
    const lb_act_stats *s = lb_calib_get(c->cal_h, li, in);
    if (target) {
        /* the reports' w A w (A = sum X_ref^T X_ref) as ||X_ref w||^2 over every rank's sampled
         * rows: m n T products a window, not A's n^2 T / 2 (25% of the block's Gram work on the
         * 1b shape) and the quadratic forms after */
        C    = malloc((size_t)s->n * (size_t)s->n * sizeof *C);
        rows = malloc((size_t)(m + 1) * (size_t)s->n * sizeof *rows);
        LB_GOTO_IF(!C || !rows, err, LB_ERR_NOMEM, "gptq: out of memory for %d x %d statistics", s->n, s->n);
        int64_t at = 0;
        for (int k = 0; k < nr; k++) {
            if (grp[k] < 0) continue;
            const lb_tensor *w = lb_engine_tensor(c, idx[k]);
            at += sample_rows(w->data, 0, w->ne[1], report_step(w->ne[1]), s->n, rows + (size_t)at * (size_t)s->n);
        }
        lb_calib_ref_rows out = { rows, ends, ng, sums };
        LB_TRY(lb_calib_run_states_cross(c->cal_h, c->ctx_q, c->sq, c->ctx_r, c->sr, C, ng ? &out : NULL,
                                            last_in && li >= 0 ? LB_CALIB_REF_NEXT : to_ffn ? LB_CALIB_TO_FFN : LB_CALIB_STAY,
                                            err));
        for (int k = 0; k < nr; k++) waw[k] = grp[k] >= 0 ? sums[grp[k]] : 0;
        free(rows);
        rows = NULL;
    } else {
        LB_TRY(lb_calib_run_states(c->cal_h, c->ctx_q, c->sq, to_ffn ? LB_CALIB_TO_FFN : LB_CALIB_STAY, err));
    }
    c->summary->seconds_calib += lb_time_sec() - t0;
    const double t1 = lb_time_sec();
    /* the input's factorizations, one per damping and column order among its readers (q, k
     * and v share one), the refits on them, then GPTQ */
    for (int k = 0; k <= last; k++) {
        const int32_t i = idx[k];
        if (i < 0 || !lb_gptq_able(c->plans[i].type, c->tensors[i].t->ne[0])) continue;
        const double damp = lb_gptq_damp(&p->gptq, c->plans[i].type);
        const bool   ao   = p->gptq.act_order && lb_type_grid(c->plans[i].type);
        for (int j = 0; j < k && !fac[k]; j++)
            if (lb_gptq_factor_fits(fac[j], damp, ao)) fac[k] = fac[j], shared[k] = true;
        if (!fac[k]) mine[k] = lb_gptq_factor_create(&fac[k], s->H, s->n, damp, ao, err);
    }
    /* a factor whose readers have more rows than the input has columns (q, k, v; gate, up)
     * refits them by one matrix M = H'^-1 (C^T + lambda I): 2 n^3 once, then 2 n^2 a row where
     * each refit alone takes 4 n^2. Chosen on the whole tensors' rows, as every rank chooses;
     * without the memory for M, each refit alone */
    for (int k = 0; target && k <= last; k++) {
        if (!fac[k] || shared[k] || mine[k]) continue;
        int64_t n_rows = 0;
        for (int j = k; j <= last; j++)
            if (fac[j] == fac[k] && idx[j] >= 0) n_rows += lb_engine_tensor(c, idx[j])->ne[1];
        lb_error ignored = { 0 };
        if (n_rows > s->n) (void)lb_gptq_factor_refit_matrix(fac[k], C, &ignored);
    }
    for (int k = 0; target && k <= last; k++)
        if (fac[k] && !mine[k]) mine[k] = refit_tensor(c, idx[k], C, fac[k], &WC[k], err);
    free(C);
    C = NULL;
    for (int k = 0; k < nr; k++) {
        const int32_t i = idx[k];
        if (i < 0) continue;
        const lb_type type = c->plans[i].type;
        if (lb_gptq_able(type, c->tensors[i].t->ne[0])) {
            float *wc = WC[k];
            WC[k]     = NULL;
            LB_TRY(gptq_tensor(c, i, s, fac[k], waw[k], wc, mine[k], err));
        } else if (type != LB_TYPE_F32) { /* later inputs see what the file will hold */
            LB_TRY(lb_engine_store(c, i, err));
            lb_method_log(p, "%-26s %-6s round to nearest (no GPTQ for this type or shape)", c->tensors[i].name,
                          lb_type_name(type));
        }
    }
    lb_calib_release(c->cal_h, li, in);
    c->summary->seconds_method += lb_time_sec() - t1;
fail:
    for (int k = 0; k < nr; k++) {
        free(WC[k]);
        if (!shared[k]) lb_gptq_factor_free(fac[k]);
    }
    free(rows);
    free(C);
    return st;
}

/* both streams keep the attention outputs of the o input's pass for the FFN input's (on), or
 * spend them (off) */
static void keep_att(lb_method_ctx *c, bool on) {
    if (c->sq) lb_calib_states_keep_att(c->sq, on);
    if (c->sr) lb_calib_states_keep_att(c->sr, on);
}

lb_status lb_method_gptq(lb_method_ctx *c, lb_error *err) {
    const int32_t L    = c->model->cfg.n_layers;
    const bool    head = c->layer == L;
    lb_status     st   = LB_OK;
    if (head && c->model->tied_output) return LB_OK; /* the embedding: stored before the layers */
    if (head) return gptq_input(c, LB_ROLE_OUTPUT, (const lb_tensor_role[]){ LB_ROLE_OUTPUT }, 1, false, err);
    /* within a layer: q, k, v share an input (MLA: q or q_a and kv_a_mqa; then q_b, each
     * head's k_b, each head's v_b); then o; gate and up share one (a mixture of experts: the
     * shared expert's, then each expert's gate and up, then each one's down: gptq_experts.c);
     * then down */
    const bool moe = c->model->cfg.n_expert > 0, mla = c->model->arch && c->model->arch->ops.mla;
    /* the o input's pass keeps the attention outputs for the FFN input's: only GPTQ's own passes
     * (another method's, AWQ's, folds its scales into v and o in between) */
    keep_att(c, lb_model_att_resumable(c->model));
    /* the quantized stream's down pass keeps the down projection's inputs for the engine's
     * advance after the block (spent there, or by any pass before it) */
    if (c->sq) lb_calib_states_keep_mid(c->sq, lb_model_mid_resumable(c->model));
    for (int g = 0; g < LB_INPUT_COUNT; g++) {
        if (moe && g == LB_INPUT_FFN_MID) {
            LB_TRY(lb_gptq_slices(c, (const lb_tensor_role[]){ LB_ROLE_FFN_GATE_EXPS, LB_ROLE_FFN_UP_EXPS }, 2, err));
            LB_TRY(lb_gptq_slices(c, (const lb_tensor_role[]){ LB_ROLE_FFN_DOWN_EXPS }, 1, err));
        }
        if (mla && g == LB_INPUT_ATTN_OUT) {
            if (c->model->cfg.n_lora_q > 0)
                LB_TRY(gptq_input(c, LB_ROLE_ATTN_Q_B, (const lb_tensor_role[]){ LB_ROLE_ATTN_Q_B }, 1, false, err));
            LB_TRY(lb_gptq_slices(c, (const lb_tensor_role[]){ LB_ROLE_ATTN_K_B }, 1, err));
            LB_TRY(lb_gptq_slices(c, (const lb_tensor_role[]){ LB_ROLE_ATTN_V_B }, 1, err));
        }
        lb_tensor_role roles[3];
        const int      nr = lb_block_input_readers(c->model, c->layer, (lb_block_input)g, roles);
        LB_TRY(gptq_input(c, lb_block_input_role((lb_block_input)g), roles, nr, g == LB_INPUT_COUNT - 1, err));
    }
fail:
    keep_att(c, false);
    return st;
}

/* --target-bpw: a type per tensor from measured sensitivities (lowbit/quant.h's lb_bpw_*).
 *
 *   sensitivity(t, T) = mean KL(p_f32 || p) over the calibration windows' positions, p the
 *                       model's predictions with tensor t alone quantized to type T;
 *   choose T_t minimizing sum_t sensitivity(t, T_t) with sum_t bytes(t, T_t) <= budget.
 *
 * Each window's residual stream is kept at every layer's input, so a tensor of layer l is
 * measured by running layers l.. only. The allocation: for a price lambda per byte each tensor
 * takes its cheapest type by sensitivity + lambda * bytes; the smallest lambda whose choice
 * fits is found by bisection, then the remaining bytes buy the upgrades that lower the sum
 * most per byte. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "core/fail.h"
#include "lowbit/actq.h"
#include "lowbit/calib.h"
#include "lowbit/core.h"
#include "quant_internal.h"
#include "lowbit/quant.h"
#include "lowbit/tokenizer.h"

typedef struct meas {
    lb_context   *ctx;
    const int32_t *win;
    int32_t       n_win, n_ctx, n_layers, V;
    float        *res;  /* [n_win][n_layers + 1][n_ctx][E]: the stream at layer l's input (l >= 1;
                           l = n_layers: the head's) */
    float        *ref;  /* [n_win][n_ctx][V]: the f32 model's log-probabilities */
    float        *lp;   /* [V] scratch */
    int64_t       E;
} meas;

static void log_softmax(float *out, const float *x, int32_t n) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += exp((double)(x[i] - mx));
    const float ls = (float)log(s) + mx;
    for (int32_t i = 0; i < n; i++) out[i] = x[i] - ls;
}

/* the windows' logits with the model as it is now, from layer `first` (0: the tokens) */
static lb_status run_window(meas *M, int32_t w, int32_t first, const float **logits, lb_error *err) {
    lb_context_reset(M->ctx);
    if (first == 0) return lb_forward(M->ctx, M->win + (size_t)w * M->n_ctx, M->n_ctx, logits, err);
    const float *x = M->res + ((size_t)w * (M->n_layers + 1) + first) * (size_t)M->n_ctx * (size_t)M->E;
    return lb_forward_from(M->ctx, first, x, M->n_ctx, logits, err);
}

static lb_status reference(meas *M, lb_error *err) {
    lb_status st = LB_OK;
    for (int32_t w = 0; w < M->n_win; w++) {
        const float *logits;
        for (int32_t l = 1; l <= M->n_layers; l++) { /* the stream at each layer's input */
            lb_context_set_layer_limit(M->ctx, l);
            LB_TRY(l == 1 ? run_window(M, w, 0, &logits, err) : run_window(M, w, l - 1, &logits, err));
            memcpy(M->res + ((size_t)w * (M->n_layers + 1) + l) * (size_t)M->n_ctx * (size_t)M->E,
                   lb_context_residual(M->ctx), (size_t)M->n_ctx * (size_t)M->E * sizeof(float));
        }
        lb_context_set_layer_limit(M->ctx, 0);
        LB_TRY(run_window(M, w, 0, &logits, err));
        for (int32_t t = 0; t < M->n_ctx; t++)
            log_softmax(M->ref + ((size_t)w * M->n_ctx + t) * (size_t)M->V, logits + (size_t)t * M->V, M->V);
    }
fail:
    return st;
}

/* mean KL(ref || model) over every window position, the model run from layer first */
static lb_status kld(meas *M, int32_t first, double *out, lb_error *err) {
    lb_status st  = LB_OK;
    double    sum = 0;
    for (int32_t w = 0; w < M->n_win; w++) {
        const float *logits;
        LB_TRY(run_window(M, w, first, &logits, err));
        for (int32_t t = 0; t < M->n_ctx; t++) {
            const float *r = M->ref + ((size_t)w * M->n_ctx + t) * (size_t)M->V;
            log_softmax(M->lp, logits + (size_t)t * M->V, M->V);
            double k = 0;
            for (int32_t i = 0; i < M->V; i++) k += exp((double)r[i]) * ((double)r[i] - M->lp[i]);
            sum += k;
        }
    }
    *out = sum / ((double)M->n_win * M->n_ctx);
fail:
    return st;
}

/* the importance of tensor nt's columns into imp (false: none); a mixture of experts' stacked
 * experts: ne[0] values for each (imp holds ne[0] * ne[2]) */
static bool importance(const lb_model *m, const lb_named_tensor *nt, const lb_imatrix *im, const lb_calib *cal,
                       float *imp) {
    if (im) return lb_imatrix_get_tensor(im, m, nt, imp);
    if (lb_slot_of(nt->role)->flags & LB_SLOT_STACKED) {
        float *x = NULL;
        if (lb_expert_importance(cal, nt, &x, NULL) || !x) return false;
        memcpy(imp, x, (size_t)(nt->t->ne[0] * nt->t->ne[2]) * sizeof *imp);
        free(x);
        return true;
    }
    const lb_act_stats *s = nt->role == LB_ROLE_OUTPUT       ? lb_calib_get(cal, -1, LB_ROLE_OUTPUT)
                          : nt->role == LB_ROLE_TOKEN_EMBD ? NULL
                                                           : lb_calib_get(cal, nt->layer, nt->role);
    return s && s->n == nt->t->ne[0] && lb_act_importance(s, imp);
}

/* the allocation at price lambda: per tensor the cheapest option; returns the total bytes */
static double pick(const lb_bpw_result *r, const bool *mat, double lambda, int32_t *k) {
    double total = 0;
    for (int32_t i = 0; i < r->n_tensors; i++) {
        if (!mat[i]) continue;
        double best = INFINITY;
        k[i]        = -1;
        for (int32_t j = 0; j < r->n_types; j++) {
            const double s = r->sens[i * r->n_types + j];
            if (!isfinite(s)) continue;
            const double c = s + lambda * (double)r->bytes[i * r->n_types + j];
            if (k[i] < 0 || c < best || (c == best && r->bytes[i * r->n_types + j] < r->bytes[i * r->n_types + k[i]]))
                best = c, k[i] = j;
        }
        total += (double)r->bytes[i * r->n_types + k[i]];
    }
    return total;
}

lb_status lb_bpw_choose(lb_bpw_result *r, double target_bpw, lb_error *err) {
    const int32_t n = r->n_tensors, nt = r->n_types;
    int32_t      *k = malloc((size_t)n * sizeof *k);
    bool         *mat = calloc((size_t)n, sizeof *mat);
    lb_status     st = LB_OK;
    const double  budget = target_bpw * (double)r->params / 8.0 - (double)r->fixed;
    LB_GOTO_IF(!k || !mat, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) /* the matrices: those with a candidate measured */
        for (int32_t j = 0; j < nt; j++) mat[i] |= isfinite(r->sens[i * nt + j]);
    double lo = 0, hi = 1;
    while (pick(r, mat, hi, k) > budget && hi < 1e30) hi *= 4;
    LB_GOTO_IF(pick(r, mat, hi, k) > budget, err, LB_ERR_PARAM,
               "--target-bpw: even the smallest candidate types take more than the target");
    for (int it = 0; it < 100; it++) {
        const double mid = 0.5 * (lo + hi);
        if (pick(r, mat, mid, k) > budget) lo = mid;
        else hi = mid;
    }
    double used = pick(r, mat, hi, k);
    for (;;) { /* the upgrade that lowers the sum most per byte, while one fits */
        int32_t bi = -1, bj = -1;
        double  best = 0;
        for (int32_t i = 0; i < n; i++) {
            if (!mat[i]) continue;
            const double s0 = r->sens[i * nt + k[i]];
            const double b0 = (double)r->bytes[i * nt + k[i]];
            for (int32_t j = 0; j < nt; j++) {
                const double s = r->sens[i * nt + j], b = (double)r->bytes[i * nt + j];
                if (!isfinite(s) || s >= s0 || used - b0 + b > budget) continue;
                const double gain = (s0 - s) / (b > b0 ? b - b0 : 1e-9);
                if (gain > best) best = gain, bi = i, bj = j;
            }
        }
        if (bi < 0) break;
        used += (double)r->bytes[bi * nt + bj] - (double)r->bytes[bi * nt + k[bi]];
        k[bi] = bj;
    }
    r->kld_sum = 0;
    double bytes = (double)r->fixed;
    for (int32_t i = 0; i < n; i++) {
        r->choice[i] = mat[i] ? r->types[k[i]] : LB_TYPE_F32;
        if (!mat[i]) continue;
        r->kld_sum += r->sens[i * nt + k[i]];
        bytes += (double)r->bytes[i * nt + k[i]];
    }
    r->bpw = 8.0 * bytes / (double)r->params;
fail:
    free(k);
    free(mat);
    return st;
}

/* every rank's rows of the table (matrix k of the measured ones on rank k mod R) to every rank */
static lb_status gather_table(lb_bpw_result *r, const bool *mat, int32_t n, lb_error *err) {
    const int     R  = lb_dist_size(), nt = r->n_types;
    const size_t  ns = (size_t)n * (size_t)nt;
    if (R == 1) return LB_OK;
    double       *s  = malloc((size_t)R * ns * sizeof *s);
    size_t       *b  = malloc((size_t)R * ns * sizeof *b);
    int32_t      *ev = malloc((size_t)R * sizeof *ev);
    lb_status     st = LB_OK;
    LB_GOTO_IF(!s || !b || !ev, err, LB_ERR_NOMEM, "out of memory");
    LB_TRY(lb_dist_allgather(r->sens, ns * sizeof *s, s, err));
    LB_TRY(lb_dist_allgather(r->bytes, ns * sizeof *b, b, err));
    LB_TRY(lb_dist_allgather(&r->evals, sizeof *ev, ev, err));
    for (int32_t i = 0, k = 0; i < n; i++) {
        if (!mat[i]) continue;
        const size_t at = (size_t)(k++ % R) * ns + (size_t)i * (size_t)nt;
        memcpy(r->sens + (size_t)i * (size_t)nt, s + at, (size_t)nt * sizeof *s);
        memcpy(r->bytes + (size_t)i * (size_t)nt, b + at, (size_t)nt * sizeof *b);
    }
    r->evals = 0;
    for (int q = 0; q < R; q++) r->evals += ev[q];
fail:
    free(s), free(b), free(ev);
    return st;
}

lb_status lb_bpw_allocate(const lb_model *m, const lb_bpw_params *p, lb_bpw_result *r, lb_error *err) {
    memset(r, 0, sizeof *r);
    LB_RETURN_IF(p->n_types < 1 || p->n_types > LB_BPW_MAX_TYPES, err, LB_ERR_PARAM,
                 "--target-bpw: 1 to %d candidate types", LB_BPW_MAX_TYPES);
    LB_RETURN_IF(!p->calib_text, err, LB_ERR_PARAM, "--target-bpw measures on calibration text (--calib FILE)");
    LB_RETURN_IF(!(p->target_bpw > 0), err, LB_ERR_PARAM, "--target-bpw wants a positive number");
    const double t0 = lb_time_sec();
    lb_model    *m32 = NULL;
    lb_calib    *cal = NULL;
    meas         M   = { 0 };
    float       *orig = NULL, *imp = NULL, *deq = NULL;
    void        *q = NULL;
    bool        *mat = NULL;
    char        *text = NULL;
    size_t       len;
    lb_status    st = LB_OK;
    lb_named_tensor *ts = NULL;
    LB_TRY(lb_model_clone_f32(m, &m32, err));
    const int32_t n = lb_model_n_tensors(m32);
    ts = malloc((size_t)n * sizeof *ts);
    LB_GOTO_IF(!ts, err, LB_ERR_NOMEM, "out of memory");
    lb_model_tensors(m32, ts, n);
    r->n_tensors = n, r->n_types = p->n_types;
    memcpy(r->types, p->types, (size_t)p->n_types * sizeof *p->types);
    r->sens   = malloc((size_t)(n * p->n_types) * sizeof *r->sens);
    r->bytes  = calloc((size_t)(n * p->n_types), sizeof *r->bytes);
    r->choice = malloc((size_t)n * sizeof *r->choice);
    mat       = calloc((size_t)n, sizeof *mat);
    LB_GOTO_IF(!r->sens || !r->bytes || !r->choice || !mat, err, LB_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < n * p->n_types; i++) r->sens[i] = NAN; /* not measured */

    LB_TRY(lb_read_file(p->calib_text, &text, &len, err));
    lb_calib_params cp = p->calib;
    if (cp.n_samples <= 0) cp.n_samples = 4;
    if (cp.n_ctx <= 0) cp.n_ctx = 128;
    int32_t *win = NULL;
    LB_TRY(lb_calib_windows(m32->vocab, text, len, &cp, &win, &M.n_win, err));
    M.win = win, M.n_ctx = cp.n_ctx, M.n_layers = m32->cfg.n_layers, M.E = m32->cfg.n_embd;
    M.V = m32->cfg.n_vocab;
    LB_TRY(lb_context_create(&M.ctx, m32, M.n_ctx, M.n_ctx, err));
    M.res = malloc((size_t)M.n_win * (size_t)(M.n_layers + 1) * (size_t)M.n_ctx * (size_t)M.E * sizeof *M.res);
    M.ref = malloc((size_t)M.n_win * (size_t)M.n_ctx * (size_t)M.V * sizeof *M.ref);
    M.lp  = malloc((size_t)M.V * sizeof *M.lp);
    LB_GOTO_IF(!M.res || !M.ref || !M.lp, err, LB_ERR_NOMEM, "--target-bpw: out of memory for %d windows",
               M.n_win);
    if (!p->imatrix) { /* importance from the windows */
        LB_TRY(lb_calib_create(&cal, m32, false, err));
        LB_TRY(lb_calib_run(cal, M.ctx, win, M.n_win, M.n_ctx, err));
    }
    if (!p->proxy) LB_TRY(reference(&M, err));

    int64_t params = 0;
    size_t  fixed  = 0;
    for (int32_t i = 0; i < n; i++) {
        const lb_tensor *t = ts[i].t;
        params += lb_tensor_nelements(t);
        mat[i] = t->ne[1] > 1 && !(lb_slot_of(ts[i].role)->flags & LB_SLOT_F32); /* a router stays f32 */
        r->choice[i] = LB_TYPE_F32;
        if (!mat[i]) fixed += (size_t)lb_tensor_nelements(t) * sizeof(float);
    }
    /* under MPI the matrices go round the ranks (the k-th on rank k mod R), each measured as one
     * process measures it; then every rank gets every row of the table */
    const int R = lb_dist_size(), me = lb_dist_rank();
    int32_t   k_mat = -1;
    for (int32_t i = 0; i < n; i++) {
        if (!mat[i] || ++k_mat % R != me) continue;
        lb_tensor    *t  = (lb_tensor *)ts[i].t;
        const int64_t ne = lb_tensor_nelements(t), cols = t->ne[0], rows = ne / cols;
        const int64_t nm = t->ne[2], mrows = rows / nm; /* stacked matrices (experts), each its importance */
        float *data = (float *)(uintptr_t)t->data;
        orig = malloc((size_t)ne * sizeof *orig), deq = malloc((size_t)ne * sizeof *deq);
        imp  = malloc((size_t)(cols * nm) * sizeof *imp);
        LB_GOTO_IF(!orig || !deq || !imp, err, LB_ERR_NOMEM, "out of memory");
        memcpy(orig, data, (size_t)ne * sizeof *orig);
        const bool has_imp = importance(m32, &ts[i], p->imatrix, cal, imp);
        /* the layer whose input changes: the embedding feeds layer 0, the head runs alone */
        const int32_t first = ts[i].role == LB_ROLE_TOKEN_EMBD ? 0
                            : ts[i].role == LB_ROLE_OUTPUT      ? M.n_layers
                                                                : ts[i].layer;
        for (int32_t j = 0; j < p->n_types; j++) {
            const lb_type         ty = p->types[j];
            const lb_type_traits *tr = lb_type_get_traits(ty);
            const size_t          rs = lb_row_size(ty, cols);
            r->sens[i * p->n_types + j] = NAN;
            if (!tr || rs == 0 || (tr->needs_importance && !has_imp)) continue;
            r->bytes[i * p->n_types + j] = rs * (size_t)rows;
            q = malloc(rs * (size_t)rows);
            LB_GOTO_IF(!q, err, LB_ERR_NOMEM, "out of memory");
            for (int64_t e = 0; e < nm; e++)
                lb_quantize_rows(ty, (uint8_t *)q + (size_t)(e * mrows) * rs, orig + e * mrows * cols, mrows, cols,
                                 has_imp ? imp + e * cols : NULL);
            for (int64_t rr = 0; rr < rows; rr++) tr->to_float(deq + rr * cols, (uint8_t *)q + (size_t)rr * rs, cols);
            free(q), q = NULL;
            if (p->proxy) {
                double s = 0;
                for (int64_t e = 0; e < ne; e++) {
                    const double d = (double)orig[e] - deq[e];
                    s += (has_imp ? imp[e / (mrows * cols) * cols + e % cols] : 1.0) * d * d;
                }
                r->sens[i * p->n_types + j] = s;
                r->evals++;
                continue;
            }
            memcpy(data, deq, (size_t)ne * sizeof *data);
            st = kld(&M, first, &r->sens[i * p->n_types + j], err);
            memcpy(data, orig, (size_t)ne * sizeof *data);
            if (st) goto fail;
            r->evals++;
        }
        free(orig), free(deq), free(imp);
        orig = deq = imp = NULL;
        bool any = false; /* a matrix no candidate fits would be left out of the budget */
        for (int32_t j = 0; j < p->n_types; j++) any |= isfinite(r->sens[i * p->n_types + j]);
        LB_GOTO_IF(!any, err, LB_ERR_PARAM, "--target-bpw: %s (rows of %lld) fits none of the candidate "
                   "types (block sizes, or importance missing for the i-quants)", ts[i].name, (long long)cols);
    }
    LB_TRY(gather_table(r, mat, n, err));
    r->params = params, r->fixed = fixed;
    LB_TRY(lb_bpw_choose(r, p->target_bpw, err));
    r->seconds = lb_time_sec() - t0;
fail:
    free(orig), free(deq), free(imp), free(q), free(mat), free(text), free(ts);
    free((void *)M.win), free(M.res), free(M.ref), free(M.lp);
    lb_context_free(M.ctx);
    lb_calib_free(cal);
    lb_model_free(m32);
    if (st) lb_bpw_result_free(r);
    return st;
}

void lb_bpw_result_free(lb_bpw_result *r) {
    free(r->sens), free(r->bytes), free(r->choice);
    r->sens = NULL, r->bytes = NULL, r->choice = NULL;
}

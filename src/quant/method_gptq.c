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

#include "core/fail.h"
#include "formats/grid.h"
#include "quant_internal.h"

/* GPTQ can take the tensor: a block type whose blocks divide its rows, or a row-scaled type
 * (per channel, per tensor) with grid access, the row being its block */
static bool gptq_able(lb_type t, int64_t ncols) {
    const lb_type_traits *tr = lb_type_get_traits(t);
    if (!tr || !tr->is_quantized) return false;
    if (tr->row_size) return lb_type_grid(t) != NULL;
    return tr->block_size > 1 && ncols % tr->block_size == 0;
}

/* RTN of W onto type t, dequantized into out (for the before/after report) */
static void rtn_into(const float *W, int64_t nr, int64_t n, lb_type t, float *out, uint8_t *q) {
    lb_quantize_rows(t, q, W, nr, n, NULL);
    const size_t rs = lb_row_size(t, n);
    for (int64_t r = 0; r < nr; r++) lb_type_get_traits(t)->to_float(out + r * n, q + (size_t)r * rs, n);
}

/* relative output error of Q against the original W: on the f32 target, from waw = sum w A w
 * and WC = W C (the unquantized inputs' statistics, freed before), else on H alone */
static double out_error(const float *W, const float *Q, int64_t nr, int64_t n, const double *H, double waw,
                        const float *WC) {
    if (!WC) return lb_output_error(W, Q, nr, n, H);
    double wcq = 0;
    for (int64_t k = 0; k < nr * n; k++) wcq += (double)WC[k] * Q[k];
    return waw > 0 ? (waw - 2 * wcq + lb_quad_sum(Q, Q, H, nr, n)) / waw : 0;
}

/* GPTQ on tensor i of the block. On the f32 target *C (sum X_ref X'^T) is given, with waw
 * (sum over the rows of w A w, A = sum X_ref X_ref^T): the weights are refit first; the last
 * reader of the input frees *C once it has used it (GPTQ itself needs H only). */
static lb_status gptq_tensor(lb_method_ctx *c, int32_t i, const lb_act_stats *s, double waw, double **C,
                             bool last, lb_error *err) {
    const lb_quant_params *p    = c->p;
    const lb_named_tensor *wt   = &c->tensors[i];
    const lb_type          type = c->plans[i].type;
    lb_tensor             *wk   = lb_engine_tensor(c, i);
    float        *W = (float *)wk->data; /* the block's f32 copy: updated in place */
    const int64_t n = wk->ne[0], nr = wk->ne[1];
    const size_t  bytes = lb_row_size(type, n) * (size_t)nr;
    uint8_t      *q = malloc(bytes), *q2 = malloc(bytes);
    float        *orig = malloc((size_t)(n * nr) * sizeof *orig), *rtn = malloc((size_t)(n * nr) * sizeof *rtn);
    float        *imp = malloc((size_t)n * sizeof *imp);
    float        *WC  = *C ? malloc((size_t)(n * nr) * sizeof *WC) : NULL;
    lb_status     st = LB_OK;
    LB_GOTO_IF(!q || !q2 || !orig || !rtn || !imp || (*C && !WC), err, LB_ERR_NOMEM, "out of memory");
    memcpy(orig, W, (size_t)(n * nr) * sizeof *orig);
    const bool has_imp = lb_act_importance(s, imp);
    if (*C) {
        LB_TRY(lb_rows_times(orig, *C, nr, n, WC, err));
        LB_TRY(lb_gptq_retarget(W, nr, n, *C, s->H, p->gptq.damp, err));
        if (last) {
            free(*C);
            *C = NULL;
        }
    }
    LB_TRY(lb_gptq_quantize(W, nr, n, s->H, type, &p->gptq, has_imp ? imp : NULL, q, err));
    rtn_into(orig, nr, n, type, rtn, q2);
    const double e_rtn = out_error(orig, rtn, nr, n, s->H, waw, WC);
    const double e_gq  = out_error(orig, W, nr, n, s->H, waw, WC);
    c->summary->err_rtn += e_rtn;
    c->summary->err_method += e_gq;
    c->block_rtn += e_rtn;
    c->block_method += e_gq;
    lb_method_log(p, "%-26s %-6s output error: RTN %.6f -> GPTQ %.6f (%.2fx)", wt->name, lb_type_name(type),
          e_rtn, e_gq, e_gq > 0 ? e_rtn / e_gq : 0.0);
    c->data[i] = q;
    q          = NULL;
fail:
    free(q);
    free(q2);
    free(orig);
    free(rtn);
    free(imp);
    free(WC);
    return st;
}

lb_status lb_method_gptq(lb_method_ctx *c, lb_error *err) {
    const lb_quant_params *p    = c->p;
    const int32_t          L    = c->model->cfg.n_layers;
    const bool             head = c->layer == L;
    double                *A = NULL, *C = NULL;
    lb_status              st = LB_OK;
    if (head && c->model->tied_output) return LB_OK; /* the embedding: stored before the layers */
    /* within a layer: q, k, v share an input; then o; gate and up share one; then down */
    for (int g = 0; g < (head ? 1 : LB_INPUT_COUNT); g++) {
        const lb_tensor_role in = head ? LB_ROLE_OUTPUT : lb_block_input_role((lb_block_input)g);
        const int32_t        li = head ? -1 : c->layer;
        lb_tensor_role       roles[3] = { LB_ROLE_OUTPUT };
        const int            nr = head ? 1 : lb_block_input_readers((lb_block_input)g, roles);
        const double         t0 = lb_time_sec();
        lb_calib_select(c->cal_h, li, in);
        LB_TRY(lb_calib_clear(c->cal_h, li, in, err));
        const lb_act_stats *s = lb_calib_get(c->cal_h, li, in);
        if (c->sr && !p->gptq.self_target) {
            A = malloc((size_t)s->n * (size_t)s->n * sizeof *A);
            C = malloc((size_t)s->n * (size_t)s->n * sizeof *C);
            LB_GOTO_IF(!A || !C, err, LB_ERR_NOMEM, "gptq: out of memory for %d x %d statistics", s->n, s->n);
            LB_TRY(lb_calib_run_states_cross(c->cal_h, c->ctx_q, c->sq, c->ctx_r, c->sr, C, A, err));
        } else {
            LB_TRY(lb_calib_run_states(c->cal_h, c->ctx_q, c->sq, err));
        }
        c->summary->seconds_calib += lb_time_sec() - t0;
        const double t1 = lb_time_sec();
        double       waw[3] = { 0, 0, 0 };
        int32_t      idx[3], last = -1;
        for (int k = 0; k < nr; k++) { /* A serves the reports only: their w A w, then it goes */
            idx[k] = lb_method_find(c->tensors, c->n, li, roles[k]);
            if (idx[k] < 0 || !gptq_able(c->plans[idx[k]].type, c->tensors[idx[k]].t->ne[0])) continue;
            last = k;
            if (!A) continue;
            const lb_tensor *w = lb_engine_tensor(c, idx[k]);
            waw[k] = lb_quad_sum(w->data, w->data, A, w->ne[1], w->ne[0]);
            LB_GOTO_IF(isnan(waw[k]), err, LB_ERR_NOMEM, "out of memory");
        }
        free(A);
        A = NULL;
        for (int k = 0; k < nr; k++) {
            const int32_t i = idx[k];
            if (i < 0) continue;
            const lb_type type = c->plans[i].type;
            if (gptq_able(type, c->tensors[i].t->ne[0])) {
                LB_TRY(gptq_tensor(c, i, s, waw[k], &C, k == last, err));
            } else if (type != LB_TYPE_F32) { /* later inputs see what the file will hold */
                LB_TRY(lb_engine_store(c, i, err));
                lb_method_log(p, "%-26s %-6s round to nearest (no GPTQ for this type or shape)", c->tensors[i].name,
                              lb_type_name(type));
            }
        }
        lb_calib_release(c->cal_h, li, in);
        free(A), free(C);
        A = C = NULL;
        c->summary->seconds_method += lb_time_sec() - t1;
    }
fail:
    free(A);
    free(C);
    return st;
}
